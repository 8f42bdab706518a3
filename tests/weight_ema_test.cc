// The weight EMA end to end (train.ema_decay, docs/design.md §3.6): after every step of a run the
// checkpointed average equals a numpy recomputation, from the weights the run checkpointed at
// each step, of timm's ModelEmaV3 rule (with and without its warm-up); the run writes
// model_ema.safetensors and the EMA's evaluation into metrics.jsonl; `dgqa eval --ema` evaluates
// a checkpoint's EMA; and what is refused. Needs /usr/bin/python3 with numpy for the oracle.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::DgqaRun;
using tests::FixtureConfig;
using tests::shell_quote;

constexpr int kSteps = 5;

// Recomputes the EMA from OUT/checkpoints/step_K/model.safetensors (K = 1..steps) with the
// decay rule of timm's ModelEmaV3 (update_after_step 0, min_decay 0, warmup_gamma 1,
// warmup_power 2/3) at step = K (timm's num_updates after the K-th optimizer step), and
// compares it with each checkpoint's ema.* tensors and, at the end, model_ema.safetensors.
// Prints the largest difference; exits 1 when it exceeds 1e-6 or the first average is not
// exactly the first weights.
constexpr const char* kOracle = R"(
import sys, glob, numpy as np
sys.path.insert(0, sys.argv[1])
from safetensors_numpy import read_safetensors
out, decay, warmup, steps = sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
def decay_at(step):
    s = max(0, step - 0 - 1)
    if s <= 0:
        return 0.0
    if warmup:
        return max(min(1 - (1 + s / 1.0) ** (-2 / 3), decay), 0.0)
    return decay
ema, worst = None, 0.0
for k in range(1, steps + 1):
    ckpt = f"{out}/checkpoints/step_{k:08d}"
    weights = {n: v.astype(np.float64) for n, v in read_safetensors(ckpt + "/model.safetensors").items()
               if v.dtype == np.float32 and "attn.cache" not in n}
    if ema is None:
        ema = {n: v.copy() for n, v in weights.items()}
    d = decay_at(k)
    ema = {n: d * ema[n] + (1 - d) * weights[n] for n in ema}
    got = {n[4:]: v for n, v in read_safetensors(ckpt + "/optimizer.safetensors").items()
           if n.startswith("ema.")}
    assert sorted(got) == sorted(ema), (sorted(got), sorted(ema))
    if k == 1 and any((got[n] != weights[n].astype(np.float32)).any() for n in got):
        sys.exit("the first average is not a copy of the first weights")
    worst = max(worst, max(float(np.abs(got[n] - ema[n]).max()) for n in got))
final = read_safetensors(out + "/model_ema.safetensors")
worst = max(worst, max(float(np.abs(final[n] - ema[n]).max()) for n in ema))
print("largest difference", worst)
sys.exit(0 if worst <= 1e-6 else 1)
)";

class WeightEmaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tests::make_temp_dir("dgqa_weight_ema_");
    data_ = tests::write_fixture_dataset(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write_config(const std::string& attention) {
    FixtureConfig settings;
    settings.attention = attention;
    settings.max_steps = kSteps;
    settings.eval_every_steps = 2;
    return tests::write_fixture_config(dir_ + "/" + attention + ".pbtxt", data_, settings);
  }

  // Trains kSteps steps with a checkpoint after each, every one kept.
  DgqaRun train(const std::string& config, const std::string& out, const std::string& sets) {
    return tests::run_dgqa("train --config " + shell_quote(config) + " --out " + shell_quote(out) +
                               " --set checkpoint.every_steps=1 --set checkpoint.keep_last=0 " +
                               sets,
                           dir_);
  }

  void expect_oracle_agrees(const std::string& out, const std::string& decay, bool warmup) {
    if (!tests::have_python_with_numpy()) GTEST_SKIP() << "needs /usr/bin/python3 with numpy";
    tests::write_file(dir_ + "/oracle.py", kOracle);
    std::string output;
    const int status =
        tests::run_command("/usr/bin/python3 " + shell_quote(dir_ + "/oracle.py") + " " +
                               shell_quote(DGQA_SOURCE_DIR "/tools") + " " + shell_quote(out) +
                               " " + decay + " " + (warmup ? "1 " : "0 ") + std::to_string(kSteps),
                           &output);
    EXPECT_EQ(status, 0) << output;
  }

  std::string dir_;
  tests::FixtureDataset data_;
};

TEST_F(WeightEmaTest, AverageOfEachStepsWeightsWithoutWarmup) {
  const std::string out = dir_ + "/run";
  const DgqaRun run = train(write_config("GQA"), out, "--set train.ema_decay=0.6");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_oracle_agrees(out, "0.6", false);
}

TEST_F(WeightEmaTest, AverageOfEachStepsWeightsWithWarmup) {
  const std::string out = dir_ + "/run";
  const DgqaRun run =
      train(write_config("DGQA_EMA"), out, "--set train.ema_decay=0.9 --set train.ema_warmup=true");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_oracle_agrees(out, "0.9", true);
}

