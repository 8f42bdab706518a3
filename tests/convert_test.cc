// End-to-end tests of the timm import (docs/design.md §3.5 and §4): `dgqa convert` and
// `dgqa train --init-from` given a timm checkpoint (fused attn.qkv) that another program wrote,
// tools/make_timm_checkpoint.py (Python with numpy; the tests skip without it).
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/backend.h"
#include "model/vit.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"
#include "trainer/config.h"

namespace dgqa {
namespace {

using tests::DgqaRun;
using tests::expect_input_error;
using tests::FixtureConfig;
using tests::FixtureDataset;
using tests::shell_quote;

// The fixture model's shape (tests/fixtures.h); the timm checkpoints have 10 classes.
constexpr int kDim = 16;
constexpr int kDepth = 2;
constexpr int kHeads = 4;
constexpr int kTimmClasses = 10;

std::string block(int layer, const std::string& suffix) {
  return "blocks." + std::to_string(layer) + "." + suffix;
}

// Checks that `out` is the conversion of the timm checkpoint `timm` to G K/V heads: each
// attn.qkv split into rows [0, D) for q, [D, 2D) for k and [2D, 3D) for v, k and v viewed as
// (H, d, ...) and averaged over each contiguous group of H / G heads (in double), every other
// tensor copied.
void expect_converted(const std::string& timm_path, const std::string& out_path, int G) {
  const SafetensorsFile timm = SafetensorsFile::read(timm_path);
  const SafetensorsFile out = SafetensorsFile::read(out_path);
  const int64_t D = kDim, d = kDim / kHeads;
  const int per_group = kHeads / G;
  for (const std::string& name : timm.names()) {
    if (name.find("attn.qkv") != std::string::npos) {
      EXPECT_FALSE(out.has(name)) << name;
      continue;
    }
    ASSERT_TRUE(out.has(name)) << name;
    EXPECT_EQ(out.get(name).shape, timm.get(name).shape) << name;
    EXPECT_EQ(out.as_f32(name), timm.as_f32(name)) << name;
  }
  for (int layer = 0; layer < kDepth; ++layer) {
    for (const std::string kind : {"weight", "bias"}) {
      SCOPED_TRACE(block(layer, "attn.qkv." + kind));
      const std::vector<float> qkv = timm.as_f32(block(layer, "attn.qkv." + kind));
      const int64_t row = kind == "weight" ? D : 1;  // floats per output row
      const std::vector<int64_t> kv_shape =
          kind == "weight" ? std::vector<int64_t>{G * d, D} : std::vector<int64_t>{G * d};

      const std::string q = block(layer, "attn.q." + kind);
      EXPECT_EQ(out.as_f32(q), std::vector<float>(qkv.begin(), qkv.begin() + D * row));

      for (int part : {1, 2}) {  // k, v
        const std::string name =
            block(layer, std::string(part == 1 ? "attn.k." : "attn.v.") + kind);
        ASSERT_TRUE(out.has(name)) << name;
        EXPECT_EQ(out.get(name).shape, kv_shape) << name;
        const std::vector<float> got = out.as_f32(name);
        for (int g = 0; g < G; ++g) {
          for (int64_t r = 0; r < d; ++r) {
            for (int64_t c = 0; c < row; ++c) {
              double sum = 0;
              for (int h = g * per_group; h < (g + 1) * per_group; ++h) {
                sum += qkv[(part * D + h * d + r) * row + c];
              }
              ASSERT_EQ(got[(g * d + r) * row + c], static_cast<float>(sum / per_group))
                  << name << " K/V head " << g << " row " << r << " column " << c;
            }
          }
        }
      }
    }
  }
}

class ConvertTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_dir_ = new std::string(tests::make_temp_dir("dgqa_convert_suite_"));
    data_ = new FixtureDataset(tests::write_fixture_dataset(*suite_dir_));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*suite_dir_);
    delete data_;
    delete suite_dir_;
  }

  void SetUp() override {
    if (!tests::have_python_with_numpy()) GTEST_SKIP() << "needs /usr/bin/python3 with numpy";
    dir_ = tests::make_temp_dir("dgqa_convert_");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // A timm checkpoint for the fixture model (image 8, patch 4, D 16, depth 2, one channel) with
  // 10 classes, written by tools/make_timm_checkpoint.py; `args` adds or overrides options.
  std::string write_timm(const std::string& name, const std::string& args = "") {
    const std::string path = dir_ + "/" + name;
    std::string output;
    const int status = tests::run_command(
        "/usr/bin/python3 " + shell_quote(DGQA_SOURCE_DIR "/tools/make_timm_checkpoint.py") + " " +
            shell_quote(path) + " --image-size 8 --patch-size 4 --embed-dim 16 --depth 2" +
            " --in-channels 1 --num-classes 10 --seed 3 " + args,
        &output);
    EXPECT_EQ(status, 0) << output;
    return path;
  }

  // A fixture config with num_classes = kTimmClasses unless settings say otherwise.
  std::string write_config(FixtureConfig settings) {
    return tests::write_fixture_config(dir_ + "/config.pbtxt", *data_, settings);
  }
  static FixtureConfig settings_for(const std::string& attention, int num_kv_heads) {
    FixtureConfig settings;
    settings.attention = attention;
    settings.num_kv_heads = num_kv_heads;
    settings.num_classes = kTimmClasses;
    settings.max_steps = 2;
    return settings;
  }

  DgqaRun run_dgqa(const std::string& args) { return tests::run_dgqa(args, dir_); }
  DgqaRun convert(const std::string& config, const std::string& from, const std::string& to) {
    return run_dgqa("convert --config " + shell_quote(config) + " --from " + shell_quote(from) +
                    " --to " + shell_quote(to));
  }

  // `dgqa convert` must refuse with one error line naming needles, and write nothing.
  void expect_convert_rejected(const std::string& config, const std::string& from,
                               const std::vector<std::string>& needles) {
    const std::string to = dir_ + "/rejected.safetensors";
    expect_input_error(convert(config, from, to), needles);
    EXPECT_FALSE(tests::file_exists(to));
  }

  static std::string* suite_dir_;
  static FixtureDataset* data_;
  std::string dir_;
};

