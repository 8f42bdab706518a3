// End-to-end tests of how `dgqa` refuses bad input (docs/design.md §7): a bad config, bad
// data files, bad weights or bad arguments end the program with exit code 2 before any work,
// with exactly one `dgqa: error:` line on stderr that names the field or file at fault.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::DgqaRun;
using tests::expect_input_error;
using tests::FixtureConfig;
using tests::FixtureDataset;
using tests::shell_quote;

constexpr const char* kErrorPrefix = "dgqa: error:";

// A copy of a tensor of a safetensors file into a writer (F32 and I64 tensors only).
void copy_tensor(const SafetensorsFile& file, const std::string& name, SafetensorsWriter* writer) {
  const TensorData& tensor = file.get(name);
  if (tensor.dtype == "I64") {
    const std::vector<int64_t> values = file.as_i64(name);
    writer->add_i64(name, tensor.shape, values.data());
  } else {
    const std::vector<float> values = file.as_f32(name);
    writer->add_f32(name, tensor.shape, values.data());
  }
}

class BadInputTest : public tests::TrainedWeightsTest {
 protected:
  static std::string valid_weights(const std::string& scheme = "GQA") { return weights_of(scheme); }

  std::string write_config(const FixtureConfig& config, const FixtureDataset& data) {
    return tests::write_fixture_config(dir_ + "/config.pbtxt", data, config);
  }
  std::string write_config(const FixtureConfig& config = {}) {
    return write_config(config, *data_);
  }
  std::string write_config_text(const std::string& text) {
    tests::write_file(dir_ + "/config.pbtxt", text);
    return dir_ + "/config.pbtxt";
  }

  DgqaRun run_dgqa(const std::string& args) { return tests::run_dgqa(args, dir_); }

  // `dgqa train --config config --out DIR ARGS` must fail with an input error naming needles,
  // before training: nothing of a training run may appear in the out dir.
  void expect_train_rejected(const std::string& config, const std::string& args,
                             const std::vector<std::string>& needles) {
    const std::string out = dir_ + "/out";
    const DgqaRun run = run_dgqa("train --config " + shell_quote(config) + " --out " +
                                 shell_quote(out) + " " + args);
    expect_input_error(run, needles);
    const std::string metrics = out + "/metrics.jsonl";
    if (tests::file_exists(metrics)) {
      EXPECT_EQ(tests::read_file(metrics).find("\"train\""), std::string::npos)
          << "a train line was written before the input was rejected";
    }
    EXPECT_FALSE(tests::file_exists(out + "/model.safetensors"));
  }

  // `dgqa eval --config config --init-from weights --logits-out FILE` must fail likewise and
  // write no logits.
  void expect_eval_rejected(const std::string& config, const std::string& weights,
                            const std::vector<std::string>& needles) {
    const std::string logits = dir_ + "/logits.npy";
    const DgqaRun run = run_dgqa("eval --config " + shell_quote(config) + " --init-from " +
                                 shell_quote(weights) + " --logits-out " + shell_quote(logits));
    expect_input_error(run, needles);
    EXPECT_TRUE(run.out.empty()) << "eval printed a result: " << run.out;
    EXPECT_FALSE(tests::file_exists(logits));
  }

  // Both of the above for a weights file.
  void expect_weights_rejected(const std::string& weights, const std::vector<std::string>& needles,
                               const FixtureConfig& settings = {}) {
    const std::string config = write_config(settings);
    std::vector<std::string> all = needles;
    all.push_back(weights);
    {
      SCOPED_TRACE("dgqa train --init-from");
      expect_train_rejected(config, "--init-from " + shell_quote(weights), all);
    }
    {
      SCOPED_TRACE("dgqa eval --init-from");
      expect_eval_rejected(config, weights, all);
    }
  }

  // The valid GQA weights with one change, written to dir_/NAME.
  template <typename Edit>
  std::string edited_weights(const std::string& name, Edit edit,
                             const std::string& scheme = "GQA") {
    const SafetensorsFile file = SafetensorsFile::read(valid_weights(scheme));
    SafetensorsWriter writer;
    for (const std::string& tensor : file.names()) {
      if (!edit(file, tensor, &writer)) copy_tensor(file, tensor, &writer);
    }
    const std::string path = dir_ + "/" + name;
    writer.write(path);
    return path;
  }

