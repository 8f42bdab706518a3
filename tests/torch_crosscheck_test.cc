// Cross-checks the logits of `dgqa eval` against tools/torch_reference.py, an independent
// PyTorch model of docs/design.md §3, on the same weights and the same normalised images:
// weights trained by dgqa for every attention scheme, and weights written by another program.
// Skips unless /usr/bin/python3 has torch and numpy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "io/npy.h"
#include "io/safetensors.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::DgqaRun;
using tests::FixtureConfig;
using tests::FixtureDataset;
using tests::shell_quote;

constexpr const char* kPython = "/usr/bin/python3";
constexpr int kHeads = 4;
constexpr int kClasses = 4;
constexpr uint64_t kSeed = 7;        // the fixture config's seed: PGQA's noise depends on it
constexpr double kTolerance = 1e-4;  // absolute, on logits of order 1

// Writes random weights for the fixture model (D 16, depth 2, H 4, 8x8 images of 1 channel,
// patch 4, 4 classes) with the tensor names of docs/design.md §4, as a program other than
// dgqa would: numpy and a hand-written safetensors header, tensors in reverse name order,
// metadata, and a header padded to 8 bytes.
//   random_weights.py OUT G SEED [ALLOCATION_LAYER0 ALLOCATION_LAYER1]   (e.g. 3,1 0,4)
constexpr const char* kRandomWeightsScript = R"PY(
import json, struct, sys
import numpy as np

out, G, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
allocations = [[int(x) for x in a.split(",")] for a in sys.argv[4:]]
D, depth, H, C, p, S, K = 16, 2, 4, 1, 4, 8, 4
d, tokens = D // H, (S // p) ** 2 + 1
rng = np.random.default_rng(seed)
def normal(*shape, std=0.3):
    return (rng.standard_normal(shape) * std).astype(np.float32)
t = {
    "patch_embed.proj.weight": normal(D, C, p, p, std=0.5),
    "patch_embed.proj.bias": normal(D, std=0.1),
    "cls_token": normal(1, 1, D, std=0.5),
    "pos_embed": normal(1, tokens, D, std=0.5),
    "norm.weight": 1 + normal(D, std=0.1),
    "norm.bias": normal(D, std=0.1),
    "head.weight": normal(K, D),
    "head.bias": normal(K, std=0.1),
}
for i in range(depth):
    b = "blocks.%d." % i
    for name, rows, cols in [("attn.q", D, D), ("attn.k", G * d, D), ("attn.v", G * d, D),
                             ("attn.proj", D, D), ("mlp.fc1", 4 * D, D), ("mlp.fc2", D, 4 * D)]:
        t[b + name + ".weight"] = normal(rows, cols)
        t[b + name + ".bias"] = normal(rows, std=0.1)
    for norm in ("norm1", "norm2"):
        t[b + norm + ".weight"] = 1 + normal(D, std=0.1)
        t[b + norm + ".bias"] = normal(D, std=0.1)
    if allocations:
        t[b + "attn.cache"] = np.abs(normal(G, std=1.0))
        t[b + "attn.allocation"] = np.array(allocations[i], dtype=np.int64)
header, chunks, offset = {"__metadata__": {"format": "pt", "writer": "random_weights.py"}}, [], 0
for name in sorted(t, reverse=True):
    data = np.ascontiguousarray(t[name]).tobytes()
    dtype = "I64" if t[name].dtype == np.int64 else "F32"
    header[name] = {"dtype": dtype, "shape": list(t[name].shape),
                    "data_offsets": [offset, offset + len(data)]}
    chunks.append(data)
    offset += len(data)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
)PY";

struct Case {
  std::string name;
  std::string scheme;
  bool pgqa_eval_noise = true;
  // Empty: dgqa trains the weights. Else the random-weights script writes them, with these
  // arguments after OUT.
  std::string random_weights_args;
};

void PrintTo(const Case& c, std::ostream* out) {
  *out << c.name;
}

// Whether some layer's DGQA allocation in a weights file is not the equal split (2, 2).
bool uneven_allocation(const std::string& weights) {
  const SafetensorsFile file = SafetensorsFile::read(weights);
  for (int layer = 0; layer < 2; ++layer) {
    const std::string name = "blocks." + std::to_string(layer) + ".attn.allocation";
    if (file.as_i64(name) != std::vector<int64_t>{2, 2}) return true;
  }
  return false;
}

int kv_heads(const std::string& scheme) {
  return scheme == "MHA" ? kHeads : 2;
}

class TorchCrosscheckTest : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    std::string output;
    has_torch_ =
        tests::run_command(std::string(kPython) + " -c 'import torch, numpy'", &output) == 0;
    if (!has_torch_) return;
    suite_dir_ = new std::string(tests::make_temp_dir("dgqa_torch_suite_"));
    data_ = new FixtureDataset(tests::write_fixture_dataset(*suite_dir_));
    // The test images exactly as dgqa's loader makes them with mean 0 and std 1.
    const std::vector<float> images = tests::normalised_images(data_->test);
    write_npy_f32(*suite_dir_ + "/images.npy", images.data(),
                  {data_->test.count, 1, data_->test.size, data_->test.size});
    tests::write_file(*suite_dir_ + "/random_weights.py", kRandomWeightsScript);
  }
  static void TearDownTestSuite() {
    if (suite_dir_ != nullptr) std::filesystem::remove_all(*suite_dir_);
    delete data_;
    delete suite_dir_;
    data_ = nullptr;
    suite_dir_ = nullptr;
  }

  void SetUp() override {
    if (!has_torch_) GTEST_SKIP() << kPython << " cannot import torch and numpy";
    dir_ = tests::make_temp_dir("dgqa_torch_");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  static bool has_torch_;
  static std::string* suite_dir_;
  static FixtureDataset* data_;
  std::string dir_;
};

