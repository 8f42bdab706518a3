// The learning-rate schedules (docs/design.md §3.6): hand-computed sequences, and the config's
// schedule section through lr_schedule_from against torch's LR schedulers per optimizer step
// (tests/lr_schedule_oracle.py, run at test time; skipped without torch).
#include "trainer/lr_schedule.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/test_util.h"
#include "trainer/training_step.h"

namespace dgqa {
namespace {

std::vector<float> rates(const LrSchedule& schedule) {
  std::vector<float> values;
  for (int64_t t = 0; t < schedule.total_steps; ++t) values.push_back(schedule.at(t));
  return values;
}

TEST(LrScheduleTest, StepDecaysEveryStepSizeStepsAfterTheWarmup) {
  LrSchedule schedule;
  schedule.base_lr = 1.f;
  schedule.warmup_steps = 2;
  schedule.total_steps = 8;
  schedule.shape = ScheduleShape::kStep;
  schedule.step_size = 2;
  schedule.gamma = 0.5f;
  EXPECT_EQ(rates(schedule), (std::vector<float>{0.5f, 1, 1, 1, 0.5f, 0.5f, 0.25f, 0.25f}));
}

TEST(LrScheduleTest, MultiStepDecaysAtEachMilestoneAfterTheWarmup) {
  LrSchedule schedule;
  schedule.base_lr = 1.f;
  schedule.warmup_steps = 2;
  schedule.warmup_start_factor = 0.25f;
  schedule.total_steps = 7;
  schedule.shape = ScheduleShape::kMultiStep;
  schedule.milestones = {1, 3};
  schedule.gamma = 0.5f;
  EXPECT_EQ(rates(schedule), (std::vector<float>{0.25f, 0.625f, 1, 0.5f, 0.5f, 0.25f, 0.25f}));
}

TEST(LrScheduleTest, LinearReachesMinLrOneStepAfterTheEnd) {
  LrSchedule schedule;
  schedule.base_lr = 1.f;
  schedule.min_lr = 0.5f;
  schedule.total_steps = 4;
  schedule.shape = ScheduleShape::kLinear;
  EXPECT_EQ(rates(schedule), (std::vector<float>{1, 0.875f, 0.75f, 0.625f}));
}

TEST(LrScheduleTest, ConfigSchedulesMatchTorchSchedulers) {
  std::string output;
  if (tests::run_command("/usr/bin/python3 -c 'import torch'", &output) != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  }
  const std::string dir = tests::make_temp_dir("dgqa_lr_schedule_");
  const std::string path = dir + "/cases.json";
  ASSERT_EQ(tests::run_command("/usr/bin/python3 " + std::string(DGQA_SOURCE_DIR) +
                                   "/tests/lr_schedule_oracle.py " + path + " 2>&1",
                               &output),
            0)
      << output;
  const nlohmann::json cases = nlohmann::json::parse(tests::read_file(path));
  std::filesystem::remove_all(dir);
  ASSERT_GE(cases.size(), 8u);
  for (const nlohmann::json& c : cases) {
    const std::string schedule_text = c["schedule"];
    SCOPED_TRACE(schedule_text);
    config::Config config;
    const std::string text =
        "optimizer { lr: " + c["lr"].dump() + " } schedule { " + schedule_text + " }";
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
    const LrSchedule schedule = lr_schedule_from(config, c["total"].get<int64_t>());
    const std::vector<double> expected = c["lrs"];
    ASSERT_EQ(expected.size(), static_cast<size_t>(c["total"].get<int64_t>()));
    for (size_t t = 0; t < expected.size(); ++t) {
      // fp32 rates from an fp32 base rate: two fp32 roundings from torch's double values.
      EXPECT_NEAR(schedule.at(t), expected[t], 2.5e-7 * expected[t]) << "step " << t;
    }
  }
}

}  // namespace
}  // namespace dgqa
