// End-to-end tests of `dgqa train` and `dgqa eval` (docs/design.md §7): the binary is run as a
// user would, on a tiny Fashion-MNIST-like dataset written by the test, for every attention
// scheme; its metrics.jsonl, model.safetensors, eval output and logits are checked.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "io/safetensors.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using nlohmann::json;
using tests::DgqaRun;
using tests::FixtureConfig;
using tests::FixtureDataset;
using tests::shell_quote;

const std::vector<std::string> kSchemes = {"MHA", "GQA", "KDGQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"};

constexpr int kHeads = 4;
constexpr int kDepth = 2;
constexpr int kClasses = 4;

bool is_dgqa(const std::string& scheme) {
  return scheme == "DGQA_DIFF" || scheme == "DGQA_EMA";
}

// The fixture config of a scheme: G = 2, except MHA, which leaves it unset.
FixtureConfig scheme_config(const std::string& scheme, int max_steps) {
  FixtureConfig config;
  config.attention = scheme;
  config.num_kv_heads = scheme == "MHA" ? -1 : 2;
  config.max_steps = max_steps;
  return config;
}

int kv_heads(const std::string& scheme) {
  return scheme == "MHA" ? kHeads : 2;
}

// The records of a metrics.jsonl file; a line that is not JSON is a test failure.
std::vector<json> read_metrics(const std::string& path) {
  std::vector<json> records;
  if (!tests::file_exists(path)) {
    ADD_FAILURE() << path << " does not exist";
    return records;
  }
  for (const std::string& line : tests::lines_of(tests::read_file(path))) {
    try {
      records.push_back(json::parse(line));
    } catch (const json::exception& error) {
      ADD_FAILURE() << path << ": a line is not JSON (" << error.what() << "): " << line;
    }
  }
  return records;
}

std::vector<json> of_kind(const std::vector<json>& records, const std::string& kind) {
  std::vector<json> selected;
  for (const json& record : records) {
    if (record.value("kind", "") == kind) selected.push_back(record);
  }
  return selected;
}

// Expects exactly these keys, each of them a number (besides "kind").
void expect_numeric_keys(const json& record, const std::set<std::string>& keys) {
  std::set<std::string> got;
  for (const auto& item : record.items()) got.insert(item.key());
  std::set<std::string> expected = keys;
  expected.insert("kind");
  EXPECT_EQ(got, expected) << record.dump();
  for (const std::string& key : keys) {
    if (key == "layers" || !record.contains(key)) continue;
    EXPECT_TRUE(record[key].is_number()) << key << " in " << record.dump();
    if (record[key].is_number()) {
      EXPECT_TRUE(std::isfinite(record[key].get<double>())) << key << " in " << record.dump();
    }
  }
}

