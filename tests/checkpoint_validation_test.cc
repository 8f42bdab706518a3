// Everything read back from a checkpoint is checked as strictly as a fresh config (docs/design.md
// §6.4): a state.pbtxt edited by hand (with its checksum line and the files' CRC-32 fixed, so
// that only the new checks can catch it) whose config is impossible, whose step is out of range,
// whose optimizer step count is negative or whose file names point outside the checkpoint, and a
// state.pbtxt edited or damaged without fixing its checksum, are refused by `train --resume` (a
// directory, or auto) and `eval --checkpoint` with exit code 2 and one `dgqa: error:` line naming
// the file and field, leaving the run's files as they were.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

namespace fs = std::filesystem;
using tests::DgqaRun;
using tests::shell_quote;

constexpr const char* kCheckpoint = "/checkpoints/step_00000002";
using tests::crc32_of;
using tests::sealed_state;
using tests::state_body;

// Replaces the first line of text that reads `from` (ignoring its indentation) by `to`.
std::string with_line_replaced(const std::string& text, const std::string& from,
                               const std::string& to) {
  std::string result;
  bool replaced = false;
  for (const std::string& line : tests::lines_of(text)) {
    const size_t indent = line.find_first_not_of(' ');
    const bool match = !replaced && indent != std::string::npos && line.substr(indent) == from;
    result += (match ? line.substr(0, indent) + to : line) + "\n";
    replaced = replaced || match;
  }
  EXPECT_TRUE(replaced) << "no line \"" << from << "\" in\n" << text;
  return result;
}

// Every file under dir and its bytes.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files[entry.path().string()] = tests::read_file(entry.path());
  }
  return files;
}

class CheckpointValidationTest : public ::testing::Test {
 protected:
  // One finished run of two steps: its only checkpoint is step_00000002.
  static void SetUpTestSuite() {
    suite_dir_ = new std::string(tests::make_temp_dir("dgqa_checkpoint_validation_"));
    const tests::FixtureDataset data = tests::write_fixture_dataset(*suite_dir_);
    tests::FixtureConfig config;
    config.max_steps = 2;
    config_ =
        new std::string(tests::write_fixture_config(*suite_dir_ + "/config.pbtxt", data, config));
    const DgqaRun run = tests::run_dgqa(
        "train --config " + shell_quote(*config_) + " --out " + shell_quote(run_dir()),
        *suite_dir_);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    ASSERT_TRUE(tests::file_exists(run_dir() + kCheckpoint + "/state.pbtxt"));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*suite_dir_);
    delete config_;
    delete suite_dir_;
  }
  static std::string run_dir() { return *suite_dir_ + "/run"; }

  // A fresh copy of the finished run for each test.
  void SetUp() override {
    out_ = tests::make_temp_dir("dgqa_checkpoint_validation_out_");
    fs::remove(out_);
    fs::copy(run_dir(), out_, fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(out_); }

  std::string checkpoint_dir() const { return out_ + kCheckpoint; }
  std::string state_path() const { return checkpoint_dir() + "/state.pbtxt"; }

  // Replaces a line of state.pbtxt and fixes its checksum line.
  void edit_state(const std::string& from, const std::string& to) const {
    const std::string text = tests::read_file(state_path());
    tests::write_file(state_path(), sealed_state(with_line_replaced(state_body(text), from, to)));
  }

  // Rewrites optimizer.safetensors with another step count, and fixes its size and CRC-32 in
  // state.pbtxt and the checksum of state.pbtxt.
  void set_optimizer_steps(int64_t steps) const {
    rewrite_optimizer([&](const std::string&, std::vector<int64_t>& values) { values = {steps}; },
                      [](const std::string&, std::vector<float>&) {});
  }

  // Sets element `at` of the optimizer's tensor `name` to `value`, as set_optimizer_steps does.
  void set_optimizer_value(const std::string& name, size_t at, float value) const {
    rewrite_optimizer([](const std::string&, std::vector<int64_t>&) {},
                      [&](const std::string& tensor, std::vector<float>& values) {
                        if (tensor == name) values.at(at) = value;
                      });
  }

  // Rewrites optimizer.safetensors through the edits (given each tensor's name and values), and
  // fixes its CRC-32 in state.pbtxt and the checksum of state.pbtxt.
  void rewrite_optimizer(
      const std::function<void(const std::string&, std::vector<int64_t>&)>& edit_i64,
      const std::function<void(const std::string&, std::vector<float>&)>& edit_f32) const {
    const std::string path = checkpoint_dir() + "/optimizer.safetensors";
    const std::string old_crc = std::to_string(crc32_of(tests::read_file(path)));
    const SafetensorsFile file = SafetensorsFile::read(path);
    SafetensorsWriter writer;
    std::vector<std::vector<int64_t>> integers;  // the writer keeps pointers until write()
    std::vector<std::vector<float>> floats;
    integers.reserve(file.names().size());
    floats.reserve(file.names().size());
    for (const std::string& name : file.names()) {
      const TensorData& tensor = file.get(name);
      if (tensor.dtype == "I64") {
        integers.push_back(file.as_i64(name));
        edit_i64(name, integers.back());
        writer.add_i64(name, tensor.shape, integers.back().data());
      } else {
        floats.push_back(file.as_f32(name));
        edit_f32(name, floats.back());
        writer.add_f32(name, tensor.shape, floats.back().data());
      }
    }
    writer.write(path);
    const std::string bytes = tests::read_file(path);
    const std::string text = state_body(tests::read_file(state_path()));
    ASSERT_NE(text.find("crc32: " + old_crc + "\n"), std::string::npos) << text;
    tests::write_file(state_path(),
                      sealed_state(with_line_replaced(
                          text, "crc32: " + old_crc, "crc32: " + std::to_string(crc32_of(bytes)))));
  }

  DgqaRun resume(const std::string& from) const {
    return tests::run_dgqa("train --config " + shell_quote(*config_) + " --set train.max_steps=4" +
                               " --out " + shell_quote(out_) + " --resume " + shell_quote(from),
                           *suite_dir_);
  }
  DgqaRun eval() const {
    return tests::run_dgqa(
        "eval --config " + shell_quote(*config_) + " --checkpoint " + shell_quote(checkpoint_dir()),
        *suite_dir_);
  }

  // Exit code 2, exactly one error line, which contains every needle, and the run's files as
  // they were.
  void expect_refused(const DgqaRun& run, const std::vector<std::string>& needles,
                      const std::map<std::string, std::string>& before) const {
    tests::expect_input_error(run, needles);
    EXPECT_TRUE(snapshot(out_) == before) << "the run's files changed";
  }

  // Every way of reading the checkpoint is refused: --resume DIR, --resume auto and, unless
  // `training_only` (the optimizer state is read for training only), eval --checkpoint.
  void expect_all_refused(const std::vector<std::string>& needles, bool training_only = false) {
    const auto before = snapshot(out_);
    SCOPED_TRACE(tests::read_file(state_path()));
    {
      SCOPED_TRACE("--resume DIR");
      expect_refused(resume(checkpoint_dir()), needles, before);
    }
    {
      SCOPED_TRACE("--resume auto");
      expect_refused(resume("auto"), needles, before);
    }
    if (!training_only) {
      SCOPED_TRACE("eval --checkpoint");
      expect_refused(eval(), needles, before);
    }
  }

  static std::string* suite_dir_;
  static std::string* config_;
  std::string out_;
};