  // The fixture dataset with one of its files replaced by bytes (plain, not gzipped).
  FixtureDataset with_file(std::string FixtureDataset::*file, const std::string& bytes) {
    FixtureDataset data = *data_;
    data.*file = dir_ + "/replaced-idx";
    tests::write_file(data.*file, bytes);
    return data;
  }
};

// ---- The config ------------------------------------------------------------------------------

TEST_F(BadInputTest, ValidFixtureTrains) {  // the baseline the other tests change one thing of
  const DgqaRun run = run_dgqa("train --config " + shell_quote(write_config()) + " --out " +
                               shell_quote(dir_ + "/out"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(tests::count_lines_containing(run.err, kErrorPrefix), 0);
}

TEST_F(BadInputTest, UnknownFieldInModel) {
  FixtureConfig config;
  config.extra_model = "  num_layers: 3\n";
  expect_train_rejected(write_config(config), "", {"num_layers", "config.pbtxt"});
}

TEST_F(BadInputTest, UnknownTopLevelField) {
  FixtureConfig config;
  config.extra = "learning_rate: 0.1\n";
  expect_train_rejected(write_config(config), "", {"learning_rate", "config.pbtxt"});
}

TEST_F(BadInputTest, UnknownMessageInConfig) {
  FixtureConfig config;
  config.extra = "scheduler { warmup_steps: 3 }\n";
  expect_train_rejected(write_config(config), "", {"scheduler", "config.pbtxt"});
}

TEST_F(BadInputTest, UnknownAttentionScheme) {
  FixtureConfig config;
  config.attention = "MQA";
  expect_train_rejected(write_config(config), "", {"MQA", "config.pbtxt"});
}

TEST_F(BadInputTest, ConfigSyntaxError) {
  expect_train_rejected(write_config_text("model { image_size: 8\n"), "", {"config.pbtxt"});
}

TEST_F(BadInputTest, MissingConfigFile) {
  expect_train_rejected(dir_ + "/no-such-config.pbtxt", "", {"no-such-config.pbtxt"});
}

TEST_F(BadInputTest, EmbedDimNotDivisibleByHeads) {
  FixtureConfig config;
  config.embed_dim = 18;
  expect_train_rejected(write_config(config), "", {"model.embed_dim"});
}

TEST_F(BadInputTest, HeadsNotDivisibleByKvHeadsForGqa) {
  FixtureConfig config;
  config.attention = "GQA";
  config.num_kv_heads = 3;
  expect_train_rejected(write_config(config), "", {"model.num_kv_heads"});
}

TEST_F(BadInputTest, HeadsNotDivisibleByKvHeadsForPgqa) {
  FixtureConfig config;
  config.attention = "PGQA";
  config.num_kv_heads = 3;
  expect_train_rejected(write_config(config), "", {"model.num_kv_heads"});
}

TEST_F(BadInputTest, KvHeadsNeedNotDivideHeadsForDynamicSchemes) {
  // Design 3.2/3.3: KDGQA and DGQA allocate any number of query heads to each K/V head.
  for (const std::string scheme : {"KDGQA", "DGQA_DIFF"}) {
    FixtureConfig config;
    config.attention = scheme;
    config.num_kv_heads = 3;
    config.max_steps = 2;
    const DgqaRun run = run_dgqa("train --config " + shell_quote(write_config(config)));
    EXPECT_EQ(run.exit_code, 0) << scheme << " with H 4, G 3:\n" << run.err;
  }
}

TEST_F(BadInputTest, MoreKvHeadsThanHeads) {
  for (const std::string scheme : {"GQA", "KDGQA", "DGQA_EMA", "PGQA"}) {
    SCOPED_TRACE(scheme);
    FixtureConfig config;
    config.attention = scheme;
    config.num_kv_heads = 8;
    expect_train_rejected(write_config(config), "", {"model.num_kv_heads"});
  }
}

TEST_F(BadInputTest, ImageSizeNotDivisibleByPatchSize) {
  FixtureConfig config;
  config.patch_size = 3;
  expect_train_rejected(write_config(config), "", {"model.image_size"});
}

// ---- The data files ------------------------------------------------------------------------

TEST_F(BadInputTest, MissingTrainImages) {
  FixtureDataset data = *data_;
  data.train_images = dir_ + "/no-such-images-idx3-ubyte.gz";
  expect_train_rejected(write_config({}, data), "", {"data.train_images", data.train_images});
}

TEST_F(BadInputTest, MissingTestLabels) {
  FixtureDataset data = *data_;
  data.test_labels = dir_ + "/no-such-labels-idx1-ubyte";
  expect_train_rejected(write_config({}, data), "", {"data.test_labels", data.test_labels});
}

TEST_F(BadInputTest, TruncatedImages) {
  const std::string bytes = tests::idx_images_bytes(data_->train);
  const FixtureDataset data =
      with_file(&FixtureDataset::train_images, bytes.substr(0, bytes.size() - 10));
  expect_train_rejected(write_config({}, data), "", {"data.train_images", data.train_images});
}

TEST_F(BadInputTest, TruncatedHeader) {
  const FixtureDataset data =
      with_file(&FixtureDataset::test_labels, tests::idx_labels_bytes(data_->test).substr(0, 6));
  expect_train_rejected(write_config({}, data), "", {"data.test_labels", data.test_labels});
}

TEST_F(BadInputTest, TruncatedGzipFile) {
  FixtureDataset data = *data_;
  const std::string gzipped = tests::read_file(data_->train_images);
  data.train_images = dir_ + "/truncated-images-idx3-ubyte.gz";
  tests::write_file(data.train_images, gzipped.substr(0, gzipped.size() / 2));
  expect_train_rejected(write_config({}, data), "", {"data.train_images", data.train_images});
}

TEST_F(BadInputTest, WrongImagesMagic) {
  // A labels file where the images belong.
  const FixtureDataset data =
      with_file(&FixtureDataset::train_images, tests::idx_labels_bytes(data_->train));
  expect_train_rejected(write_config({}, data), "",
                        {"data.train_images", data.train_images, "magic"});
}

TEST_F(BadInputTest, WrongLabelsMagic) {
  std::string bytes = tests::idx_labels_bytes(data_->test);
  bytes[3] = 0x03;
  const FixtureDataset data = with_file(&FixtureDataset::test_labels, bytes);
  expect_train_rejected(write_config({}, data), "",
                        {"data.test_labels", data.test_labels, "magic"});
}

TEST_F(BadInputTest, ImageAndLabelCountsDiffer) {
  tests::FixtureSplit fewer = data_->train;
  fewer.count -= 1;
  fewer.labels.pop_back();
  const FixtureDataset data =
      with_file(&FixtureDataset::train_labels, tests::idx_labels_bytes(fewer));
  expect_train_rejected(write_config({}, data), "", {data.train_labels});
}

TEST_F(BadInputTest, LabelNotBelowNumClasses) {
  tests::FixtureSplit split = data_->test;
  split.labels[5] = 9;
  const FixtureDataset data =
      with_file(&FixtureDataset::test_labels, tests::idx_labels_bytes(split));
  expect_train_rejected(write_config({}, data), "", {data.test_labels, "model.num_classes"});
}

TEST_F(BadInputTest, FewerClassesThanTheLabelsHave) {
  FixtureConfig config;
  config.num_classes = 3;  // the fixture's labels are 0..3
  expect_train_rejected(write_config(config), "", {"model.num_classes", data_->train_labels});
}

TEST_F(BadInputTest, InChannelsDifferFromTheData) {
  // The message names the file that holds the images (not the labels file).
  expect_train_rejected(write_config(), "--set model.in_channels=3",
                        {"model.in_channels", "data.train_images", data_->train_images});
}

TEST_F(BadInputTest, BatchLargerThanTheTrainingSet) {
  expect_train_rejected(write_config(), "--set train.global_batch_size=65",
                        {"train.global_batch_size"});
}

TEST_F(BadInputTest, EmptyTrainingSet) {
  tests::FixtureSplit empty = data_->train;
  empty.count = 0;
  empty.pixels.clear();
  empty.labels.clear();
  FixtureDataset data = *data_;
  data.train_images = dir_ + "/empty-images-idx3-ubyte";
  data.train_labels = dir_ + "/empty-labels-idx1-ubyte";
  tests::write_file(data.train_images, tests::idx_images_bytes(empty));
  tests::write_file(data.train_labels, tests::idx_labels_bytes(empty));
  expect_train_rejected(write_config({}, data), "", {});
}

TEST_F(BadInputTest, EmptyTestSet) {
  // An evaluation of no examples has no loss or accuracy: refused, not reported as loss 0.
  tests::FixtureSplit empty = data_->test;
  empty.count = 0;
  empty.pixels.clear();
  empty.labels.clear();
  FixtureDataset data = *data_;
  data.test_images = dir_ + "/empty-images-idx3-ubyte";
  data.test_labels = dir_ + "/empty-labels-idx1-ubyte";
  tests::write_file(data.test_images, tests::idx_images_bytes(empty));
  tests::write_file(data.test_labels, tests::idx_labels_bytes(empty));
  const std::string config = write_config({}, data);
  expect_train_rejected(config, "", {});
  expect_eval_rejected(config, valid_weights(), {});
}

TEST_F(BadInputTest, OutIsAFile) {
  const std::string out = dir_ + "/out";
  tests::write_file(out, "not a directory");
  const DgqaRun run =
      run_dgqa("train --config " + shell_quote(write_config()) + " --out " + shell_quote(out));
  expect_input_error(run, {out});
  EXPECT_EQ(tests::read_file(out), "not a directory");
}

// ---- The weights given to --init-from --------------------------------------------------------

TEST_F(BadInputTest, WeightsFileMissing) {
  expect_weights_rejected(dir_ + "/no-such-model.safetensors", {});
}

TEST_F(BadInputTest, WeightsMissingATensor) {
  const std::string weights =
      edited_weights("missing.safetensors",
                     [](const SafetensorsFile&, const std::string& name, SafetensorsWriter*) {
                       return name == "blocks.1.attn.k.bias";  // dropped
                     });
  expect_weights_rejected(weights, {"blocks.1.attn.k.bias"});
}

TEST_F(BadInputTest, WeightsWithAnExtraTensor) {
  const std::string weights = edited_weights(
      "extra.safetensors",
      [](const SafetensorsFile& file, const std::string& name, SafetensorsWriter* writer) {
        if (name != "head.bias") return false;
        copy_tensor(file, name, writer);
        const std::vector<float> values(4, 0.5f);
        writer->add_f32("head2.bias", {4}, values.data());
        return true;
      });
  expect_weights_rejected(weights, {"head2.bias"});
}

TEST_F(BadInputTest, WeightsWithAMisShapedTensor) {
  const std::string weights = edited_weights(
      "misshaped.safetensors",
      [](const SafetensorsFile&, const std::string& name, SafetensorsWriter* writer) {
        if (name != "head.weight") return false;
        const std::vector<float> values(5 * 16, 0.1f);
        writer->add_f32(name, {5, 16}, values.data());  // 5 classes, the model has 4
        return true;
      });
  expect_weights_rejected(weights, {"head.weight"});
}

TEST_F(BadInputTest, WeightsWithTheRightSizeButTheWrongShape) {
  const std::string weights = edited_weights(
      "transposed.safetensors",
      [](const SafetensorsFile& file, const std::string& name, SafetensorsWriter* writer) {
        if (name != "blocks.0.mlp.fc1.weight") return false;  // (64, 16) written as (16, 64)
        const std::vector<float> values = file.as_f32(name);
        writer->add_f32(name, {16, 64}, values.data());
        return true;
      });
  expect_weights_rejected(weights, {"blocks.0.mlp.fc1.weight"});
}

TEST_F(BadInputTest, WeightsOfAnotherKvHeadCount) {
  // GQA weights with G = 2 for a model with G = 1: the K/V projections do not fit.
  FixtureConfig config;
  config.num_kv_heads = 1;
  expect_weights_rejected(valid_weights(), {"blocks.0.attn.k"}, config);
}

TEST_F(BadInputTest, WeightsWithAnIntegerTensor) {
  const std::string weights = edited_weights(
      "integer.safetensors",
      [](const SafetensorsFile&, const std::string& name, SafetensorsWriter* writer) {
        if (name != "norm.bias") return false;
        const std::vector<int64_t> values(16, 0);
        writer->add_i64(name, {16}, values.data());
        return true;
      });
  expect_weights_rejected(weights, {"norm.bias"});
}

TEST_F(BadInputTest, TruncatedWeightsFile) {
  const std::string bytes = tests::read_file(valid_weights());
  const std::string weights = dir_ + "/truncated.safetensors";
  tests::write_file(weights, bytes.substr(0, bytes.size() - 100));
  expect_weights_rejected(weights, {});
}

TEST_F(BadInputTest, WeightsFileWithABrokenHeader) {
  std::string bytes = tests::read_file(valid_weights());
  bytes[8] = '[';  // the JSON header no longer parses as an object
  bytes[9] = '!';
  const std::string weights = dir_ + "/broken.safetensors";
  tests::write_file(weights, bytes);
  expect_weights_rejected(weights, {});
}

TEST_F(BadInputTest, DgqaAllocationThatDoesNotSumToTheHeads) {
  const std::string weights = edited_weights(
      "allocation.safetensors",
      [](const SafetensorsFile&, const std::string& name, SafetensorsWriter* writer) {
        if (name != "blocks.1.attn.allocation") return false;
        const std::vector<int64_t> values = {1, 1};  // H = 4
        writer->add_i64(name, {2}, values.data());
        return true;
      },
      "DGQA_EMA");
  FixtureConfig config;
  config.attention = "DGQA_EMA";
  expect_weights_rejected(weights, {"allocation"}, config);
}

TEST_F(BadInputTest, DgqaStateOfOnlyOneKind) {
  const std::string weights = edited_weights(
      "half-state.safetensors",
      [](const SafetensorsFile&, const std::string& name, SafetensorsWriter*) {
        return name == "blocks.0.attn.cache";  // dropped, the allocation stays
      },
      "DGQA_EMA");
  FixtureConfig config;
  config.attention = "DGQA_EMA";
  expect_weights_rejected(weights, {"blocks.0.attn.cache"}, config);
}

// ---- The command line ----------------------------------------------------------------------

TEST_F(BadInputTest, NoCommand) {
  expect_input_error(run_dgqa(""), {});
}

TEST_F(BadInputTest, UnknownCommand) {
  expect_input_error(run_dgqa("fly --config x"), {"fly"});
}

TEST_F(BadInputTest, UnknownFlag) {
  expect_train_rejected(write_config(), "--learning-rate 3", {"--learning-rate"});
}

TEST_F(BadInputTest, FlagWithoutValue) {
  expect_input_error(run_dgqa("train --config " + shell_quote(write_config()) + " --set"),
                     {"--set"});
}

TEST_F(BadInputTest, MissingConfigFlag) {
  expect_input_error(run_dgqa("train --out " + shell_quote(dir_ + "/out")), {"--config"});
  EXPECT_FALSE(tests::file_exists(dir_ + "/out"));
  expect_input_error(run_dgqa("eval --init-from " + shell_quote(valid_weights())), {"--config"});
}

TEST_F(BadInputTest, OutIsNotAnEvalFlag) {
  expect_input_error(
      run_dgqa("eval --config " + shell_quote(write_config()) + " --init-from " +
               shell_quote(valid_weights()) + " --out " + shell_quote(dir_ + "/out")),
      {"--out"});
}

// Weights mean nothing to bench and convert (convert reads --from): refused, not ignored.
TEST_F(BadInputTest, InitFromIsNotABenchOrConvertFlag) {
  const std::string config = shell_quote(write_config());
  const std::string weights = shell_quote(valid_weights());
  expect_input_error(run_dgqa("bench --config " + config + " --steps 1 --init-from " + weights),
                     {"--init-from", "dgqa bench"});
  expect_input_error(run_dgqa("convert --config " + config + " --from " + weights + " --to " +
                              shell_quote(dir_ + "/c.safetensors") + " --init-from " + weights),
                     {"--init-from", "dgqa convert"});
  EXPECT_FALSE(tests::file_exists(dir_ + "/c.safetensors"));
}

TEST_F(BadInputTest, EvalWithoutWeights) {
  expect_input_error(run_dgqa("eval --config " + shell_quote(write_config())),
                     {"--init-from", "--checkpoint"});
}

TEST_F(BadInputTest, EvalWithTwoSourcesOfWeights) {
  expect_input_error(run_dgqa("eval --config " + shell_quote(write_config()) + " --init-from " +
                              shell_quote(valid_weights()) + " --checkpoint " + shell_quote(dir_)),
                     {"--init-from", "--checkpoint", "not both"});
}

TEST_F(BadInputTest, EvalOfADirectoryThatIsNoCheckpoint) {
  expect_input_error(run_dgqa("eval --config " + shell_quote(write_config()) + " --checkpoint " +
                              shell_quote(dir_)),
                     {dir_, "state.pbtxt"});
}

TEST_F(BadInputTest, SetUnknownField) {
  expect_train_rejected(write_config(), "--set model.num_layers=3", {"model.num_layers"});
}

TEST_F(BadInputTest, SetUnknownMessage) {
  expect_train_rejected(write_config(), "--set trainer.max_steps=3", {"trainer"});
}

TEST_F(BadInputTest, SetBadNumber) {
  expect_train_rejected(write_config(), "--set model.num_heads=four", {"model.num_heads", "four"});
}

TEST_F(BadInputTest, SetBadEnum) {
  expect_train_rejected(write_config(), "--set model.attention=MQA", {"model.attention", "MQA"});
}

TEST_F(BadInputTest, SetBadBool) {
  expect_train_rejected(write_config(), "--set model.pgqa_eval_noise=yes",
                        {"model.pgqa_eval_noise", "yes"});
}

TEST_F(BadInputTest, SetWithoutValue) {
  expect_train_rejected(write_config(), "--set model.num_heads", {"model.num_heads"});
}

TEST_F(BadInputTest, SetMakesAShapeImpossible) {
  expect_train_rejected(write_config(), "--set model.num_kv_heads=3", {"model.num_kv_heads"});
}

TEST_F(BadInputTest, SetNegativeSteps) {
  expect_train_rejected(write_config(), "--set train.max_steps=-1", {"train.max_steps"});
}

// ---- A failed run leaves the out dir as it was -----------------------------------------------

TEST_F(BadInputTest, FailedRunsDoNotDamageAnEarlierRun) {
  const std::string config = write_config();
  const std::string out = dir_ + "/out";
  const DgqaRun good =
      run_dgqa("train --config " + shell_quote(config) + " --out " + shell_quote(out));
  ASSERT_EQ(good.exit_code, 0) << good.err;
  const std::string model = tests::read_file(out + "/model.safetensors");
  const std::string metrics = tests::read_file(out + "/metrics.jsonl");

  const std::string bad_weights =
      edited_weights("bad.safetensors", [](const SafetensorsFile&, const std::string& name,
                                           SafetensorsWriter*) { return name == "head.weight"; });
  const std::vector<std::string> bad_runs = {
      "--init-from " + shell_quote(bad_weights),
      "--init-from " + shell_quote(out + "/model.safetensors") + " --set model.embed_dim=18",
      "--set model.num_kv_heads=3",
  };
  for (const std::string& args : bad_runs) {
    const DgqaRun run = run_dgqa("train --config " + shell_quote(config) + " --out " +
                                 shell_quote(out) + " " + args);
    EXPECT_EQ(run.exit_code, 2) << args << ":\n" << run.err;
    EXPECT_TRUE(tests::read_file(out + "/model.safetensors") == model)
        << "model.safetensors changed by a failed run with " << args;
    EXPECT_EQ(tests::read_file(out + "/metrics.jsonl"), metrics)
        << "metrics.jsonl changed by a failed run with " << args;
  }
  std::vector<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(out)) {
    left.push_back(entry.path().filename().string());
  }
  std::sort(left.begin(), left.end());
  // What the good run wrote: its metrics, weights and end-of-training checkpoint.
  EXPECT_EQ(left, (std::vector<std::string>{"checkpoints", "metrics.jsonl", "model.safetensors"}));

  // A failed eval leaves an existing logits file alone.
  const std::string logits = dir_ + "/logits.npy";
  tests::write_file(logits, "earlier logits");
  const DgqaRun eval = run_dgqa("eval --config " + shell_quote(config) + " --init-from " +
                                shell_quote(bad_weights) + " --logits-out " + shell_quote(logits));
  EXPECT_EQ(eval.exit_code, 2) << eval.err;
  EXPECT_EQ(tests::read_file(logits), "earlier logits");
}

}  // namespace
}  // namespace dgqa