// The index of the largest logit of each row (the first on ties, as dgqa eval counts top-1).
double argmax_accuracy(const NpyArray& logits, const std::vector<uint8_t>& labels) {
  const int64_t n = logits.shape[0], k = logits.shape[1];
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = logits.data.data() + i * k;
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j) {
      if (row[j] > row[best]) best = j;
    }
    correct += best == labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_dir_ = new std::string(tests::make_temp_dir("dgqa_cli_data_"));
    data_ = new FixtureDataset(tests::write_fixture_dataset(*data_dir_));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*data_dir_);
    delete data_;
    delete data_dir_;
    data_ = nullptr;
    data_dir_ = nullptr;
  }

  void SetUp() override { dir_ = tests::make_temp_dir("dgqa_cli_"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write_config(const FixtureConfig& config, const std::string& name = "config.pbtxt") {
    return tests::write_fixture_config(dir_ + "/" + name, *data_, config);
  }

  // `dgqa train --config config --out out ARGS`; expects success.
  void run_train(const std::string& config, const std::string& out, const std::string& args = "") {
    const DgqaRun run = tests::run_dgqa(
        "train --config " + shell_quote(config) + " --out " + shell_quote(out) + " " + args, dir_);
    ASSERT_EQ(run.exit_code, 0) << "dgqa train failed:\n" << run.err;
  }

  // `dgqa eval --config config --init-from weights ARGS`; expects success and one JSON line.
  json run_eval(const std::string& config, const std::string& weights,
                const std::string& args = "") {
    const DgqaRun run = tests::run_dgqa("eval --config " + shell_quote(config) + " --init-from " +
                                            shell_quote(weights) + " " + args,
                                        dir_);
    EXPECT_EQ(run.exit_code, 0) << "dgqa eval failed:\n" << run.err;
    const std::vector<std::string> lines = tests::lines_of(run.out);
    EXPECT_EQ(lines.size(), 1u) << "stdout of dgqa eval:\n" << run.out;
    if (lines.empty()) return json();
    try {
      return json::parse(lines.back());
    } catch (const json::exception& error) {
      ADD_FAILURE() << "dgqa eval's output is not JSON (" << error.what() << "): " << lines.back();
      return json();
    }
  }

  static std::string* data_dir_;
  static FixtureDataset* data_;
  std::string dir_;
};

std::string* CliTest::data_dir_ = nullptr;
FixtureDataset* CliTest::data_ = nullptr;

TEST_F(CliTest, HelpPrintsUsage) {
  const DgqaRun run = tests::run_dgqa("help", dir_);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("dgqa train"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("dgqa eval"), std::string::npos) << run.out;
}

class SchemeTest : public CliTest, public ::testing::WithParamInterface<std::string> {};

// One training run of each scheme: its metrics, its weights, and `dgqa eval` of those weights.
TEST_P(SchemeTest, TrainWritesMetricsAndModelThatEvalReproduces) {
  const std::string scheme = GetParam();
  const int G = kv_heads(scheme);
  constexpr int kSteps = 6;
  const std::string config = write_config(scheme_config(scheme, kSteps));
  const std::string out = dir_ + "/out";
  ASSERT_NO_FATAL_FAILURE(run_train(config, out));

  const std::vector<json> records = read_metrics(out + "/metrics.jsonl");
  ASSERT_FALSE(records.empty());
  for (const json& record : records) {
    ASSERT_TRUE(record.is_object()) << record.dump();
    const std::string kind = record.value("kind", "");
    EXPECT_TRUE(kind == "train" || kind == "eval" || kind == "allocation" || kind == "key_norms" ||
                kind == "dgqa_cache")
        << record.dump();
  }

  // Train lines: one per step (log_every_steps 1), all in epoch 0 (8 batches per epoch).
  const std::vector<json> train = of_kind(records, "train");
  ASSERT_EQ(train.size(), static_cast<size_t>(kSteps));
  for (size_t i = 0; i < train.size(); ++i) {
    const json& line = train[i];
    expect_numeric_keys(line,
                        {"step", "epoch", "loss", "lr", "grad_norm", "images_per_sec", "top1"});
    // One step of 8 images an interval: k/8 of them right.
    const double top1 = line.value("top1", -1.0);
    EXPECT_TRUE(top1 >= 0 && top1 <= 1 && top1 * 8 == std::round(top1 * 8)) << line.dump();
    EXPECT_EQ(line.value("step", -1), static_cast<int>(i) + 1);
    EXPECT_EQ(line.value("epoch", -1), 0);
    EXPECT_GT(line.value("loss", 0.0), 0.0);
    EXPECT_NEAR(line.value("lr", 0.0), 3e-3, 1e-9);  // constant schedule, no warmup
    EXPECT_GT(line.value("grad_norm", 0.0), 0.0);
    EXPECT_GT(line.value("images_per_sec", 0.0), 0.0);
  }

  // Eval lines: the whole test set; the last line of the file is the final evaluation.
  const std::vector<json> eval = of_kind(records, "eval");
  ASSERT_FALSE(eval.empty());
  for (const json& line : eval) {
    expect_numeric_keys(line, {"step", "loss", "top1", "top5", "examples"});
    EXPECT_EQ(line.value("top5", -1.0), 1.0) << "4 classes: every label is among the 5 largest";
    EXPECT_EQ(line.value("examples", -1), data_->test.count);
    EXPECT_GT(line.value("loss", 0.0), 0.0);
    EXPECT_GE(line.value("top1", -1.0), 0.0);
    EXPECT_LE(line.value("top1", 2.0), 1.0);
  }
  EXPECT_EQ(records.back().value("kind", ""), "eval") << "training must end with an evaluation";
  EXPECT_EQ(records.back().value("step", -1), kSteps);
  const json final_eval = records.back();

  // Allocation lines: depth layers of G non-negative head counts summing to H.
  const std::vector<json> allocation = of_kind(records, "allocation");
  ASSERT_FALSE(allocation.empty());
  EXPECT_EQ(allocation.front().value("step", -1), 1);
  for (const json& line : allocation) {
    expect_numeric_keys(line, {"step", "layers"});
    ASSERT_TRUE(line["layers"].is_array()) << line.dump();
    ASSERT_EQ(line["layers"].size(), static_cast<size_t>(kDepth)) << line.dump();
    for (const json& layer : line["layers"]) {
      const std::vector<int> heads = layer.get<std::vector<int>>();
      ASSERT_EQ(heads.size(), static_cast<size_t>(G)) << line.dump();
      int sum = 0;
      for (int count : heads) {
        EXPECT_GE(count, 0) << line.dump();
        sum += count;
      }
      EXPECT_EQ(sum, kHeads) << line.dump();
      if (scheme == "MHA") {
        EXPECT_EQ(heads, std::vector<int>(4, 1)) << line.dump();
      }
      if (scheme == "GQA" || scheme == "PGQA") {
        EXPECT_EQ(heads, (std::vector<int>{2, 2})) << line.dump();
      }
      if (scheme == "KDGQA") {  // with G = 2 the min-max normalisation gives (0, H) or (H, 0)
        EXPECT_TRUE(heads == (std::vector<int>{0, 4}) || heads == (std::vector<int>{4, 0}))
            << line.dump();
      }
    }
  }
  if (scheme == "MHA" || scheme == "GQA" || scheme == "PGQA") {
    EXPECT_EQ(allocation.size(), 1u) << "a fixed allocation is logged once";
  }
  if (scheme == "KDGQA") {
    EXPECT_EQ(allocation.size(), static_cast<size_t>(kSteps)) << "KDGQA logs at every log step";
  }

  // The weights: docs/design.md §4 names and shapes, and DGQA's state.
  const std::string weights = out + "/model.safetensors";
  ASSERT_TRUE(tests::file_exists(weights));
  const SafetensorsFile file = SafetensorsFile::read(weights);
  EXPECT_EQ(file.get("patch_embed.proj.weight").shape, (std::vector<int64_t>{16, 1, 4, 4}));
  EXPECT_EQ(file.get("pos_embed").shape, (std::vector<int64_t>{1, 5, 16}));
  EXPECT_EQ(file.get("blocks.1.attn.q.weight").shape, (std::vector<int64_t>{16, 16}));
  EXPECT_EQ(file.get("blocks.1.attn.k.weight").shape, (std::vector<int64_t>{G * 4, 16}));
  EXPECT_EQ(file.get("blocks.1.attn.v.bias").shape, (std::vector<int64_t>{G * 4}));
  EXPECT_EQ(file.get("head.weight").shape, (std::vector<int64_t>{kClasses, 16}));
  EXPECT_EQ(file.has("blocks.0.attn.allocation"), is_dgqa(scheme));
  if (is_dgqa(scheme)) {
    for (int layer = 0; layer < kDepth; ++layer) {
      const std::string prefix = "blocks." + std::to_string(layer) + ".attn.";
      EXPECT_EQ(file.get(prefix + "cache").dtype, "F32");
      const std::vector<int64_t> saved = file.as_i64(prefix + "allocation");
      const std::vector<int> logged = allocation.back()["layers"][layer].get<std::vector<int>>();
      EXPECT_EQ(std::vector<int64_t>(logged.begin(), logged.end()), saved)
          << "the saved allocation of layer " << layer << " is the last one logged";
    }
  }

  // `dgqa eval` of the saved weights reproduces the final evaluation of training (DGQA's
  // allocation is frozen at evaluation; PGQA's evaluation noise is fixed).
  const std::string logits_path = dir_ + "/logits.npy";
  const json result = run_eval(config, weights, "--logits-out " + shell_quote(logits_path));
  ASSERT_TRUE(result.is_object()) << result.dump();
  EXPECT_NEAR(result.value("loss", -1.0), final_eval.value("loss", -2.0), 1e-5);
  EXPECT_NEAR(result.value("top1", -1.0), final_eval.value("top1", -2.0), 1e-5);
  EXPECT_EQ(result.value("examples", -1), data_->test.count);

  const NpyArray logits = read_npy_f32(logits_path);
  ASSERT_EQ(logits.shape, (std::vector<int64_t>{data_->test.count, kClasses}));
  for (float value : logits.data) ASSERT_TRUE(std::isfinite(value));
  EXPECT_NEAR(argmax_accuracy(logits, data_->test.labels), result.value("top1", -1.0), 1e-6);
}

// Two runs with the same seed: the same losses and byte-identical weights.
TEST_P(SchemeTest, SameSeedGivesIdenticalRuns) {
  const std::string scheme = GetParam();
  FixtureConfig settings = scheme_config(scheme, 5);
  settings.threads = 2;
  const std::string config = write_config(settings);
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/a"));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/b"));

  const auto losses = [](const std::vector<json>& records) {
    std::vector<std::string> values;  // the loss fields as JSON writes them: exact
    for (const json& record : records) {
      if (record.contains("loss")) {
        values.push_back(record.value("kind", "") + " " + record["loss"].dump());
      }
      if (record.contains("layers")) values.push_back(record.dump());
    }
    return values;
  };
  const std::vector<std::string> a = losses(read_metrics(dir_ + "/a/metrics.jsonl"));
  const std::vector<std::string> b = losses(read_metrics(dir_ + "/b/metrics.jsonl"));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_TRUE(tests::read_file(dir_ + "/a/model.safetensors") ==
              tests::read_file(dir_ + "/b/model.safetensors"))
      << "model.safetensors differs between two runs with the same seed";
}