std::string* CheckpointValidationTest::suite_dir_ = nullptr;
std::string* CheckpointValidationTest::config_ = nullptr;

// The unedited copy resumes and evaluates: the edits below are what is refused.
TEST_F(CheckpointValidationTest, TheUneditedCheckpointIsAccepted) {
  const DgqaRun resumed = resume("auto");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  const DgqaRun evaluated = eval();
  EXPECT_EQ(evaluated.exit_code, 0) << evaluated.err;
}

// A harmless edit with the checksum fixed is accepted: the refusals below come from the checks
// of what was edited, not from the checksum.
TEST_F(CheckpointValidationTest, AResealedHarmlessEditIsAccepted) {
  edit_state("world_size: 1", "world_size: 3");
  const DgqaRun resumed = resume("auto");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("written by 3 rank(s)"), std::string::npos) << resumed.err;
}

TEST_F(CheckpointValidationTest, RecordedConfigWithZeroHeadsIsRefused) {
  edit_state("num_heads: 4", "num_heads: 0");
  expect_all_refused({state_path() + ": model.num_heads:", "must be positive"});
}

TEST_F(CheckpointValidationTest, RecordedConfigWithZeroPatchSizeIsRefused) {
  edit_state("patch_size: 4", "patch_size: 0");
  expect_all_refused({state_path() + ": model.patch_size:", "must be positive"});
}

// A valid config of 2e9 layers is another model; refused without building its layout, which
// alone would take gigabytes.
TEST_F(CheckpointValidationTest, RecordedConfigOfAHugeDepthIsRefusedAsAnotherModel) {
  edit_state("depth: 2", "depth: 2000000000");
  expect_all_refused({"checkpoint " + checkpoint_dir() + " holds a different model"});
}

TEST_F(CheckpointValidationTest, RecordedConfigWithAnImpossibleSettingIsRefused) {
  edit_state("global_batch_size: 8", "global_batch_size: -8");
  expect_all_refused({state_path() + ": train.global_batch_size:"});
}

// A syntax error behind a correct checksum: one error line naming the file and position, and
// nothing from the protobuf library on stderr.
TEST_F(CheckpointValidationTest, SealedStateThatDoesNotParseIsRefusedAtItsPosition) {
  edit_state("world_size: 1", "world_size: one");
  expect_all_refused({state_path() + ":", ": Expected integer, got: one"});
  const DgqaRun run = resume(checkpoint_dir());
  EXPECT_EQ(run.err.find("libprotobuf"), std::string::npos) << run.err;
}

TEST_F(CheckpointValidationTest, StepBeyondTheRunsMaxStepsIsRefused) {
  edit_state("step: 2", "step: 999999999");
  expect_all_refused({state_path() + ": step:", "beyond the run's train.max_steps = 2"});
}

