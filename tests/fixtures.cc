#include "tests/fixtures.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "io/safetensors.h"
#include "tests/test_util.h"

namespace dgqa::tests {
namespace {

// A small LCG (tests must not depend on libc's generators).
class Lcg {
 public:
  explicit Lcg(uint32_t seed) : state_(seed * 6364136223846793005ULL + 1442695040888963407ULL) {}
  uint32_t next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state_ >> 33);
  }

 private:
  uint64_t state_;
};

void append_big_endian32(std::string* bytes, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    bytes->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

}  // namespace

FixtureSplit make_fixture_split(int count, int size, int classes, uint32_t seed) {
  FixtureSplit split;
  split.count = count;
  split.size = size;
  Lcg random(seed);
  split.labels.resize(count);
  for (int i = 0; i < count; ++i) split.labels[i] = static_cast<uint8_t>(i % classes);
  for (int i = count - 1; i > 0; --i) {  // Fisher-Yates
    std::swap(split.labels[i], split.labels[random.next() % (i + 1)]);
  }
  split.pixels.resize(static_cast<size_t>(count) * size * size);
  for (int i = 0; i < count; ++i) {
    const int label = split.labels[i];
    const int first_row = label * size / classes;
    const int last_row = (label + 1) * size / classes;  // exclusive
    for (int row = 0; row < size; ++row) {
      for (int col = 0; col < size; ++col) {
        const bool stripe = row >= first_row && row < last_row;
        const int value = (stripe ? 150 : 0) + static_cast<int>(random.next() % 90);
        split.pixels[(static_cast<size_t>(i) * size + row) * size + col] =
            static_cast<uint8_t>(value);
      }
    }
  }
  return split;
}

std::string idx_images_bytes(const FixtureSplit& split) {
  std::string bytes;
  append_big_endian32(&bytes, 0x00000803);
  append_big_endian32(&bytes, static_cast<uint32_t>(split.count));
  append_big_endian32(&bytes, static_cast<uint32_t>(split.size));
  append_big_endian32(&bytes, static_cast<uint32_t>(split.size));
  bytes.append(split.pixels.begin(), split.pixels.end());
  return bytes;
}

std::string idx_labels_bytes(const FixtureSplit& split) {
  std::string bytes;
  append_big_endian32(&bytes, 0x00000801);
  append_big_endian32(&bytes, static_cast<uint32_t>(split.count));
  bytes.append(split.labels.begin(), split.labels.end());
  return bytes;
}

void write_gzip_file(const std::string& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  if (file == nullptr) throw std::runtime_error("cannot write " + path);
  const int written = gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  const int closed = gzclose(file);
  if (written != static_cast<int>(bytes.size()) || closed != Z_OK) {
    throw std::runtime_error("cannot write " + path);
  }
}

FixtureDataset write_fixture_dataset(const std::string& dir, const FixtureDatasetOptions& options) {
  FixtureDataset data;
  data.train = make_fixture_split(options.train_count, options.image_size, options.num_classes, 1);
  data.test = make_fixture_split(options.test_count, options.image_size, options.num_classes, 2);
  const auto write = [&](const std::string& name, const std::string& bytes, bool gzip) {
    const std::string path = dir + "/" + name + (gzip ? ".gz" : "");
    gzip ? write_gzip_file(path, bytes) : write_file(path, bytes);
    return path;
  };
  data.train_images =
      write("train-images-idx3-ubyte", idx_images_bytes(data.train), options.gzip_train);
  data.train_labels =
      write("train-labels-idx1-ubyte", idx_labels_bytes(data.train), options.gzip_train);
  data.test_images =
      write("t10k-images-idx3-ubyte", idx_images_bytes(data.test), options.gzip_test);
  data.test_labels =
      write("t10k-labels-idx1-ubyte", idx_labels_bytes(data.test), options.gzip_test);
  return data;
}