// Evaluations during training (with DGQA's PER_BATCH mode, which recomputes the allocation on
// a copy) must not change the training: the same losses and weights as with no evaluation
// until the end.
TEST_P(SchemeTest, EvaluationDoesNotDisturbTraining) {
  const std::string scheme = GetParam();
  const std::string config = write_config(scheme_config(scheme, 5));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/quiet"));
  ASSERT_NO_FATAL_FAILURE(run_train(
      config, dir_ + "/busy", "--set train.eval_every_steps=1 --set model.dgqa_eval=PER_BATCH"));
  const auto train_losses = [](const std::vector<json>& records) {
    std::vector<std::string> values;
    for (const json& line : of_kind(records, "train")) values.push_back(line["loss"].dump());
    return values;
  };
  const std::vector<json> quiet = read_metrics(dir_ + "/quiet/metrics.jsonl");
  const std::vector<json> busy = read_metrics(dir_ + "/busy/metrics.jsonl");
  EXPECT_EQ(of_kind(busy, "eval").size(), 5u);
  EXPECT_EQ(train_losses(quiet), train_losses(busy));
  EXPECT_EQ(of_kind(quiet, "allocation"), of_kind(busy, "allocation"));
  EXPECT_TRUE(tests::read_file(dir_ + "/quiet/model.safetensors") ==
              tests::read_file(dir_ + "/busy/model.safetensors"))
      << "evaluating during training changed the trained weights";
}

