// The telemetry of `dgqa train` in metrics.jsonl (docs/design.md §7.6): the key norms that
// decided each allocation (recomputed by tests/telemetry_check.py, an independent Python
// implementation of the allocation rules), DGQA's caches, training top-1 and evaluation top-5.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/npy.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"
#include "trainer/evaluate.h"

namespace dgqa {
namespace {

using nlohmann::json;
using tests::FixtureConfig;
using tests::FixtureDataset;
using tests::shell_quote;

constexpr int kClasses = 10;  // more than 5, so that top-5 is not every example

TEST(TopKTest, CountsTheLabelAmongTheKLargestWithTiesToTheLowerClass) {
  const float row[] = {0.5f, 2.f, 2.f, -1.f, 3.f, 0.5f, 0.5f};
  // Ranked: 4 (3), 1 (2), 2 (2), 0 (0.5), 5 (0.5), 6 (0.5), 3 (-1).
  EXPECT_TRUE(label_in_top_k(row, 7, 4, 1));
  EXPECT_FALSE(label_in_top_k(row, 7, 1, 1));
  EXPECT_TRUE(label_in_top_k(row, 7, 2, 3));
  EXPECT_FALSE(label_in_top_k(row, 7, 2, 2));
  EXPECT_TRUE(label_in_top_k(row, 7, 5, 5));
  EXPECT_FALSE(label_in_top_k(row, 7, 6, 5));
  EXPECT_FALSE(label_in_top_k(row, 7, 3, 6));
  EXPECT_TRUE(label_in_top_k(row, 7, 3, 7));
  EXPECT_TRUE(label_in_top_k(row, 3, 0, 5)) << "every class is among the 5 largest of 3";
  const float logits[] = {1.f, 0.f, 0.f, 1.f, 5.f, 4.f};  // three rows of two classes
  const int32_t labels[] = {0, 0, 1};
  EXPECT_EQ(count_top_k(logits, labels, 3, 2, 1), 1);
  EXPECT_EQ(count_top_k(logits, labels, 3, 2, 2), 3);
}

class TelemetryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_dir_ = new std::string(tests::make_temp_dir("dgqa_telemetry_data_"));
    tests::FixtureDatasetOptions options;
    options.num_classes = kClasses;
    data_ = new FixtureDataset(tests::write_fixture_dataset(*data_dir_, options));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*data_dir_);
    delete data_;
    delete data_dir_;
  }
  void SetUp() override { dir_ = tests::make_temp_dir("dgqa_telemetry_"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static FixtureConfig base_config() {
    FixtureConfig config;
    config.num_classes = kClasses;
    return config;
  }

  // Trains with the config's text; returns the records of metrics.jsonl.
  std::vector<json> train(const std::string& config_text, const std::string& args = "") {
    const std::string config = dir_ + "/config.pbtxt";
    tests::write_file(config, config_text);
    const tests::DgqaRun run = tests::run_dgqa(
        "train --config " + shell_quote(config) + " --out " + shell_quote(dir_ + "/out") + args,
        dir_);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::vector<json> records;
    for (const std::string& line : tests::lines_of(tests::read_file(dir_ + "/out/metrics.jsonl"))) {
      records.push_back(json::parse(line));
    }
    return records;
  }

  // tests/telemetry_check.py on a metrics file; its exit code, with its output on failure.
  static int check(const std::string& metrics, const std::string& scheme, int heads, int window,
                   const std::string& beta, const std::string& options = "") {
    const std::string command =
        "/usr/bin/python3 " +
        shell_quote(std::string(DGQA_SOURCE_DIR) + "/tests/telemetry_check.py") + " " +
        shell_quote(metrics) + " " + scheme + " " + std::to_string(heads) + " " +
        std::to_string(window) + " " + beta + " " + options;
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static std::string* data_dir_;
  static FixtureDataset* data_;
  std::string dir_;
};

std::string* TelemetryTest::data_dir_ = nullptr;
FixtureDataset* TelemetryTest::data_ = nullptr;

std::vector<json> of_kind(const std::vector<json>& records, const std::string& kind) {
  std::vector<json> selected;
  std::copy_if(records.begin(), records.end(), std::back_inserter(selected),
               [&](const json& r) { return r.value("kind", "") == kind; });
  return selected;
}

class KeyNormTelemetryTest : public TelemetryTest,
                             public ::testing::WithParamInterface<std::string> {};

// Eight query heads on four K/V heads, so that the norms move heads; DGQA decides every second
// step. The checker must also fail on a record whose norms were altered.
TEST_P(KeyNormTelemetryTest, TheLoggedKeyNormsRecomputeTheLoggedAllocation) {
  if (!tests::have_python_with_numpy()) GTEST_SKIP() << "python3 with numpy is not installed";
  const std::string scheme = GetParam();
  const bool dgqa = scheme != "KDGQA";
  FixtureConfig config = base_config();
  config.attention = scheme;
  config.num_heads = 8;
  config.num_kv_heads = 4;
  config.dgqa_window = 2;
  config.max_steps = 9;
  config.log_every_steps = 3;
  config.extra_model = "init_std: 0.2 dgqa_beta: 0.75";
  const std::vector<json> records = train(tests::fixture_config_text(*data_, config));
  const std::vector<json> norms = of_kind(records, "key_norms");
  std::vector<int64_t> steps;
  for (const json& record : norms) {
    steps.push_back(record["step"]);
    ASSERT_EQ(record["layers"].size(), 2u) << record.dump();
    for (const json& layer : record["layers"]) ASSERT_EQ(layer.size(), 4u) << record.dump();
    EXPECT_EQ(record.contains("cache_before"), dgqa) << record.dump();
  }
  const std::vector<int64_t> expected_steps =
      dgqa ? std::vector<int64_t>{1, 3, 5, 7, 9} : std::vector<int64_t>{3, 6, 9};
  EXPECT_EQ(steps, expected_steps);
  EXPECT_EQ(of_kind(records, "dgqa_cache").size(), dgqa ? 3u : 0u);

  const std::string metrics = dir_ + "/out/metrics.jsonl";
  EXPECT_EQ(check(metrics, scheme, 8, 2, "0.75"), 0);
  // The same file with one norm changed: the recomputation must notice.
  std::string text = tests::read_file(metrics);
  json changed = norms.back();
  changed["layers"][1][0] = changed["layers"][1][0].get<double>() * 3 + 1;
  const std::string original = norms.back().dump();
  ASSERT_NE(text.find(original), std::string::npos);
  text.replace(text.find(original), original.size(), changed.dump());
  tests::write_file(dir_ + "/altered.jsonl", text);
  EXPECT_EQ(check(dir_ + "/altered.jsonl", scheme, 8, 2, "0.75"), 1);
}

INSTANTIATE_TEST_SUITE_P(Schemes, KeyNormTelemetryTest,
                         ::testing::Values("KDGQA", "DGQA_DIFF", "DGQA_EMA"));

// The paper code's DGQA (docs/experiments.md): the window counts the steps of each epoch and
// the rounding is corrected at drawn indices. The checker recomputes both from the records, and
// must fail when told the default rules instead.
TEST_F(TelemetryTest, PaperCodeDgqaSwitchesRecomputeTheLoggedAllocation) {
  if (!tests::have_python_with_numpy()) GTEST_SKIP() << "python3 with numpy is not installed";
  FixtureConfig config = base_config();
  config.attention = "DGQA_DIFF";
  config.num_heads = 8;
  config.num_kv_heads = 4;
  config.dgqa_window = 3;
  config.batch_size = 16;  // 64 training images: 4 steps per epoch
  config.max_steps = 12;
  config.log_every_steps = 3;
  config.extra_model = "init_std: 0.2 dgqa_window_counter: EPOCH_STEP dgqa_fixup: RANDOM_INDEX";
  const std::vector<json> records = train(tests::fixture_config_text(*data_, config));
  std::vector<int64_t> steps;
  for (const json& record : of_kind(records, "key_norms")) steps.push_back(record["step"]);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 4, 5, 8, 9, 12}));  // epoch steps 0 and 3

  const std::string metrics = dir_ + "/out/metrics.jsonl";
  const std::string seed = std::to_string(config.seed);
  EXPECT_EQ(
      check(metrics, "DGQA_DIFF", 8, 3, "0.9", "--steps-per-epoch 4 --random-fixup-seed " + seed),
      0);
  EXPECT_EQ(check(metrics, "DGQA_DIFF", 8, 3, "0.9", "--steps-per-epoch 4"), 1)
      << "no rounding was corrected at random: the run does not test the switch";
  EXPECT_EQ(check(metrics, "DGQA_DIFF", 8, 3, "0.9", "--random-fixup-seed " + seed), 1);
}

