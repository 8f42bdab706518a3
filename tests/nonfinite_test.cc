// End-to-end tests of non-finite numbers and impossible DGQA state in weights, and of training
// that diverges (docs/design.md §3.6, §4): weights with NaN or Inf, or an allocation whose
// counts do not fit, are refused on loading (exit 2); an evaluation whose loss is not finite
// fails (exit 1); a diverging run fails (exit 1) without writing model.safetensors or a
// checkpoint from the bad weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::DgqaRun;
using tests::FixtureConfig;
using tests::FixtureDataset;
using tests::shell_quote;

// Replaces tensor `name` of a file by `values` (its shape and dtype kept: F32 or I64).
void write_edited(const std::string& from, const std::string& to, const std::string& name,
                  const std::function<void(std::vector<float>&)>& edit_f32,
                  const std::vector<int64_t>& i64 = {}) {
  const SafetensorsFile file = SafetensorsFile::read(from);
  SafetensorsWriter writer;
  for (const std::string& tensor : file.names()) {
    const TensorData& data = file.get(tensor);
    if (data.dtype == "I64") {
      const std::vector<int64_t> values = tensor == name ? i64 : file.as_i64(tensor);
      writer.add_i64(tensor, data.shape, values.data());
    } else {
      std::vector<float> values = file.as_f32(tensor);
      if (tensor == name) edit_f32(values);
      writer.add_f32(tensor, data.shape, values.data());
    }
  }
  writer.write(to);
}

class NonFiniteTest : public tests::TrainedWeightsTest {
 protected:
  std::string config_for(const std::string& scheme, const std::string& extra = "") {
    FixtureConfig config;
    config.attention = scheme;
    config.extra = extra;
    return tests::write_fixture_config(dir_ + "/" + scheme + ".pbtxt", *data_, config);
  }
  DgqaRun eval(const std::string& scheme, const std::string& weights) {
    return tests::run_dgqa("eval --config " + shell_quote(config_for(scheme)) + " --init-from " +
                               shell_quote(weights) + " --logits-out " +
                               shell_quote(dir_ + "/logits.npy"),
                           dir_);
  }
  DgqaRun train(const std::string& config, const std::string& out, const std::string& args) {
    return tests::run_dgqa(
        "train --config " + shell_quote(config) + " --out " + shell_quote(out) + " " + args, dir_);
  }

  // Eval and train --init-from both refuse the weights with exit 2, naming the needles.
  void expect_refused(const std::string& scheme, const std::string& weights,
                      const std::vector<std::string>& needles) {
    const DgqaRun evaluated = eval(scheme, weights);
    tests::expect_error_line(evaluated, 2, needles);
    EXPECT_TRUE(evaluated.out.empty()) << evaluated.out;
    EXPECT_FALSE(tests::file_exists(dir_ + "/logits.npy"));
    const DgqaRun trained =
        train(config_for(scheme), dir_ + "/out", "--init-from " + shell_quote(weights));
    tests::expect_error_line(trained, 2, needles);
    EXPECT_FALSE(tests::file_exists(dir_ + "/out/model.safetensors"));
  }
};

TEST_F(NonFiniteTest, WeightsWithNanOrInfAreRefused) {
  const std::string nan = dir_ + "/nan.safetensors", inf = dir_ + "/inf.safetensors";
  write_edited(weights_of("GQA"), nan, "head.bias", [](std::vector<float>& v) { v[1] = NAN; });
  write_edited(weights_of("GQA"), inf, "blocks.1.attn.k.weight",
               [](std::vector<float>& v) { v[5] = -INFINITY; });
  expect_refused("GQA", nan, {nan, "tensor head.bias has a non-finite value (nan at element 1)"});
  expect_refused("GQA", inf,
                 {inf, "tensor blocks.1.attn.k.weight has a non-finite value (-inf at element 5)"});
}

TEST_F(NonFiniteTest, DgqaCacheWithInfIsRefused) {
  const std::string weights = dir_ + "/cache.safetensors";
  write_edited(weights_of("DGQA_EMA"), weights, "blocks.0.attn.cache",
               [](std::vector<float>& v) { v[0] = INFINITY; });
  expect_refused("DGQA_EMA", weights, {weights, "blocks.0.attn.cache", "non-finite"});
}

// H 4, G 2: once narrowed to int, 2^32 + 2 became 2 and the allocation {2, 2} passed.
TEST_F(NonFiniteTest, DgqaAllocationCountBeyondIntIsRefused) {
  const std::string weights = dir_ + "/allocation.safetensors";
  write_edited(weights_of("DGQA_EMA"), weights, "blocks.1.attn.allocation",
               [](std::vector<float>&) {}, {(int64_t{1} << 32) + 2, 2});
  expect_refused("DGQA_EMA", weights,
                 {weights, "tensor blocks.1.attn.allocation",
                  "DGQA allocation count 4294967298 of K/V head 0 is outside [0, 4]"});
}