// Each image's logits do not depend on how the test set is cut into eval batches (except for
// KDGQA, whose allocation comes from the keys of the whole batch).
class BatchIndependentSchemeTest : public SchemeTest {};

TEST_P(BatchIndependentSchemeTest, EvalLogitsDoNotDependOnTheBatchSize) {
  const std::string scheme = GetParam();
  const std::string config = write_config(scheme_config(scheme, 3));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/out"));
  std::vector<NpyArray> logits;
  for (const int batch : {16, 7, 40, 64}) {
    const std::string path = dir_ + "/logits_" + std::to_string(batch) + ".npy";
    const json result = run_eval(config, dir_ + "/out/model.safetensors",
                                 "--set train.eval_batch_size=" + std::to_string(batch) +
                                     " --logits-out " + shell_quote(path));
    EXPECT_EQ(result.value("examples", -1), data_->test.count) << "eval batch " << batch;
    logits.push_back(read_npy_f32(path));
  }
  for (size_t i = 1; i < logits.size(); ++i) {
    ASSERT_EQ(logits[i].shape, logits[0].shape);
    for (size_t j = 0; j < logits[0].data.size(); ++j) {
      ASSERT_NEAR(logits[i].data[j], logits[0].data[j], 1e-5)
          << "logit " << j << " of run " << i << " of {16, 7, 40, 64}";
    }
  }
}

