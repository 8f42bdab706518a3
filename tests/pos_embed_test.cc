// Position-embedding resampling (io/pos_embed.h, docs/design.md §4): weights for a 224 px,
// patch-16 model (a 14x14 grid) loaded into 384 px (24x24), 64 px (4x4) and 32 px (2x2) models
// of every scheme, from a timm checkpoint (tools/make_timm_checkpoint.py) and from files dgqa
// wrote. The oracle is torch.nn.functional.interpolate(mode="bicubic", align_corners=False,
// antialias=True), as timm's resample_abs_pos_embed calls it by default, on the file's
// pos_embed, computed by Python at test time (the tests skip without torch).
#include "io/pos_embed.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/npy.h"
#include "io/weights.h"
#include "kernels/backend.h"
#include "model/vit.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::shell_quote;

constexpr int kDim = 8;  // small: the test is about the grid

// Writes OUT_DIR/<stem>_<side>.npy for each file and side: the file's pos_embed with its grid
// resized by torch to side x side, the class token kept.
constexpr const char* kOracle = R"(
import sys, numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
from safetensors_numpy import read_safetensors
out_dir, sides, files = sys.argv[2], [int(s) for s in sys.argv[3].split(",")], sys.argv[4:]
for path in files:
    pos = torch.from_numpy(np.asarray(read_safetensors(path)["pos_embed"], dtype=np.float32))
    g = int(round((pos.shape[1] - 1) ** 0.5))
    grid = pos[:, 1:].reshape(1, g, g, -1).permute(0, 3, 1, 2)
    for side in sides:
        new = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False,
                            antialias=True)
        new = new.permute(0, 2, 3, 1).reshape(1, side * side, -1)
        stem = path.rsplit("/", 1)[1].split(".")[0]
        np.save(f"{out_dir}/{stem}_{side}.npy", torch.cat([pos[:, :1], new], 1).numpy())
)";

ModelConfig model_config(AttentionScheme scheme, int image_size) {
  ModelConfig config;
  config.image_size = image_size;
  config.patch_size = 16;
  config.in_channels = 1;
  config.num_classes = 10;
  config.embed_dim = kDim;
  config.depth = 1;
  config.num_heads = 4;
  config.num_kv_heads = scheme == AttentionScheme::kMHA ? 4 : 2;
  config.attention = scheme;
  return config;
}

void expect_names(const std::string& message, const std::vector<std::string>& parts) {
  for (const std::string& part : parts) tests::expect_contains(message, part);
}

const std::vector<AttentionScheme> kSchemes = {
    AttentionScheme::kMHA,       AttentionScheme::kGQA,      AttentionScheme::kKDGQA,
    AttentionScheme::kDGQA_DIFF, AttentionScheme::kDGQA_EMA, AttentionScheme::kPGQA};

class PosEmbedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tests::have_python_modules("numpy, torch")) GTEST_SKIP() << "needs python3 with torch";
    dir_ = tests::make_temp_dir("dgqa_pos_embed_");
    backend_ = make_backend("cpu");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string write_timm(const std::string& name, const std::string& args) {
    const std::string path = dir_ + "/" + name;
    std::string output;
    const int status = tests::run_command(
        "/usr/bin/python3 " + shell_quote(DGQA_SOURCE_DIR "/tools/make_timm_checkpoint.py") + " " +
            shell_quote(path) + " --patch-size 16 --depth 1 --in-channels 1 --num-classes 10 " +
            args,
        &output);
    EXPECT_EQ(status, 0) << output;
    return path;
  }

  // Runs kOracle on `files` for the sides 24, 4 and 2.
  void run_oracle(const std::vector<std::string>& files) {
    const std::string script = dir_ + "/oracle.py";
    tests::write_file(script, kOracle);
    std::string command = "/usr/bin/python3 " + shell_quote(script) + " " +
                          shell_quote(DGQA_SOURCE_DIR "/tools") + " " + shell_quote(dir_) +
                          " 24,4,2";
    for (const std::string& file : files) command += " " + shell_quote(file);
    std::string output;
    ASSERT_EQ(tests::run_command(command, &output), 0) << output;
  }

  // Loads `file` into a model of `scheme` at `image_size` and compares its pos_embed with the
  // oracle's OUT_DIR/<stem>_<side>.npy.
  void expect_resampled(const std::string& file, const std::string& stem, AttentionScheme scheme,
                        int image_size) {
    SCOPED_TRACE(stem + " -> " + attention_scheme_name(scheme) + " at " +
                 std::to_string(image_size));
    VisionTransformer model(model_config(scheme, image_size), *backend_, 1, /*seed=*/5);
    load_weights(model, file, OtherHead::kRefuse, OtherGrid::kResample);
    const TensorSlot& slot = *model.layout().find("pos_embed");
    const std::vector<float> params = model.params_to_host();
    const NpyArray expected =
        read_npy_f32(dir_ + "/" + stem + "_" + std::to_string(image_size / 16) + ".npy");
    ASSERT_EQ(expected.shape, slot.shape);
    for (size_t i = 0; i < expected.data.size(); ++i) {
      ASSERT_NEAR(params[slot.offset + i], expected.data[i], 1e-5) << "element " << i;
    }
  }

  std::string dir_;
  std::unique_ptr<Backend> backend_;
};