// The evaluations record the EMA's; `dgqa eval --ema` of the last checkpoint gives the same, and
// so does --init-from of model_ema.safetensors (which holds the model's DGQA state).
TEST_F(WeightEmaTest, EvaluatedAlongsideAndByEvalEma) {
  const std::string config = write_config("DGQA_EMA");
  const std::string out = dir_ + "/run";
  const DgqaRun run = train(config, out, "--set train.ema_decay=0.9");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<nlohmann::json> evals;
  for (const std::string& line : tests::lines_of(tests::read_file(out + "/metrics.jsonl"))) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record.at("kind") == "eval") evals.push_back(record);
  }
  ASSERT_EQ(evals.size(), 3u);  // steps 2, 4 and 5
  for (const nlohmann::json& record : evals) {
    for (const char* key : {"ema_loss", "ema_top1", "ema_top5"}) {
      EXPECT_TRUE(record.contains(key)) << record.dump();
    }
  }
  EXPECT_NE(evals.back().at("ema_loss"), evals.back().at("loss"));

  const DgqaRun by_checkpoint = tests::run_dgqa(
      "eval --config " + shell_quote(config) + " --checkpoint " + shell_quote(out) + " --ema",
      dir_);
  ASSERT_EQ(by_checkpoint.exit_code, 0) << by_checkpoint.err;
  const DgqaRun by_file = tests::run_dgqa("eval --config " + shell_quote(config) + " --init-from " +
                                              shell_quote(out + "/model_ema.safetensors"),
                                          dir_);
  ASSERT_EQ(by_file.exit_code, 0) << by_file.err;
  const nlohmann::json from_checkpoint = nlohmann::json::parse(by_checkpoint.out);
  const nlohmann::json from_file = nlohmann::json::parse(by_file.out);
  EXPECT_EQ(from_checkpoint.at("loss"), evals.back().at("ema_loss"));
  EXPECT_EQ(from_checkpoint.at("top1"), evals.back().at("ema_top1"));
  EXPECT_EQ(from_file.at("loss"), evals.back().at("ema_loss"));
}

// The EMA's evaluation leaves the weights' run as it was, even where evaluation carries its DGQA
// state into training (model.dgqa_eval PER_BATCH_UPDATE): the same records but the EMA's and
// the same final weights as without an EMA.
TEST_F(WeightEmaTest, LeavesTheWeightsRunAsItWas) {
  const std::string config = write_config("DGQA_EMA");
  const std::string update = "--set model.dgqa_eval=PER_BATCH_UPDATE ";
  ASSERT_EQ(train(config, dir_ + "/plain", update).exit_code, 0);
  ASSERT_EQ(train(config, dir_ + "/ema", update + "--set train.ema_decay=0.5").exit_code, 0);
  std::vector<std::string> records[2];
  for (int i = 0; i < 2; ++i) {
    const std::string out = dir_ + (i == 0 ? "/plain" : "/ema");
    for (const std::string& line : tests::lines_of(tests::read_file(out + "/metrics.jsonl"))) {
      nlohmann::json record = nlohmann::json::parse(line);
      for (const char* key : {"images_per_sec", "ema_loss", "ema_top1", "ema_top5"}) {
        record.erase(key);
      }
      records[i].push_back(record.dump());
    }
  }
  EXPECT_EQ(records[0], records[1]);
  EXPECT_TRUE(tests::read_file(dir_ + "/plain/model.safetensors") ==
              tests::read_file(dir_ + "/ema/model.safetensors"));
}

TEST_F(WeightEmaTest, WithoutEmaNothingChanges) {
  const std::string config = write_config("GQA");
  const std::string out = dir_ + "/run";
  ASSERT_EQ(train(config, out, "").exit_code, 0);
  EXPECT_FALSE(tests::file_exists(out + "/model_ema.safetensors"));
  EXPECT_EQ(tests::read_file(out + "/metrics.jsonl").find("ema_"), std::string::npos);
  tests::expect_input_error(tests::run_dgqa("eval --config " + shell_quote(config) +
                                                " --checkpoint " + shell_quote(out) + " --ema",
                                            dir_),
                            {"optimizer.safetensors", "no weight EMA", "train.ema_decay"});
}

TEST_F(WeightEmaTest, BadSettingsAreRefused) {
  const std::string config = write_config("GQA");
  const std::string train_args = "train --config " + shell_quote(config) + " ";
  tests::expect_input_error(tests::run_dgqa(train_args + "--set train.ema_decay=1", dir_),
                            {"train.ema_decay", "[0, 1)"});
  tests::expect_input_error(tests::run_dgqa(train_args + "--set train.ema_decay=-0.1", dir_),
                            {"train.ema_decay"});
  tests::expect_input_error(tests::run_dgqa(train_args + "--set train.ema_warmup=true", dir_),
                            {"train.ema_warmup", "train.ema_decay > 0"});
  tests::expect_input_error(
      tests::run_dgqa("eval --config " + shell_quote(config) + " --init-from x.safetensors --ema",
                      dir_),
      {"--ema", "--checkpoint"});
}

}  // namespace
}  // namespace dgqa
