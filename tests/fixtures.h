// Fixtures shared by the end-to-end tests of the `dgqa` binary: a tiny Fashion-MNIST-like
// dataset (IDX files), a config for a tiny ViT on it, and a way to run the binary.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dgqa::tests {

// One split of the fixture dataset as it is stored: count images of size x size uint8 pixels
// (row-major, one after the other) and their labels.
struct FixtureSplit {
  int count = 0;
  int size = 0;
  std::vector<uint8_t> pixels;
  std::vector<uint8_t> labels;
};

// A learnable split: the image of class k has bright rows k * size / classes ..
// (k + 1) * size / classes - 1 over a dark noisy background. Labels cycle through 0..classes-1
// in a seed-dependent order. Deterministic in (count, size, classes, seed).
FixtureSplit make_fixture_split(int count, int size, int classes, uint32_t seed);

// The bytes of IDX files: images (magic 0x00000803, dims count x size x size) and labels
// (magic 0x00000801, dim count).
std::string idx_images_bytes(const FixtureSplit& split);
std::string idx_labels_bytes(const FixtureSplit& split);

// Writes bytes to path gzip-compressed (as the Fashion-MNIST .gz files are).
void write_gzip_file(const std::string& path, const std::string& bytes);

struct FixtureDatasetOptions {
  int train_count = 64;
  int test_count = 40;  // not a multiple of the eval batch size: the last eval batch is partial
  int image_size = 8;
  int num_classes = 4;
  bool gzip_train = true;  // the training files gzipped, the test files plain
  bool gzip_test = false;
};

// The paths of a fixture dataset and the test split's content.
struct FixtureDataset {
  std::string train_images, train_labels, test_images, test_labels;
  FixtureSplit train, test;
};

// Writes the four IDX files of a fixture dataset into dir.
FixtureDataset write_fixture_dataset(const std::string& dir,
                                     const FixtureDatasetOptions& options = {});

// The tiny ViT and its training run. image 8, patch 4, D 16, depth 2, H 4, G 2, 4 classes,
// batch 8, eval batch 16, mean 0 and std 1 (the model sees pixel / 255), one thread.
struct FixtureConfig {
  std::string attention = "GQA";  // a config.proto Attention name
  uint64_t seed = 7;
  int image_size = 8;
  int patch_size = 4;
  int num_classes = 4;
  int embed_dim = 16;
  int depth = 2;
  int num_heads = 4;
  int num_kv_heads = 2;  // < 0: leave the field unset
  int dgqa_window = 1;   // DGQA recomputes its allocation at every step
  bool pgqa_eval_noise = true;
  float lr = 3e-3f;
  int batch_size = 8;
  int eval_batch_size = 16;
  int max_steps = 4;
  int eval_every_steps = 0;
  int log_every_steps = 1;
  int threads = 1;
  std::string extra_model;                  // more text inside model { }
  std::string extra_optimizer;              // more text inside optimizer { }
  std::string schedule = "kind: CONSTANT";  // the text inside schedule { }
  std::string extra_train;                  // more text inside train { }
  std::string extra;                        // more text at the top level
};

// The runs whose per-step results the distributed tests compare across rank counts (dist_test,
// cuda_dist_test): eight query heads on few K/V heads (two; KDGQA four, MHA eight), so that the
// allocations depend on the global key norms (a 12% difference of two norms moves a head), an
// allocation change every third step for DGQA, batches of 32, an evaluation every 10 steps, and
// gradient buckets small enough to make several.
FixtureConfig rank_invariance_config(const std::string& scheme, int max_steps);

// The config file's text (protobuf text format) for a fixture dataset.
std::string fixture_config_text(const FixtureDataset& data, const FixtureConfig& config = {});

// Writes fixture_config_text to path; returns path.
std::string write_fixture_config(const std::string& path, const FixtureDataset& data,
                                 const FixtureConfig& config = {});

// A checkpoint's state.pbtxt (docs/design.md §6.2) without its checksum line, and the text with
// the checksum line dgqa writes for it: for editing a checkpoint's recorded state by hand.
std::string state_body(const std::string& state_text);
std::string sealed_state(const std::string& body);