// With a learning rate of 0, one step over the whole training split, and that split as the
// test split too, the training top-1 of the step is the evaluation's top-1 after it.
TEST_F(TelemetryTest, TrainingTopOneIsTheAccuracyOfTheStepsImages) {
  FixtureConfig config = base_config();
  config.lr = 0;
  config.batch_size = 64;  // the whole training split
  config.max_steps = 1;
  std::string text = tests::fixture_config_text(*data_, config);
  for (const auto& [test, training] : {std::pair{data_->test_images, data_->train_images},
                                       std::pair{data_->test_labels, data_->train_labels}}) {
    ASSERT_NE(text.find(test), std::string::npos);
    text.replace(text.find(test), test.size(), training);
  }
  const std::vector<json> records = train(text);
  const std::vector<json> train_records = of_kind(records, "train");
  const std::vector<json> evals = of_kind(records, "eval");
  ASSERT_EQ(train_records.size(), 1u);
  ASSERT_EQ(evals.size(), 1u);
  ASSERT_EQ(evals[0]["examples"], 64);
  EXPECT_EQ(train_records[0]["top1"].get<double>(), evals[0]["top1"].get<double>());
  EXPECT_GT(evals[0]["top5"].get<double>(), evals[0]["top1"].get<double>());
}

// The evaluation's top-5 is the fraction of examples whose label is among the five largest of
// the logits `dgqa eval --logits-out` writes, counted here.
TEST_F(TelemetryTest, EvaluationTopFiveMatchesTheLogits) {
  FixtureConfig config = base_config();
  config.max_steps = 3;
  const std::vector<json> records = train(tests::fixture_config_text(*data_, config));
  const json final_eval = records.back();
  ASSERT_EQ(final_eval.value("kind", ""), "eval");
  const std::string logits_path = dir_ + "/logits.npy";
  const tests::DgqaRun run =
      tests::run_dgqa("eval --config " + shell_quote(dir_ + "/config.pbtxt") + " --init-from " +
                          shell_quote(dir_ + "/out/model.safetensors") + " --logits-out " +
                          shell_quote(logits_path),
                      dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json output = json::parse(tests::lines_of(run.out).back());
  const NpyArray logits = read_npy_f32(logits_path);
  ASSERT_EQ(logits.shape, (std::vector<int64_t>{data_->test.count, kClasses}));
  int64_t in_top5 = 0;
  for (int64_t i = 0; i < data_->test.count; ++i) {
    const float* row = logits.data.data() + i * kClasses;
    std::vector<int> order(kClasses);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row[a] > row[b]; });
    in_top5 +=
        std::find(order.begin(), order.begin() + 5, data_->test.labels[i]) != order.begin() + 5;
  }
  const double expected = static_cast<double>(in_top5) / static_cast<double>(data_->test.count);
  EXPECT_DOUBLE_EQ(output["top5"].get<double>(), expected);
  EXPECT_DOUBLE_EQ(final_eval["top5"].get<double>(), expected);
}

