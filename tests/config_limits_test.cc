// End-to-end tests of the limits of a config (docs/configs.md "What is checked"): settings
// that once crashed or ended in std::bad_alloc (exit 1) end `dgqa` with exit code 2 and one
// `dgqa: error:` line naming the field or file, before any work.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::DgqaRun;
using tests::shell_quote;

class ConfigLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tests::make_temp_dir("dgqa_config_limits_");
    data_ = tests::write_fixture_dataset(dir_);
    config_ = tests::write_fixture_config(dir_ + "/config.pbtxt", data_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `dgqa train` of the fixture config with `sets` (field=value each) must end with exit code 2
  // and one error line holding every needle, with no model written.
  std::string expect_refused(const std::vector<std::string>& sets,
                             const std::vector<std::string>& needles,
                             const std::string& config = "") {
    std::string args = "train --config " + shell_quote(config.empty() ? config_ : config) +
                       " --out " + shell_quote(dir_ + "/out");
    for (const std::string& set : sets) args += " --set " + shell_quote(set);
    const std::string line = tests::expect_input_error(tests::run_dgqa(args, dir_), needles);
    EXPECT_FALSE(tests::file_exists(dir_ + "/out/model.safetensors"));
    return line;
  }

  std::string dir_, config_;
  tests::FixtureDataset data_;
};

// 100000 threads crashed inside OpenMP (SIGSEGV).
TEST_F(ConfigLimitsTest, ThreadCountIsCapped) {
  expect_refused({"train.threads=100000"}, {"train.threads", "[0, 1024]", "100000"});
  expect_refused({"train.threads=-1"}, {"train.threads", "-1"});
}

// Counts the model keeps in int, checked in 64 bits (signed overflow before).
TEST_F(ConfigLimitsTest, ShapesWhoseCountsOverflowInt) {
  expect_refused({"model.embed_dim=1000000000"},
                 {"model.embed_dim", "MLP width", "4000000000", "2147483647"});
  expect_refused({"model.image_size=65536", "model.patch_size=1"},
                 {"model.image_size", "4294967296 patches"});
  expect_refused({"model.image_size=46341", "model.patch_size=1"},
                 {"model.image_size", "2147488281 patches"});
}

// Models and batches that cannot fit in memory (std::bad_alloc before): the estimate, the
// machine's memory and the fields behind it.
TEST_F(ConfigLimitsTest, ModelTooLargeForTheMachine) {
  expect_refused({"model.depth=100000", "model.embed_dim=4096"},
                 {"model.embed_dim, model.depth:", "GiB of memory", "MemTotal", "parameters"});
  expect_refused({"model.num_classes=2147483647", "model.embed_dim=1024"},
                 {"model.num_classes, model.embed_dim:", "GiB of memory"});
}

TEST_F(ConfigLimitsTest, ActivationsTooLargeForTheMachine) {
  // 65536 tokens: the attention probabilities alone are 16 x 4 x 65536^2 floats.
  expect_refused({"model.image_size=1024", "model.patch_size=4"},
                 {"train.eval_batch_size, model.image_size / model.patch_size", "activations",
                  "GiB of memory"});
}

TEST_F(ConfigLimitsTest, CifarFileThatIsADirectory) {
  const std::string root = dir_ + "/cifar";
  std::filesystem::create_directories(root + "/data_batch_1.bin");
  const std::string config = dir_ + "/cifar.pbtxt";
  tests::write_file(config,
                    "model { image_size: 32 patch_size: 8 in_channels: 3 num_classes: 10"
                    " embed_dim: 16 depth: 1 num_heads: 2 }\n"
                    "data { format: CIFAR10 root: \"" +
                        root + "\" }\n");
  const std::string line =
      expect_refused({}, {root + "/data_batch_1.bin", "is a directory"}, config);
  EXPECT_NE(line.find("data.root"), std::string::npos) << line;
}

}  // namespace
}  // namespace dgqa