// zlib's CRC-32 of bytes, as checkpoints record it.
uint32_t crc32_of(const std::string& bytes);

// The test split as the model sees it with mean 0 and std 1: float32 (N, 1, S, S) of pixel / 255.
std::vector<float> normalised_images(const FixtureSplit& split);

// Quotes text for /bin/sh.
std::string shell_quote(const std::string& text);

struct DgqaRun {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// The dgqa program and the MPI launcher the tests start: those of the build (DGQA_BINARY,
// DGQA_MPIEXEC), unless the environment names others (DGQA_TEST_BINARY, DGQA_TEST_MPIEXEC), as
// launch/gpu_check.sh does on a machine where the tests run from another directory.
std::string dgqa_binary();
std::string mpiexec_path();

// Runs `dgqa_binary() args` (args as written on a shell command line) with stdout and stderr
// captured separately in files under scratch_dir.
DgqaRun run_dgqa(const std::string& args, const std::string& scratch_dir);

// The start of a command line that runs a program as `ranks` MPI ranks (ends with a space): as
// root if need be, more ranks than cores, no binding, one OpenMP thread per rank.
std::string mpirun_prefix(int ranks);

// What the distributed tests compare of a run's metrics.jsonl.
struct RunRecords {
  std::map<int64_t, double> losses;      // train step -> loss
  std::map<int64_t, double> grad_norms;  // train step -> gradient norm
  std::string loss_text;                 // the losses as written, one a line: for exact comparisons
  std::map<int64_t, nlohmann::json> allocations;  // step -> layers
  std::vector<nlohmann::json> evals;
};
RunRecords read_run_records(const std::string& metrics_path);

// How far the weights of one safetensors file are from another's, for runs that compute the same
// to rounding. A tensor may differ by an L2 error of 1e-5 of its L2 norm plus 1e-3 of a
// learning-rate step per element: AdamW turns the rounding of a near-zero gradient into a change
// of its step of up to the rate. The K bias is left out: its whole gradient is rounding noise
// (docs/design.md §5.7).
struct WeightsDifference {
  double worst_ratio = 0;    // the largest tensor's L2 error over what it may differ by
  std::string worst_tensor;  // its name
  double max_abs = 0;        // the largest difference of one weight, over every tensor compared
  bool same_names = true;    // both files hold the same tensors
};
WeightsDifference weights_difference(const std::string& actual_path,
                                     const std::string& expected_path, double lr);
// EXPECTs that the weights at actual_path equal those at expected_path to rounding
// (worst_ratio <= 1); `what` names the comparison in failures.
void expect_weights_equal_to_rounding(const std::string& actual_path,
                                      const std::string& expected_path, double lr,
                                      const std::string& what);

// Expects `run` to have ended with `exit_code` and exactly one error line: "dgqa: error:"
// for exit code 2 (then no "dgqa: failed:" line either), "dgqa: failed:" for any other,
// holding every one of needles. Returns that line ("" when there is none).
std::string expect_error_line(const DgqaRun& run, int exit_code,
                              const std::vector<std::string>& needles);

// expect_error_line(run, 2, needles): bad input, refused before any work.
std::string expect_input_error(const DgqaRun& run, const std::vector<std::string>& needles);

// The lines of text (without their '\n').
std::vector<std::string> lines_of(const std::string& text);

// How many lines of text contain needle.
int count_lines_containing(const std::string& text, const std::string& needle);

bool file_exists(const std::string& path);

// A suite whose tests share one fixture dataset and the weights of short (2-step) GQA and
// DGQA_EMA runs on it, made once per suite; each test gets a fresh directory dir_.
class TrainedWeightsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  // model.safetensors of the scheme's run ("GQA" or "DGQA_EMA").
  static std::string weights_of(const std::string& scheme);

  static std::string* suite_dir_;
  static FixtureDataset* data_;
  std::string dir_;
};

}  // namespace dgqa::tests