// A diverging run (an absurd learning rate makes the weights, then the keys, non-finite) must
// end with exit 1 and a message that says so, not an internal error from deep inside (KDGQA
// and DGQA once rounded NaN key norms to int, undefined behaviour).
TEST_P(SchemeTest, DivergingTrainingEndsCleanly) {
  const std::string scheme = GetParam();
  const std::string config = write_config(scheme_config(scheme, 3));
  const std::string out = dir_ + "/out";
  const DgqaRun run = tests::run_dgqa("train --config " + shell_quote(config) + " --out " +
                                          shell_quote(out) + " --set optimizer.lr=1e30",
                                      dir_);
  // The run stops at the first non-finite loss or key norm, saying so.
  ASSERT_EQ(run.exit_code, 1) << run.err;
  std::string failure;
  for (const std::string& line : tests::lines_of(run.err)) {
    if (line.find("dgqa: failed:") != std::string::npos) failure = line;
  }
  EXPECT_NE(failure.find("diverged"), std::string::npos) << run.err;
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, SchemeTest, ::testing::ValuesIn(kSchemes),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param;
                         });

INSTANTIATE_TEST_SUITE_P(AllButKdgqa, BatchIndependentSchemeTest,
                         ::testing::Values("MHA", "GQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param;
                         });

TEST_F(CliTest, DifferentSeedsGiveDifferentRuns) {
  const std::string config = write_config(scheme_config("GQA", 3));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/a"));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/b", "--set seed=8"));
  EXPECT_FALSE(tests::read_file(dir_ + "/a/model.safetensors") ==
               tests::read_file(dir_ + "/b/model.safetensors"));
}

TEST_F(CliTest, ThreadCountDoesNotChangeTheResult) {
  // The kernels sum in an order that does not depend on the number of threads, so a run
  // resumed on a machine with other cores continues bit for bit.
  const std::string config = write_config(scheme_config("DGQA_EMA", 6));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/one", "--set train.threads=1"));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/three", "--set train.threads=3"));
  EXPECT_TRUE(tests::read_file(dir_ + "/one/model.safetensors") ==
              tests::read_file(dir_ + "/three/model.safetensors"));
}

TEST_F(CliTest, EvalEveryStepsOverride) {
  const std::string config = write_config(scheme_config("GQA", 7));
  const std::string out = dir_ + "/out";
  ASSERT_NO_FATAL_FAILURE(run_train(config, out, "--set train.eval_every_steps=2"));
  std::vector<int> steps;
  for (const json& line : of_kind(read_metrics(out + "/metrics.jsonl"), "eval")) {
    steps.push_back(line.value("step", -1));
    EXPECT_EQ(line.value("examples", -1), data_->test.count);
  }
  // Every 2 steps, and the run still ends with an evaluation at its last step.
  EXPECT_EQ(steps, (std::vector<int>{2, 4, 6, 7}));
}