// train.eval_average OVER_BATCHES (the paper code's report): the mean of each evaluation
// batch's loss and accuracies, here over batches of 12, 12 and the rest, computed from the logits.
TEST_F(TelemetryTest, EvaluationAveragedOverBatchesIsTheMeanOfTheBatchMeans) {
  FixtureConfig config = base_config();
  config.max_steps = 2;
  config.eval_batch_size = 12;
  train(tests::fixture_config_text(*data_, config));
  ASSERT_NE(data_->test.count % 12, 0) << "the test needs a smaller last batch";
  const std::string logits_path = dir_ + "/logits.npy";
  const tests::DgqaRun run = tests::run_dgqa(
      "eval --config " + shell_quote(dir_ + "/config.pbtxt") + " --init-from " +
          shell_quote(dir_ + "/out/model.safetensors") +
          " --set train.eval_average=OVER_BATCHES --logits-out " + shell_quote(logits_path),
      dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json output = json::parse(tests::lines_of(run.out).back());
  const NpyArray logits = read_npy_f32(logits_path);
  double loss = 0, top1 = 0, top5 = 0, batches = 0, loss_over_examples = 0;
  for (int64_t first = 0; first < data_->test.count; first += 12, ++batches) {
    const int64_t size = std::min<int64_t>(12, data_->test.count - first);
    double batch_loss = 0, batch_top1 = 0, batch_top5 = 0;
    for (int64_t i = first; i < first + size; ++i) {
      const float* row = logits.data.data() + i * kClasses;
      const int label = data_->test.labels[i];
      double sum = 0;
      int ahead = 0;  // classes ranked before the label, ties to the lower class
      for (int c = 0; c < kClasses; ++c) {
        sum += std::exp(static_cast<double>(row[c]));
        ahead += row[c] > row[label] || (row[c] == row[label] && c < label);
      }
      batch_loss += std::log(sum) - row[label];
      batch_top1 += ahead < 1;
      batch_top5 += ahead < 5;
    }
    loss += batch_loss / size;
    loss_over_examples += batch_loss / static_cast<double>(data_->test.count);
    top1 += batch_top1 / size;
    top5 += batch_top5 / size;
  }
  EXPECT_NEAR(output["loss"].get<double>(), loss / batches, 1e-6);
  EXPECT_NEAR(output["top1"].get<double>(), top1 / batches, 1e-12);
  EXPECT_NEAR(output["top5"].get<double>(), top5 / batches, 1e-12);
  EXPECT_EQ(output["examples"].get<int64_t>(), data_->test.count);
  EXPECT_GT(std::fabs(loss / batches - loss_over_examples), 1e-6) << "the two means coincide";
}

}  // namespace
}  // namespace dgqa