std::string* ConvertTest::suite_dir_ = nullptr;
FixtureDataset* ConvertTest::data_ = nullptr;

// ---- dgqa convert ----------------------------------------------------------------------------

TEST_F(ConvertTest, GqaAveragesContiguousHeadGroups) {
  const std::string timm = write_timm("timm.safetensors");
  const std::string out = dir_ + "/gqa.safetensors";
  const DgqaRun run = convert(write_config(settings_for("GQA", 2)), timm, out);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_converted(timm, out, 2);
  const SafetensorsFile file = SafetensorsFile::read(out);
  EXPECT_EQ(file.names().size(), 4u + 16u * kDepth + 4u);  // every parameter, nothing else
  EXPECT_EQ(file.metadata().at("dgqa_attention"), "GQA");
  EXPECT_NE(run.err.find("GQA with H 4, G 2"), std::string::npos) << run.err;
}

TEST_F(ConvertTest, AsManyKvHeadsAsHeadsCopiesKAndV) {
  const std::string timm = write_timm("timm.safetensors");
  const std::vector<std::pair<std::string, int>> targets = {{"GQA", 4}, {"MHA", -1}};
  for (const auto& [attention, num_kv_heads] : targets) {
    SCOPED_TRACE(attention);
    const std::string out = dir_ + "/" + attention + ".safetensors";
    const DgqaRun run = convert(write_config(settings_for(attention, num_kv_heads)), timm, out);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    expect_converted(timm, out, kHeads);
    EXPECT_EQ(SafetensorsFile::read(out).metadata().at("dgqa_attention"), attention);
  }
}

TEST_F(ConvertTest, HalfPrecisionCheckpoint) {
  const std::string timm = write_timm("timm-f16.safetensors", "--dtype F16");
  ASSERT_EQ(SafetensorsFile::read(timm).get("blocks.0.attn.qkv.weight").dtype, "F16");
  const std::string out = dir_ + "/gqa.safetensors";
  const DgqaRun run = convert(write_config(settings_for("GQA", 2)), timm, out);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_converted(timm, out, 2);
  EXPECT_EQ(SafetensorsFile::read(out).get("blocks.0.attn.k.weight").dtype, "F32");
}

TEST_F(ConvertTest, DgqaGetsFreshStateAndTrainsFromTheResult) {
  const std::string timm = write_timm("timm.safetensors");
  const std::string out = dir_ + "/dgqa.safetensors";
  const std::string config = write_config(settings_for("DGQA_EMA", 2));
  const DgqaRun run = convert(config, timm, out);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_converted(timm, out, 2);
  const SafetensorsFile file = SafetensorsFile::read(out);
  for (int layer = 0; layer < kDepth; ++layer) {
    EXPECT_EQ(file.as_f32(block(layer, "attn.cache")), std::vector<float>(2, 0.f));
    EXPECT_EQ(file.as_i64(block(layer, "attn.allocation")), (std::vector<int64_t>{2, 2}));
  }

  const DgqaRun train = run_dgqa("train --config " + shell_quote(config) + " --init-from " +
                                 shell_quote(out) + " --out " + shell_quote(dir_ + "/run"));
  EXPECT_EQ(train.exit_code, 0) << train.err;
  EXPECT_NE(train.err.find("Loaded the DGQA cache and allocation"), std::string::npos) << train.err;
}