// Finite weights so large that the logits overflow: the mean loss is not finite, and eval says
// so instead of printing "loss": null.
TEST_F(NonFiniteTest, EvalWhoseLossIsNotFiniteFails) {
  const std::string weights = dir_ + "/huge.safetensors";
  write_edited(weights_of("GQA"), weights, "head.weight", [](std::vector<float>& v) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = i % 2 ? 3e38f : -3e38f;
  });
  const DgqaRun run = eval("GQA", weights);
  tests::expect_error_line(run, 1, {"the mean loss over the 40 examples is not finite"});
  EXPECT_TRUE(run.out.empty()) << run.out;
  EXPECT_FALSE(tests::file_exists(dir_ + "/logits.npy"));
}

// A run with a checkpoint at every step, resumed after step 2 with settings that make the
// weights infinite in step 3 (lr * weight_decay overflows the decay factor) while its loss and
// gradients are finite: the run fails as diverged, and neither model.safetensors nor a
// checkpoint of step 3 is written; step 2 stays the latest, byte for byte.
TEST_F(NonFiniteTest, NonFiniteFinalWeightsEndTrainingAsDiverged) {
  const std::string config = config_for("GQA", "checkpoint { every_steps: 1 }\n");
  const std::string out = dir_ + "/out";
  ASSERT_EQ(train(config, out, "--set train.max_steps=2").exit_code, 0);
  std::filesystem::remove(out + "/model.safetensors");
  const std::string step2 = out + "/checkpoints/step_00000002";
  const std::string model2 = tests::read_file(step2 + "/model.safetensors");
  const std::string optimizer2 = tests::read_file(step2 + "/optimizer.safetensors");

  const DgqaRun run = train(config, out,
                            "--resume auto --set train.max_steps=3 --set optimizer.lr=3e38 "
                            "--set optimizer.weight_decay=10");
  tests::expect_error_line(run, 1, {"the training diverged at step 3", "not finite"});
  EXPECT_FALSE(tests::file_exists(out + "/model.safetensors"));
  EXPECT_FALSE(tests::file_exists(out + "/checkpoints/step_00000003"));
  EXPECT_EQ(tests::read_file(out + "/checkpoints/latest"), "step_00000002");
  EXPECT_TRUE(tests::read_file(step2 + "/model.safetensors") == model2);
  EXPECT_TRUE(tests::read_file(step2 + "/optimizer.safetensors") == optimizer2);
}

// A final LayerNorm scaled to near the float range and a head scaled down to match: the logits,
// and so the loss, stay moderate, but the head's gradient (the normalised features times the
// softmax error) is near the float range in every element, and their norm is not a float. The
// gradient norm alone diverges: the first step fails without writing model.safetensors.
TEST_F(NonFiniteTest, NonFiniteGradientNormWithAFiniteLossEndsTrainingAsDiverged) {
  const std::string scaled_norm = dir_ + "/scaled_norm.safetensors";
  const std::string weights = dir_ + "/steep.safetensors";
  write_edited(weights_of("GQA"), scaled_norm, "norm.weight",
               [](std::vector<float>& v) { std::fill(v.begin(), v.end(), 1.2e38f); });
  write_edited(scaled_norm, weights, "head.weight", [](std::vector<float>& v) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i * 5 % 11 - 5.0) * 5e-38f;
  });
  const std::string out = dir_ + "/out";
  const DgqaRun run = train(config_for("GQA"), out,
                            "--init-from " + shell_quote(weights) + " --set train.max_steps=2");
  tests::expect_error_line(run, 1,
                           {"the training diverged at step 1: the gradient norm is not finite"});
  EXPECT_FALSE(tests::file_exists(out + "/model.safetensors"));
  EXPECT_FALSE(tests::file_exists(out + "/metrics.jsonl") &&
               tests::read_file(out + "/metrics.jsonl").find("\"train\"") != std::string::npos);
}

// An absurd learning rate: the weights of step 3 are huge but finite, the loss of step 4 is not.
// The checkpoint due at step 4 is never written.
TEST_F(NonFiniteTest, DivergingLossKeepsTheLastGoodCheckpoint) {
  const std::string config = config_for("DGQA_EMA", "checkpoint { every_steps: 2 }\n");
  const std::string out = dir_ + "/out";
  ASSERT_EQ(train(config, out, "--set train.max_steps=2").exit_code, 0);
  std::filesystem::remove(out + "/model.safetensors");
  const DgqaRun run =
      train(config, out, "--resume auto --set train.max_steps=4 --set optimizer.lr=1e30");
  tests::expect_error_line(run, 1, {"the training diverged"});
  EXPECT_FALSE(tests::file_exists(out + "/model.safetensors"));
  EXPECT_FALSE(tests::file_exists(out + "/checkpoints/step_00000004"));
  EXPECT_EQ(tests::read_file(out + "/checkpoints/latest"), "step_00000002");
}

}  // namespace
}  // namespace dgqa