TEST_F(PosEmbedTest, TimmCheckpointAt224IntoEverySchemeAt384And64And32) {
  const std::string timm = write_timm("timm.safetensors", "--image-size 224 --embed-dim 8");
  run_oracle({timm});
  for (AttentionScheme scheme : kSchemes) {
    for (int image_size : {384, 64, 32}) expect_resampled(timm, "timm", scheme, image_size);
  }
}

TEST_F(PosEmbedTest, DgqaFilesAt224IntoTheirSchemeAt384And64And32) {
  std::vector<std::string> files;
  for (AttentionScheme scheme : kSchemes) {
    VisionTransformer model(model_config(scheme, 224), *backend_, 1, /*seed=*/7);
    files.push_back(dir_ + "/" + attention_scheme_name(scheme) + ".safetensors");
    save_weights(model, files.back());
  }
  run_oracle(files);
  for (size_t i = 0; i < kSchemes.size(); ++i) {
    for (int image_size : {384, 64, 32}) {
      expect_resampled(files[i], attention_scheme_name(kSchemes[i]), kSchemes[i], image_size);
    }
  }
}

TEST_F(PosEmbedTest, SameGridIsLeftAsItIs) {
  const std::string timm = write_timm("timm.safetensors", "--image-size 224 --embed-dim 8");
  VisionTransformer model(model_config(AttentionScheme::kGQA, 224), *backend_, 1, 5);
  load_weights(model, timm, OtherHead::kRefuse, OtherGrid::kResample);
  const TensorSlot& slot = *model.layout().find("pos_embed");
  const std::vector<float> params = model.params_to_host();
  const std::vector<float> stored = SafetensorsFile::read(timm).as_f32("pos_embed");
  EXPECT_EQ(std::vector<float>(params.begin() + slot.offset,
                               params.begin() + slot.offset + stored.size()),
            stored);
}

TEST_F(PosEmbedTest, RefusedWithoutResampling) {
  const std::string timm = write_timm("timm.safetensors", "--image-size 224 --embed-dim 8");
  VisionTransformer model(model_config(AttentionScheme::kGQA, 384), *backend_, 1, 5);
  const std::string message = tests::input_error_of([&] { load_weights(model, timm); });
  expect_names(message, {timm, "pos_embed", "(1, 197, 8)", "(1, 577, 8)"});
}

TEST_F(PosEmbedTest, NonSquareGridIsAnError) {
  FloatTensor pos{{1, 1 + 6, kDim}, std::vector<float>(7 * kDim, 0.5f)};  // 6 patches: no square
  const std::string message = tests::input_error_of([&] {
    resample_pos_embed(pos, {1, 1 + 4, kDim}, "f.safetensors");
  });
  expect_names(message, {"f.safetensors", "pos_embed", "(1, 7, 8)", "square"});
}

TEST_F(PosEmbedTest, OtherEmbedDimIsAnError) {
  const std::string timm = write_timm("timm-d16.safetensors", "--image-size 224 --embed-dim 16");
  const SafetensorsFile file = SafetensorsFile::read(timm);
  const FloatTensor pos{file.get("pos_embed").shape, file.as_f32("pos_embed")};
  const std::string message = tests::input_error_of([&] {
    resample_pos_embed(pos, {1, 577, kDim}, timm);
  });
  expect_names(message, {timm, "pos_embed", "(1, 197, 16)", "embed_dim"});
}

}  // namespace
}  // namespace dgqa