TEST_F(CliTest, EvalAtTheEndOfEachEpochByDefault) {
  // 64 training images in batches of 8: 8 steps per epoch; 12 steps end in epoch 1.
  const std::string config = write_config(scheme_config("GQA", 12));
  const std::string out = dir_ + "/out";
  ASSERT_NO_FATAL_FAILURE(run_train(config, out));
  const std::vector<json> records = read_metrics(out + "/metrics.jsonl");
  std::vector<int> steps;
  for (const json& line : of_kind(records, "eval")) steps.push_back(line.value("step", -1));
  EXPECT_EQ(steps, (std::vector<int>{8, 12}));
  const std::vector<json> train = of_kind(records, "train");
  ASSERT_EQ(train.size(), 12u);
  EXPECT_EQ(train[7].value("epoch", -1), 0);
  EXPECT_EQ(train[8].value("epoch", -1), 1);
}

TEST_F(CliTest, LogEverySteps) {
  const std::string config = write_config(scheme_config("GQA", 6));
  const std::string out = dir_ + "/out";
  ASSERT_NO_FATAL_FAILURE(run_train(config, out, "--set train.log_every_steps=4"));
  std::vector<int> steps;
  for (const json& line : of_kind(read_metrics(out + "/metrics.jsonl"), "train")) {
    steps.push_back(line.value("step", -1));
  }
  EXPECT_EQ(steps, (std::vector<int>{4, 6})) << "every 4 steps, and the last step";
}

TEST_F(CliTest, LogEveryStepsZeroIsRefused) {
  // Logging needs a period of at least one step; 0 is bad input, not a crash (step % 0).
  const std::string config = write_config(scheme_config("GQA", 3));
  const std::string out = dir_ + "/out";
  const DgqaRun run = tests::run_dgqa("train --config " + shell_quote(config) + " --out " +
                                          shell_quote(out) + " --set train.log_every_steps=0",
                                      dir_);
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_EQ(tests::count_lines_containing(run.err, "dgqa: error:"), 1) << run.err;
  EXPECT_NE(run.err.find("train.log_every_steps"), std::string::npos) << run.err;
}

// The lr of each train line is that of the optimizer step it reports (docs/design.md §3.6: step t
// counts from 0, the line of step t has "step": t + 1).
TEST_F(CliTest, LearningRateSchedule) {
  const std::string config = write_config(scheme_config("GQA", 6));
  const double lr = 3e-3, pi = std::acos(-1.0);
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/warmup", "--set schedule.warmup_steps=4"));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/cosine",
                                    "--set schedule.kind=COSINE --set schedule.warmup_steps=2 "
                                    "--set schedule.min_lr=1e-4"));
  const std::vector<json> warmup = of_kind(read_metrics(dir_ + "/warmup/metrics.jsonl"), "train");
  const std::vector<json> cosine = of_kind(read_metrics(dir_ + "/cosine/metrics.jsonl"), "train");
  ASSERT_EQ(warmup.size(), 6u);
  ASSERT_EQ(cosine.size(), 6u);
  for (int t = 0; t < 6; ++t) {
    const double expected_warmup = t < 4 ? lr * (t + 1) / 4 : lr;
    EXPECT_NEAR(warmup[t].value("lr", 0.0), expected_warmup, 1e-9) << "step " << t;
    const double expected_cosine =
        t < 2 ? lr * (t + 1) / 2 : 1e-4 + (lr - 1e-4) * 0.5 * (1 + std::cos(pi * (t - 2) / 4));
    EXPECT_NEAR(cosine[t].value("lr", 0.0), expected_cosine, 1e-9) << "step " << t;
  }
}

TEST_F(CliTest, AttentionOverride) {
  const std::string config = write_config(scheme_config("GQA", 3));
  const std::string out = dir_ + "/out";
  ASSERT_NO_FATAL_FAILURE(run_train(config, out, "--set model.attention=KDGQA"));
  const std::vector<json> allocation = of_kind(read_metrics(out + "/metrics.jsonl"), "allocation");
  ASSERT_EQ(allocation.size(), 3u) << "KDGQA logs its allocation at every log step";
  for (const json& line : allocation) {
    for (const json& layer : line["layers"]) {
      const std::vector<int> heads = layer.get<std::vector<int>>();
      EXPECT_TRUE(heads == (std::vector<int>{0, 4}) || heads == (std::vector<int>{4, 0}))
          << "not a KDGQA allocation with G = 2: " << line.dump();
    }
  }
  const SafetensorsFile file = SafetensorsFile::read(out + "/model.safetensors");
  ASSERT_EQ(file.metadata().count("dgqa_attention"), 1u);
  EXPECT_EQ(file.metadata().at("dgqa_attention"), "KDGQA");
}