TEST_F(ConvertTest, AHeadForOtherClassesIsTheModelsFreshHead) {
  FixtureConfig settings = settings_for("GQA", 2);
  settings.num_classes = 4;  // the checkpoint has 10
  const std::string config = write_config(settings);
  const std::string timm = write_timm("timm.safetensors");
  const std::string out = dir_ + "/gqa.safetensors";
  const DgqaRun run = convert(config, timm, out);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("the head is re-initialised"), std::string::npos) << run.err;

  // The head of a model built from the config, as training would start it.
  std::unique_ptr<Backend> backend = make_backend("cpu");
  const config::Config parsed = load_config(config, {});
  const VisionTransformer model(model_config_from(parsed), *backend, 1, parsed.seed());
  const std::vector<float> params = model.params_to_host();
  const SafetensorsFile file = SafetensorsFile::read(out);
  for (const std::string name : {"head.weight", "head.bias"}) {
    const TensorSlot* slot = model.layout().find(name);
    EXPECT_EQ(file.get(name).shape, slot->shape);
    EXPECT_EQ(file.as_f32(name), std::vector<float>(params.begin() + slot->offset,
                                                    params.begin() + slot->offset + slot->size))
        << name;
  }
}

// An independent reader (numpy, its own parser) finds in the converted file the mean of the
// right heads of the timm file.
const char kPythonCheck[] = R"(
import json, struct, sys
import numpy as np

