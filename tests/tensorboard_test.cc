// TensorBoard event files of whole runs (train.tensorboard, docs/design.md §7.6): a run resumed
// from a checkpoint in its middle, after a kill that tore its last record, holds every step once
// over all its files, with the values of its metrics.jsonl; only rank 0 writes; nothing is
// written unless asked. The files are read with io/event_file.h (tested on its own in
// event_file_test); tests/tensorboard_readback.py reads them without dgqa's code.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/event_file.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

namespace fs = std::filesystem;
using tests::shell_quote;

constexpr int kMaxSteps = 12;
constexpr int kCheckpointEvery = 5;

// step -> tag -> value over every event file of a run; a step in two events (in one file or in
// two) is a test failure.
using Scalars = std::map<int64_t, std::map<std::string, float>>;

Scalars read_scalars(const std::string& out) {
  Scalars scalars;
  for (const fs::directory_entry& entry : fs::directory_iterator(out + "/tensorboard")) {
    const EventFileContents contents = read_event_file(entry.path().string());
    EXPECT_FALSE(contents.torn) << entry.path();
    for (const TensorBoardEvent& event : contents.events) {
      if (!event.file_version.empty()) continue;
      EXPECT_EQ(scalars.count(event.step), 0u) << "step " << event.step << " twice";
      for (const TensorBoardScalar& scalar : event.scalars) {
        scalars[event.step][scalar.tag] = scalar.value;
      }
    }
  }
  return scalars;
}

// The scalars metrics.jsonl implies, by the tags the trainer writes, as float32.
Scalars scalars_of_metrics(const std::string& out) {
  Scalars expected;
  for (const std::string& line : tests::lines_of(tests::read_file(out + "/metrics.jsonl"))) {
    const nlohmann::json record = nlohmann::json::parse(line);
    const int64_t step = record.at("step");
    const std::string kind = record.at("kind");
    if (kind == "train" || kind == "eval") {
      const std::vector<std::string> names =
          kind == "train"
              ? std::vector<std::string>{"loss", "lr", "grad_norm", "images_per_sec", "top1"}
              : std::vector<std::string>{"loss", "top1", "top5"};
      for (const std::string& name : names) {
        expected[step][kind + "/" + name] = static_cast<float>(record.at(name).get<double>());
      }
    } else if (kind == "allocation" || kind == "key_norms" || kind == "dgqa_cache") {
      const nlohmann::json& layers = record.at("layers");
      for (size_t l = 0; l < layers.size(); ++l) {
        for (size_t g = 0; g < layers[l].size(); ++g) {
          const std::string tag = kind + "/layer_" + std::to_string(l) + "/kv_" + std::to_string(g);
          expected[step][tag] = static_cast<float>(layers[l][g].get<double>());
        }
      }
    }
  }
  return expected;
}

class TensorBoardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tests::make_temp_dir("tensorboard");
    data_ = tests::write_fixture_dataset(dir_);  // 64 training images: 8 steps an epoch
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A DGQA_EMA run (its allocation changes) that logs every other step, evaluates every fourth
  // and checkpoints every fifth.
  std::string config() {
    tests::FixtureConfig config;
    config.attention = "DGQA_EMA";
    config.max_steps = kMaxSteps;
    config.eval_every_steps = 4;
    config.log_every_steps = 2;
    config.extra =
        "checkpoint { every_steps: " + std::to_string(kCheckpointEvery) + " keep_last: 0 }\n";
    return tests::write_fixture_config(dir_ + "/config.pbtxt", data_, config);
  }

  // `dgqa train` of config() into out, with TensorBoard's files unless told otherwise.
  std::string train_command(const std::string& out, const std::string& args = "",
                            bool tensorboard = true) {
    return shell_quote(tests::dgqa_binary()) + " train --config " + shell_quote(config()) +
           " --out " + shell_quote(out) + (tensorboard ? " --set train.tensorboard=true " : " ") +
           args;
  }

  std::string dir_;
  tests::FixtureDataset data_;
};

TEST_F(TensorBoardTest, ResumedRunHoldsEveryStepOnceWithTheValuesOfItsMetrics) {
  const std::string out = dir_ + "/out";
  std::string output;
  ASSERT_EQ(tests::run_command(train_command(out), &output), 0) << output;
  const Scalars before = read_scalars(out);
  ASSERT_EQ(before.rbegin()->first, kMaxSteps);
  EXPECT_EQ(before, scalars_of_metrics(out));
  // A run killed while writing a record leaves the first bytes of its header.
  const fs::path file = fs::directory_iterator(out + "/tensorboard")->path();
  tests::write_file(file.string(), tests::read_file(file.string()) + std::string(7, '\x20'));

  char checkpoint[32];
  std::snprintf(checkpoint, sizeof(checkpoint), "step_%08d", kCheckpointEvery);
  const std::string resume = "--resume " + shell_quote(out + "/checkpoints/" + checkpoint);
  ASSERT_EQ(tests::run_command(train_command(out, resume), &output), 0) << output;
  tests::expect_contains(output, "ends inside the record");
  const Scalars after = read_scalars(out);
  EXPECT_EQ(after, scalars_of_metrics(out));
  EXPECT_EQ(after.rbegin()->first, kMaxSteps);
  // Up to the checkpoint, the first run's events (their images/s included) are kept.
  for (const auto& [step, tags] : before) {
    if (step > kCheckpointEvery) continue;
    EXPECT_EQ(after.at(step), tags) << "step " << step;
  }
}

TEST_F(TensorBoardTest, OnlyRankZeroWrites) {
  const std::string out = dir_ + "/out";
  std::string output;
  ASSERT_EQ(tests::run_command(tests::mpirun_prefix(2) + train_command(out), &output), 0) << output;
  int files = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(out + "/tensorboard")) {
    EXPECT_EQ(entry.path().filename().string().rfind("events.out.tfevents.", 0), 0u);
    ++files;
  }
  EXPECT_EQ(files, 1);
  EXPECT_EQ(read_scalars(out), scalars_of_metrics(out));
}

TEST_F(TensorBoardTest, NothingIsWrittenUnlessAsked) {
  const std::string out = dir_ + "/out";
  std::string output;
  ASSERT_EQ(tests::run_command(train_command(out, "", /*tensorboard=*/false), &output), 0)
      << output;
  EXPECT_TRUE(tests::file_exists(out + "/metrics.jsonl"));
  EXPECT_FALSE(fs::exists(out + "/tensorboard"));
}

}  // namespace
}  // namespace dgqa