bool TorchCrosscheckTest::has_torch_ = false;
std::string* TorchCrosscheckTest::suite_dir_ = nullptr;
FixtureDataset* TorchCrosscheckTest::data_ = nullptr;

TEST_P(TorchCrosscheckTest, LogitsMatchTheTorchReference) {
  const Case& c = GetParam();
  const int G = kv_heads(c.scheme);
  FixtureConfig settings;
  settings.attention = c.scheme;
  settings.num_kv_heads = c.scheme == "MHA" ? -1 : G;
  settings.seed = kSeed;
  settings.dgqa_window = 1;  // DGQA's allocation is recomputed at steps 0, 1, 2
  settings.pgqa_eval_noise = c.pgqa_eval_noise;
  // KDGQA allocates from the key norms of each forward pass: evaluate the test set as one
  // batch, as the reference does.
  if (c.scheme == "KDGQA") settings.eval_batch_size = data_->test.count;
  const std::string config = tests::write_fixture_config(dir_ + "/config.pbtxt", *data_, settings);

  std::string weights;
  if (c.random_weights_args.empty()) {
    // DGQA: train until the allocation is not the equal split in some layer (it changes from
    // step to step), so that the check means something.
    const bool dgqa = c.scheme == "DGQA_DIFF" || c.scheme == "DGQA_EMA";
    bool uneven = false;
    for (int steps = 3; steps <= (dgqa ? 10 : 3) && !uneven; ++steps) {
      const std::string out = dir_ + "/steps_" + std::to_string(steps);
      const DgqaRun train =
          tests::run_dgqa("train --config " + shell_quote(config) + " --out " + shell_quote(out) +
                              " --set train.max_steps=" + std::to_string(steps),
                          dir_);
      ASSERT_EQ(train.exit_code, 0) << "dgqa train failed:\n" << train.err;
      weights = out + "/model.safetensors";
      uneven = !dgqa || uneven_allocation(weights);
    }
    EXPECT_TRUE(uneven) << "the DGQA allocations of every run are the equal split";
  } else {
    weights = dir_ + "/random.safetensors";
    std::string output;
    ASSERT_EQ(tests::run_command(std::string(kPython) + " " +
                                     shell_quote(*suite_dir_ + "/random_weights.py") + " " +
                                     shell_quote(weights) + " " + c.random_weights_args,
                                 &output),
              0)
        << output;
  }

  const std::string dgqa_logits = dir_ + "/dgqa_logits.npy";
  const DgqaRun eval =
      tests::run_dgqa("eval --config " + shell_quote(config) + " --init-from " +
                          shell_quote(weights) + " --logits-out " + shell_quote(dgqa_logits),
                      dir_);
  ASSERT_EQ(eval.exit_code, 0) << "dgqa eval failed:\n" << eval.err;

  const std::string torch_logits = dir_ + "/torch_logits.npy";
  std::string output;
  const std::string command =
      std::string(kPython) + " " +
      shell_quote(std::string(DGQA_SOURCE_DIR) + "/tools/torch_reference.py") + " --weights " +
      shell_quote(weights) + " --images " + shell_quote(*suite_dir_ + "/images.npy") +
      " --scheme " + c.scheme + " --num-heads " + std::to_string(kHeads) + " --num-kv-heads " +
      std::to_string(G) + " --patch-size 4 --seed " + std::to_string(kSeed) +
      " --pgqa-eval-noise " + (c.pgqa_eval_noise ? "1" : "0") + " --logits-out " +
      shell_quote(torch_logits);
  ASSERT_EQ(tests::run_command(command, &output), 0) << command << "\n" << output;

  const NpyArray ours = read_npy_f32(dgqa_logits);
  const NpyArray theirs = read_npy_f32(torch_logits);
  const std::vector<int64_t> shape = {data_->test.count, kClasses};
  ASSERT_EQ(ours.shape, shape);
  ASSERT_EQ(theirs.shape, shape);
  double largest_difference = 0, largest_logit = 0;
  for (size_t i = 0; i < ours.data.size(); ++i) {
    ASSERT_TRUE(std::isfinite(ours.data[i])) << "dgqa logit " << i;
    const double difference = std::fabs(double{ours.data[i]} - double{theirs.data[i]});
    largest_difference = std::max(largest_difference, difference);
    largest_logit = std::max(largest_logit, std::fabs(double{theirs.data[i]}));
    EXPECT_LE(difference, kTolerance) << "logit (" << i / kClasses << ", " << i % kClasses
                                      << "): dgqa " << ours.data[i] << ", torch " << theirs.data[i];
    if (difference > kTolerance) break;  // one message is enough
  }
  EXPECT_GT(largest_logit, 0.1) << "the logits are too small to tell models apart";
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", largest_difference);
  RecordProperty("largest_difference", text);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const std::string scheme : {"MHA", "GQA", "KDGQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"}) {
    cases.push_back({scheme, scheme, true, ""});
  }
  cases.push_back({"PGQA_without_eval_noise", "PGQA", false, ""});
  cases.push_back({"random_GQA", "GQA", true, "2 11"});
  cases.push_back({"random_MHA", "MHA", true, "4 12"});
  cases.push_back({"random_PGQA", "PGQA", true, "2 13"});
  // Uneven allocations, one of them giving a K/V head no query head at all.
  cases.push_back({"random_DGQA_EMA", "DGQA_EMA", true, "2 14 3,1 0,4"});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Schemes, TorchCrosscheckTest, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           return param.param.name;
                         });

}  // namespace
}  // namespace dgqa