def read(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    types = {"F32": "<f4", "I64": "<i8"}
    return {name: np.frombuffer(data[8 + n + info["data_offsets"][0]:8 + n + info["data_offsets"][1]],
                                dtype=types[info["dtype"]]).reshape(info["shape"])
            for name, info in header.items()}

timm, ours = read(sys.argv[1]), read(sys.argv[2])
H, G, D = 4, 2, 16
v = timm["blocks.1.attn.qkv.weight"][2 * D:].astype(np.float64).reshape(G, H // G, D // H, D)
expected = v.mean(axis=1).reshape(G * D // H, D).astype(np.float32)
assert ours["blocks.1.attn.v.weight"].shape == expected.shape
assert np.allclose(ours["blocks.1.attn.v.weight"], expected, rtol=0, atol=1e-6)
assert np.array_equal(ours["head.weight"], timm["head.weight"])
print("OK")
)";

TEST_F(ConvertTest, AnIndependentReaderFindsTheMeans) {
  const std::string timm = write_timm("timm.safetensors");
  const std::string out = dir_ + "/gqa.safetensors";
  ASSERT_EQ(convert(write_config(settings_for("GQA", 2)), timm, out).exit_code, 0);
  tests::write_file(dir_ + "/check.py", kPythonCheck);
  std::string output;
  const int status = tests::run_command("/usr/bin/python3 " + shell_quote(dir_ + "/check.py") +
                                            " " + shell_quote(timm) + " " + shell_quote(out),
                                        &output);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "OK\n");
}

// ---- dgqa train --init-from a timm checkpoint -------------------------------------------------

TEST_F(ConvertTest, TrainConvertsOnTheFlyAndReinitialisesAHeadForOtherClasses) {
  FixtureConfig settings = settings_for("GQA", 2);
  settings.num_classes = 4;  // the fixture's classes; the checkpoint has 10
  const std::string timm = write_timm("timm.safetensors");
  const DgqaRun run =
      run_dgqa("train --config " + shell_quote(write_config(settings)) + " --init-from " +
               shell_quote(timm) + " --out " + shell_quote(dir_ + "/run"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("Converted the timm checkpoint " + timm), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("head.weight has shape (10, 16) in " + timm +
                         ", the model has (4, 16): the head is re-initialised"),
            std::string::npos)
      << run.err;
  EXPECT_TRUE(tests::file_exists(dir_ + "/run/model.safetensors"));
}

TEST_F(ConvertTest, TrainRefusesATimmCheckpointOfAnotherWidth) {
  const std::string timm = write_timm("timm-d24.safetensors", "--embed-dim 24");
  const DgqaRun run =
      run_dgqa("train --config " + shell_quote(write_config(settings_for("GQA", 2))) +
               " --init-from " + shell_quote(timm));
  expect_input_error(run, {timm, "blocks.0.attn.qkv.weight", "(72, 24)", "(48, 16)"});
}

TEST_F(ConvertTest, TrainRefusesKvHeadsThatDoNotDivideTheHeads) {
  const std::string timm = write_timm("timm.safetensors");
  const DgqaRun run =
      run_dgqa("train --config " + shell_quote(write_config(settings_for("KDGQA", 3))) +
               " --init-from " + shell_quote(timm));
  expect_input_error(run, {"model.num_kv_heads", timm});
}

TEST_F(ConvertTest, CheckpointForAnotherImageSizeHasItsPositionEmbeddingResampled) {
  // The values are checked against PyTorch in tests/pos_embed_test.cc; here the command's part.
  const std::string timm = write_timm("timm-16px.safetensors", "--image-size 16");
  const std::string out = dir_ + "/out.safetensors";
  const DgqaRun run = convert(write_config(settings_for("GQA", 2)), timm, out);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  tests::expect_contains(run.err,
                         "Resampled pos_embed of " + timm + " from the 4x4 patch grid to 2x2");
  EXPECT_EQ(SafetensorsFile::read(out).get("pos_embed").shape, (std::vector<int64_t>{1, 5, 16}));
}

TEST_F(ConvertTest, TrainAndEvalInitFromAnotherImageSizeResampleThePositionEmbedding) {
  const std::string timm = write_timm("timm-16px.safetensors", "--image-size 16");
  const std::string config = write_config(settings_for("KDGQA", 2));
  const std::string resampled =
      "Resampled pos_embed of " + timm + " from the 4x4 patch grid to 2x2";
  const DgqaRun train =
      run_dgqa("train --config " + shell_quote(config) + " --init-from " + shell_quote(timm));
  ASSERT_EQ(train.exit_code, 0) << train.err;
  tests::expect_contains(train.err, resampled);
  const DgqaRun eval =
      run_dgqa("eval --config " + shell_quote(config) + " --init-from " + shell_quote(timm));
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  tests::expect_contains(eval.err, resampled);
}

// ---- What dgqa convert refuses ----------------------------------------------------------------

TEST_F(ConvertTest, MissingFromFile) {
  const std::string missing = dir_ + "/no-such-timm.safetensors";
  expect_convert_rejected(write_config(settings_for("GQA", 2)), missing, {missing});
}

TEST_F(ConvertTest, FileAlreadyInOurLayout) {
  const std::string config = write_config(settings_for("GQA", 2));
  const std::string ours = dir_ + "/ours.safetensors";
  ASSERT_EQ(convert(config, write_timm("timm.safetensors"), ours).exit_code, 0);
  expect_convert_rejected(config, ours, {ours, "already in dgqa's layout", "--init-from"});
}

TEST_F(ConvertTest, FileWithoutAttention) {
  const std::string other = dir_ + "/other.safetensors";
  const std::vector<float> values(4, 1.f);
  SafetensorsWriter writer;
  writer.add_f32("weight", {4}, values.data());
  writer.write(other);
  expect_convert_rejected(write_config(settings_for("GQA", 2)), other,
                          {other, "not a timm ViT checkpoint", "blocks.0.attn.qkv.weight"});
}

TEST_F(ConvertTest, KvHeadsThatDoNotDivideTheHeads) {
  const std::string timm = write_timm("timm.safetensors");
  for (const std::string attention : {"KDGQA", "DGQA_DIFF"}) {
    SCOPED_TRACE(attention);
    expect_convert_rejected(write_config(settings_for(attention, 3)), timm,
                            {"model.num_kv_heads", timm});
  }
}

TEST_F(ConvertTest, TensorThatTimmViTsOfThisShapeDoNotHave) {
  const std::string timm = write_timm("timm.safetensors");
  const SafetensorsFile file = SafetensorsFile::read(timm);
  SafetensorsWriter writer;
  for (const std::string& name : file.names()) {
    const std::vector<float> values = file.as_f32(name);
    writer.add_f32(name, file.get(name).shape, values.data());
  }
  const std::vector<float> ones(kDim, 1.f);
  writer.add_f32("fc_norm.weight", {kDim}, ones.data());
  const std::string extra = dir_ + "/timm-fc-norm.safetensors";
  writer.write(extra);
  expect_convert_rejected(write_config(settings_for("GQA", 2)), extra, {extra, "fc_norm.weight"});
}

TEST_F(ConvertTest, ToDirectoryThatDoesNotExist) {
  const std::string to = dir_ + "/no-such-dir/out.safetensors";
  expect_input_error(
      convert(write_config(settings_for("GQA", 2)), write_timm("timm.safetensors"), to),
      {"--to", dir_ + "/no-such-dir"});
}

}  // namespace
}  // namespace dgqa