TEST_F(CheckpointValidationTest, NegativeStepIsRefused) {
  edit_state("step: 2", "step: -1");
  expect_all_refused({state_path() + ": step:", "must be at least 0"});
}

TEST_F(CheckpointValidationTest, EpochThatDoesNotFitTheStepIsRefused) {
  edit_state("epoch: 0", "epoch: 5");
  expect_all_refused({state_path() + ": epoch:", "do not fit together"});
}

// Two steps of 8 images: at most 16 images in the log window, and at most as many right.
TEST_F(CheckpointValidationTest, LogWindowOfMoreImagesThanTheStepsIsRefused) {
  edit_state("log_window_images: 0", "log_window_images: 17");
  expect_all_refused({state_path() + ": log_window_images:", "17 is not between 0 and the images"});
}

TEST_F(CheckpointValidationTest, LogWindowWithMoreRightThanImagesIsRefused) {
  edit_state("log_window_correct: 0", "log_window_correct: 1");
  expect_all_refused({state_path() + ": log_window_correct:", "log_window_images = 0"});
}

// Step 9 in epoch 0 fits a run of 20 steps on its own, but this data has 8 steps per epoch.
TEST_F(CheckpointValidationTest, StepBeyondItsEpochIsRefusedOnResuming) {
  edit_state("step: 2", "step: 9");
  edit_state("batch_in_epoch: 2", "batch_in_epoch: 9");
  edit_state("max_steps: 2", "max_steps: 20");
  expect_all_refused({state_path() + ": step:", "8 steps per epoch"}, /*training_only=*/true);
}

TEST_F(CheckpointValidationTest, NegativeOptimizerStepCountIsRefused) {
  set_optimizer_steps(-100);
  expect_all_refused({"optimizer.safetensors: optimizer.steps:", "is -100"},
                     /*training_only=*/true);
}

TEST_F(CheckpointValidationTest, OptimizerStepCountOtherThanTheStepIsRefused) {
  set_optimizer_steps(7);
  expect_all_refused({"optimizer.safetensors: optimizer.steps:", "is 7"}, /*training_only=*/true);
}

TEST_F(CheckpointValidationTest, NonFiniteFirstMomentIsRefused) {
  set_optimizer_value("exp_avg.head.bias", 1, std::numeric_limits<float>::quiet_NaN());
  expect_all_refused(
      {"optimizer.safetensors: tensor exp_avg.head.bias has a non-finite value", "at element 1"},
      /*training_only=*/true);
}

TEST_F(CheckpointValidationTest, InfiniteSecondMomentIsRefused) {
  set_optimizer_value("exp_avg_sq.blocks.0.attn.q.weight", 3,
                      std::numeric_limits<float>::infinity());
  expect_all_refused({"optimizer.safetensors: tensor exp_avg_sq.blocks.0.attn.q.weight has a "
                      "non-finite value (inf at element 3)"},
                     /*training_only=*/true);
}

TEST_F(CheckpointValidationTest, NegativeSecondMomentIsRefused) {
  set_optimizer_value("exp_avg_sq.patch_embed.proj.weight", 0, -1e-8f);
  expect_all_refused({"optimizer.safetensors: tensor exp_avg_sq.patch_embed.proj.weight has a "
                      "negative value",
                      "at element 0"},
                     /*training_only=*/true);
}

TEST_F(CheckpointValidationTest, FileNamesOutsideTheCheckpointAreRefused) {
  const std::string original = tests::read_file(state_path());
  for (const std::string name :
       {"/dev/zero", "../step_00000002/model.safetensors", "sub/model.safetensors", "..", ""}) {
    SCOPED_TRACE(name);
    tests::write_file(state_path(), original);
    edit_state("name: \"model.safetensors\"", "name: \"" + name + "\"");
    expect_all_refused({state_path() + ": files[0].name:", "not a plain file name"});
  }
}

TEST_F(CheckpointValidationTest, FileNamesOfOtherFilesAreRefused) {
  edit_state("name: \"optimizer.safetensors\"", "name: \"model.safetensors\"");
  expect_all_refused({state_path() + ": files[1].name:", "not optimizer.safetensors"});
}

TEST_F(CheckpointValidationTest, HandEditedStateIsRefusedByItsChecksum) {
  const std::string text = tests::read_file(state_path());
  tests::write_file(state_path(), with_line_replaced(text, "step: 2", "step: 1"));
  expect_all_refused({state_path() + ": fails its checksum"});
}

TEST_F(CheckpointValidationTest, BitFlippedStateIsRefusedByItsChecksum) {
  std::string text = tests::read_file(state_path());
  text[text.size() / 2] = static_cast<char>(text[text.size() / 2] ^ 0x04);
  tests::write_file(state_path(), text);
  expect_all_refused({state_path() + ":", "checksum"});
}

TEST_F(CheckpointValidationTest, StateWithoutChecksumLineIsRefused) {
  tests::write_file(state_path(), state_body(tests::read_file(state_path())));
  expect_all_refused({state_path() + ": has no checksum line"});
}

}  // namespace
}  // namespace dgqa