std::string fixture_config_text(const FixtureDataset& data, const FixtureConfig& config) {
  std::ostringstream text;
  text << "seed: " << config.seed << "\n"
       << "model {\n"
       << "  image_size: " << config.image_size << "\n"
       << "  patch_size: " << config.patch_size << "\n"
       << "  in_channels: 1\n"
       << "  num_classes: " << config.num_classes << "\n"
       << "  embed_dim: " << config.embed_dim << "\n"
       << "  depth: " << config.depth << "\n"
       << "  num_heads: " << config.num_heads << "\n";
  if (config.num_kv_heads >= 0) text << "  num_kv_heads: " << config.num_kv_heads << "\n";
  text << "  attention: " << config.attention << "\n"
       << "  dgqa_window: " << config.dgqa_window << "\n"
       << "  pgqa_eval_noise: " << (config.pgqa_eval_noise ? "true" : "false") << "\n"
       << config.extra_model << "}\n"
       << "data {\n"
       << "  format: IDX\n"
       << "  train_images: \"" << data.train_images << "\"\n"
       << "  train_labels: \"" << data.train_labels << "\"\n"
       << "  test_images: \"" << data.test_images << "\"\n"
       << "  test_labels: \"" << data.test_labels << "\"\n"
       << "  mean: 0\n"
       << "  std: 1\n"
       << "}\n"
       << "optimizer {\n"
       << "  lr: " << config.lr << "\n"
       << "  weight_decay: 0.01\n"
       << config.extra_optimizer << "}\n"
       << "schedule {\n"
       << "  " << config.schedule << "\n"
       << "}\n"
       << "train {\n"
       << "  global_batch_size: " << config.batch_size << "\n"
       << "  max_steps: " << config.max_steps << "\n"
       << "  eval_every_steps: " << config.eval_every_steps << "\n"
       << "  eval_batch_size: " << config.eval_batch_size << "\n"
       << "  log_every_steps: " << config.log_every_steps << "\n"
       << "  threads: " << config.threads << "\n"
       << config.extra_train << "}\n"
       << config.extra;
  return text.str();
}

std::string write_fixture_config(const std::string& path, const FixtureDataset& data,
                                 const FixtureConfig& config) {
  write_file(path, fixture_config_text(data, config));
  return path;
}

namespace {
constexpr const char* kSealPrefix = "# crc32: ";
}  // namespace

std::string state_body(const std::string& state_text) {
  return state_text.substr(0, state_text.rfind(kSealPrefix));
}

std::string sealed_state(const std::string& body) {
  char line[32];
  std::snprintf(line, sizeof(line), "%s%08x\n", kSealPrefix, static_cast<unsigned>(crc32_of(body)));
  return body + line;
}