TEST_F(CliTest, LossDecreasesOnTheLearnableFixture) {
  const std::string config = write_config(scheme_config("GQA", 30));
  const std::string out = dir_ + "/out";
  ASSERT_NO_FATAL_FAILURE(run_train(config, out));
  const std::vector<json> records = read_metrics(out + "/metrics.jsonl");
  const std::vector<json> train = of_kind(records, "train");
  ASSERT_EQ(train.size(), 30u);
  const auto mean_loss = [&](size_t begin, size_t end) {
    double sum = 0;
    for (size_t i = begin; i < end; ++i) sum += train[i].value("loss", 0.0);
    return sum / static_cast<double>(end - begin);
  };
  EXPECT_GT(train.front().value("loss", 0.0), train.back().value("loss", 0.0));
  EXPECT_GT(mean_loss(0, 5), mean_loss(25, 30));
  // Above chance (1 / 4) after 30 steps.
  EXPECT_GT(records.back().value("top1", 0.0), 0.35) << records.back().dump();
}

TEST_F(CliTest, TrainFromWeightsWithZeroLearningRateKeepsThem) {
  const std::string config = write_config(scheme_config("GQA", 2));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/a"));
  const std::string weights = dir_ + "/a/model.safetensors";
  ASSERT_NO_FATAL_FAILURE(run_train(
      config, dir_ + "/b", "--init-from " + shell_quote(weights) + " --set optimizer.lr=0"));
  EXPECT_TRUE(tests::read_file(weights) == tests::read_file(dir_ + "/b/model.safetensors"))
      << "training with lr 0 from a file must save the same weights";
}

// model.pretrained_final_norm FRESH (the paper code's loading): the final norm starts at weight
// 1 and bias 0, every other tensor is the file's.
TEST_F(CliTest, FreshFinalNormReplacesOnlyTheLoadedFinalNorm) {
  const std::string config = write_config(scheme_config("GQA", 2));
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/a"));
  const std::string weights = dir_ + "/a/model.safetensors";
  ASSERT_NO_FATAL_FAILURE(run_train(config, dir_ + "/b",
                                    "--init-from " + shell_quote(weights) +
                                        " --set optimizer.lr=0 --set "
                                        "model.pretrained_final_norm=FRESH"));
  const SafetensorsFile loaded = SafetensorsFile::read(weights);
  const SafetensorsFile trained = SafetensorsFile::read(dir_ + "/b/model.safetensors");
  ASSERT_EQ(loaded.names(), trained.names());
  for (const std::string& name : loaded.names()) {
    const std::vector<float> before = loaded.as_f32(name), after = trained.as_f32(name);
    if (name == "norm.weight" || name == "norm.bias") {
      const float fresh = name == "norm.weight" ? 1.f : 0.f;
      EXPECT_NE(before, std::vector<float>(before.size(), fresh)) << name << " was already fresh";
      EXPECT_EQ(after, std::vector<float>(after.size(), fresh)) << name;
    } else {
      EXPECT_EQ(after, before) << name;
    }
  }
}

TEST_F(CliTest, EvalWithoutLogitsOutPrintsOnlyTheResult) {
  const std::string config = write_config(scheme_config("PGQA", 2));
  const std::string out = dir_ + "/out";
  ASSERT_NO_FATAL_FAILURE(run_train(config, out));
  const json first = run_eval(config, out + "/model.safetensors");
  const json second = run_eval(config, out + "/model.safetensors");
  EXPECT_EQ(first.dump(), second.dump()) << "evaluation (with PGQA noise) must be repeatable";
  EXPECT_EQ(first.value("examples", -1), data_->test.count);
}

}  // namespace
}  // namespace dgqa