uint32_t crc32_of(const std::string& bytes) {
  return static_cast<uint32_t>(
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

std::vector<float> normalised_images(const FixtureSplit& split) {
  std::vector<float> images(split.pixels.size());
  for (size_t i = 0; i < images.size(); ++i)
    images[i] = static_cast<float>(split.pixels[i]) / 255.f;
  return images;
}

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

namespace {

std::string from_environment(const char* name, const char* built_in) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : built_in;
}

}  // namespace

std::string dgqa_binary() {
  return from_environment("DGQA_TEST_BINARY", DGQA_BINARY);
}

std::string mpiexec_path() {
  return from_environment("DGQA_TEST_MPIEXEC", DGQA_MPIEXEC);
}

FixtureConfig rank_invariance_config(const std::string& scheme, int max_steps) {
  FixtureConfig config;
  config.attention = scheme;
  if (scheme == "MHA") config.num_kv_heads = -1;  // one K/V head per query head
  // KDGQA with two K/V heads only ever gives all heads to the larger norm; four make the
  // allocation depend on the norms' values.
  if (scheme == "KDGQA") config.num_kv_heads = 4;
  config.lr = 1e-3f;
  config.embed_dim = 32;
  config.num_heads = 8;
  config.extra_model = "init_std: 0.2";
  config.batch_size = 32;
  config.max_steps = max_steps;
  config.dgqa_window = 3;
  config.eval_every_steps = 10;
  config.extra = "dist { verify_replicas: true bucket_mb: 0.002 }";
  return config;
}

std::string mpirun_prefix(int ranks) {
  return shell_quote(mpiexec_path()) + " --allow-run-as-root --oversubscribe --bind-to none -np " +
         std::to_string(ranks) + " -x OMP_NUM_THREADS=1 ";
}

RunRecords read_run_records(const std::string& metrics_path) {
  RunRecords records;
  std::istringstream lines(read_file(metrics_path));
  std::string line;
  while (std::getline(lines, line)) {
    const nlohmann::json record = nlohmann::json::parse(line);
    const std::string kind = record.at("kind");
    if (kind == "train") {
      records.losses[record.at("step")] = record.at("loss");
      records.grad_norms[record.at("step")] = record.at("grad_norm");
      records.loss_text += record.at("loss").dump() + "\n";
    }
    if (kind == "allocation") records.allocations[record.at("step")] = record.at("layers");
    if (kind == "eval") records.evals.push_back(record);
  }
  return records;
}

DgqaRun run_dgqa(const std::string& args, const std::string& scratch_dir) {
  const std::string out_path = scratch_dir + "/dgqa.stdout";
  const std::string err_path = scratch_dir + "/dgqa.stderr";
  DgqaRun run;
  run.exit_code = run_command("(" + shell_quote(dgqa_binary()) + " " + args + " >" +
                              shell_quote(out_path) + " 2>" + shell_quote(err_path) + ")");
  run.out = read_file(out_path);
  run.err = read_file(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return run;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

int count_lines_containing(const std::string& text, const std::string& needle) {
  int count = 0;
  for (const std::string& line : lines_of(text)) count += line.find(needle) != std::string::npos;
  return count;
}

bool file_exists(const std::string& path) {
  return std::filesystem::exists(path);
}

std::string expect_error_line(const DgqaRun& run, int exit_code,
                              const std::vector<std::string>& needles) {
  const std::string prefix = exit_code == 2 ? "dgqa: error:" : "dgqa: failed:";
  EXPECT_EQ(run.exit_code, exit_code) << "stderr:\n" << run.err;
  EXPECT_EQ(count_lines_containing(run.err, prefix), 1) << "stderr:\n" << run.err;
  if (exit_code == 2) {
    EXPECT_EQ(run.err.find("dgqa: failed:"), std::string::npos) << "stderr:\n" << run.err;
  }
  std::string line;
  for (const std::string& text : lines_of(run.err)) {
    if (line.empty() && text.find(prefix) != std::string::npos) line = text;
  }
  for (const std::string& needle : needles) {
    EXPECT_NE(line.find(needle), std::string::npos)
        << "the error line does not name '" << needle << "': " << line;
  }
  return line;
}

std::string expect_input_error(const DgqaRun& run, const std::vector<std::string>& needles) {
  return expect_error_line(run, 2, needles);
}

std::string* TrainedWeightsTest::suite_dir_ = nullptr;
FixtureDataset* TrainedWeightsTest::data_ = nullptr;

void TrainedWeightsTest::SetUpTestSuite() {
  suite_dir_ = new std::string(make_temp_dir("dgqa_trained_suite_"));
  data_ = new FixtureDataset(write_fixture_dataset(*suite_dir_));
  for (const std::string scheme : {"GQA", "DGQA_EMA"}) {
    FixtureConfig config;
    config.attention = scheme;
    config.max_steps = 2;
    const std::string path =
        write_fixture_config(*suite_dir_ + "/" + scheme + ".pbtxt", *data_, config);
    const DgqaRun run = run_dgqa(
        "train --config " + shell_quote(path) + " --out " + shell_quote(*suite_dir_ + "/" + scheme),
        *suite_dir_);
    ASSERT_EQ(run.exit_code, 0) << run.err;
  }
}

void TrainedWeightsTest::TearDownTestSuite() {
  std::filesystem::remove_all(*suite_dir_);
  delete data_;
  delete suite_dir_;
}

void TrainedWeightsTest::SetUp() {
  dir_ = make_temp_dir("dgqa_test_");
}

void TrainedWeightsTest::TearDown() {
  std::filesystem::remove_all(dir_);
}

std::string TrainedWeightsTest::weights_of(const std::string& scheme) {
  return *suite_dir_ + "/" + scheme + "/model.safetensors";
}

WeightsDifference weights_difference(const std::string& actual_path,
                                     const std::string& expected_path, double lr) {
  const SafetensorsFile actual = SafetensorsFile::read(actual_path);
  const SafetensorsFile expected = SafetensorsFile::read(expected_path);
  WeightsDifference difference;
  difference.same_names = actual.names() == expected.names();
  if (!difference.same_names) return difference;
  for (const std::string& name : expected.names()) {
    if (name.find("attn.k.bias") != std::string::npos || expected.get(name).dtype != "F32") {
      continue;
    }
    const std::vector<float> a = actual.as_f32(name), e = expected.as_f32(name);
    double error = 0, norm = 0;
    for (size_t i = 0; i < e.size(); ++i) {
      const double gap = double{a[i]} - e[i];
      error += gap * gap;
      norm += double{e[i]} * e[i];
      difference.max_abs = std::max(difference.max_abs, std::fabs(gap));
    }
    const double allowed = 1e-5 * std::sqrt(norm) + 1e-3 * lr * std::sqrt(e.size());
    if (std::sqrt(error) / allowed > difference.worst_ratio) {
      difference.worst_ratio = std::sqrt(error) / allowed;
      difference.worst_tensor = name;
    }
  }
  return difference;
}

void expect_weights_equal_to_rounding(const std::string& actual_path,
                                      const std::string& expected_path, double lr,
                                      const std::string& what) {
  const WeightsDifference difference = weights_difference(actual_path, expected_path, lr);
  EXPECT_TRUE(difference.same_names) << what << ": other tensors";
  EXPECT_LE(difference.worst_ratio, 1.0)
      << what << ": " << difference.worst_tensor << " differs by " << difference.worst_ratio
      << " times what rounding allows (largest difference of a weight: " << difference.max_abs
      << ")";
  std::printf("%s: weights differ by at most %.3g (%.3g of the rounding allowance%s%s)\n",
              what.c_str(), difference.max_abs, difference.worst_ratio,
              difference.worst_tensor.empty() ? "" : ", in ", difference.worst_tensor.c_str());
}

}  // namespace dgqa::tests
