// Loading, overriding and validating experiment configs (trainer/config.h).
#include "trainer/config.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/test_util.h"
#include "trainer/batch_mixer.h"
#include "trainer/memory_check.h"

namespace dgqa {
namespace {

// A small valid config: Fashion-MNIST shapes, 6 query heads, GQA with the default G = 3.
constexpr const char* kValidConfig = R"(
seed: 7
model {
  image_size: 28
  patch_size: 7
  in_channels: 1
  num_classes: 10
  embed_dim: 48
  depth: 2
  num_heads: 6
  attention: GQA
}
data {
  format: IDX
  train_images: "train-images-idx3-ubyte.gz"
  train_labels: "train-labels-idx1-ubyte.gz"
  test_images: "t10k-images-idx3-ubyte.gz"
  test_labels: "t10k-labels-idx1-ubyte.gz"
  mean: 0.286
  std: 0.353
}
optimizer { lr: 1e-3 }
schedule { warmup_steps: 10 }
train { global_batch_size: 64 epochs: 2 }
)";

// Overrides that make a config invalid, and the field the error must name.
struct FieldError {
  std::vector<std::string> overrides;
  const char* field;
};

class ConfigTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& text, const std::string& name = "config.pbtxt") {
    const std::string path = dir_ + "/" + name;
    tests::write_file(path, text);
    return path;
  }

  config::Config load(const std::vector<std::string>& overrides = {},
                      const std::string& text = kValidConfig) {
    return load_config(write(text), overrides);
  }

  // Each case's overrides must fail to load with a message naming its field (": field: ").
  void expect_errors_name_fields(const std::vector<FieldError>& cases) {
    for (const FieldError& c : cases) {
      const std::string message = load_error(c.overrides);
      EXPECT_NE(message.find(std::string(": ") + c.field + ": "), std::string::npos)
          << ::testing::PrintToString(c.overrides) << ": " << message;
    }
  }

  // The message of the InputError that loading must throw ("" and a test failure if none).
  std::string load_error(const std::vector<std::string>& overrides,
                         const std::string& text = kValidConfig) {
    const std::string path = write(text);
    try {
      load_config(path, overrides);
    } catch (const InputError& error) {
      return error.what();
    }
    ADD_FAILURE() << "no InputError for overrides " << ::testing::PrintToString(overrides);
    return "";
  }

  std::string dir_ = tests::make_temp_dir("dgqa_config_test_");
};

// ---- Valid configs ----------------------------------------------------------------------------

TEST_F(ConfigTest, ValidConfigLoads) {
  const config::Config config = load();
  EXPECT_EQ(config.seed(), 7u);
  EXPECT_EQ(config.train().global_batch_size(), 64);
  EXPECT_FLOAT_EQ(config.optimizer().lr(), 1e-3f);
  EXPECT_EQ(config.data().mean_size(), 1);
}

// Every config shipped in configs/ and bench/ loads and validates (configs/paper/ with
// data.root given).
TEST(ShippedConfigsTest, EveryConfigValidates) {
  int checked = 0;
  for (const char* folder : {"/configs", "/bench"}) {
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(std::string(DGQA_SOURCE_DIR) + folder)) {
      if (entry.path().extension() != ".pbtxt") continue;
      // The dataset configs leave data.root to the command line.
      const bool needs_root = entry.path().parent_path().filename() == "paper";
      const std::vector<std::string> overrides =
          needs_root ? std::vector<std::string>{"data.root=/data"} : std::vector<std::string>{};
      EXPECT_NO_THROW(load_config(entry.path().string(), overrides)) << entry.path();
      ++checked;
    }
  }
  EXPECT_GE(checked, 12 + 7);  // configs/paper/ alone holds 12
}

TEST_F(ConfigTest, TextRoundTrip) {
  const config::Config config = load();
  const config::Config reloaded = load_config(write(config_to_text(config), "again.pbtxt"), {});
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(config, reloaded))
      << config_to_text(config) << "\nvs\n"
      << config_to_text(reloaded);
}

TEST_F(ConfigTest, ModelConfigFromExplicitShape) {
  const ModelConfig model = model_config_from(load());
  EXPECT_EQ(model.image_size, 28);
  EXPECT_EQ(model.patch_size, 7);
  EXPECT_EQ(model.in_channels, 1);
  EXPECT_EQ(model.num_classes, 10);
  EXPECT_EQ(model.embed_dim, 48);
  EXPECT_EQ(model.depth, 2);
  EXPECT_EQ(model.num_heads, 6);
  EXPECT_EQ(model.num_kv_heads, 3);  // default: num_heads / 2
  EXPECT_EQ(model.attention, AttentionScheme::kGQA);
  EXPECT_EQ(model.dgqa_window, 300);
  EXPECT_FLOAT_EQ(model.dgqa_beta, 0.9f);
  EXPECT_EQ(model.dgqa_eval, DgqaEvalMode::kFrozen);
  EXPECT_TRUE(model.pgqa_eval_noise);
}

TEST_F(ConfigTest, OddHeadCountDefaultsToOneKvHeadPerQueryHead) {
  const ModelConfig model = model_config_from(load({"model.num_heads=3", "model.embed_dim=48"}));
  EXPECT_EQ(model.num_kv_heads, 3);
}

TEST_F(ConfigTest, MhaUsesOneKvHeadPerQueryHead) {
  const ModelConfig model = model_config_from(load({"model.attention=MHA"}));
  EXPECT_EQ(model.attention, AttentionScheme::kMHA);
  EXPECT_EQ(model.num_kv_heads, 6);
  EXPECT_EQ(model_config_from(load({"model.attention=MHA", "model.num_kv_heads=6"})).num_kv_heads,
            6);
}

TEST_F(ConfigTest, KeyDrivenSchemesAllowAnyKvHeadCountUpToH) {
  for (const char* scheme : {"KDGQA", "DGQA_DIFF", "DGQA_EMA"}) {
    const ModelConfig model =
        model_config_from(load({std::string("model.attention=") + scheme, "model.num_kv_heads=4"}));
    EXPECT_EQ(model.num_kv_heads, 4) << scheme;
  }
}

TEST_F(ConfigTest, EpochsMayBeZeroWhenMaxStepsDecides) {
  EXPECT_EQ(load({"train.epochs=0", "train.max_steps=10"}).train().max_steps(), 10);
}

// ---- Overrides --------------------------------------------------------------------------------

TEST_F(ConfigTest, OverrideInt32) {
  EXPECT_EQ(model_config_from(load({"model.num_kv_heads=2"})).num_kv_heads, 2);
}

TEST_F(ConfigTest, OverrideFloat) {
  EXPECT_FLOAT_EQ(load({"optimizer.lr=3e-4"}).optimizer().lr(), 3e-4f);
}

TEST_F(ConfigTest, OverrideEnumByName) {
  const config::Config config = load({"model.attention=KDGQA", "model.dgqa_eval=PER_BATCH"});
  EXPECT_EQ(config.model().attention(), config::KDGQA);
  EXPECT_EQ(model_config_from(config).dgqa_eval, DgqaEvalMode::kPerBatch);
}

// The switches that reproduce the paper's code (docs/experiments.md) reach the model's config.
TEST_F(ConfigTest, PaperCodeSwitches) {
  const ModelConfig defaults = model_config_from(load({}));
  EXPECT_EQ(defaults.dgqa_window_counter, DgqaWindowCounter::kGlobalStep);
  EXPECT_EQ(defaults.dgqa_fixup, DgqaFixup::kLargestRemainder);
  const config::Config config =
      load({"model.dgqa_eval=PER_BATCH_UPDATE", "model.dgqa_window_counter=EPOCH_STEP",
            "model.dgqa_fixup=RANDOM_INDEX", "model.pretrained_final_norm=FRESH",
            "train.eval_average=OVER_BATCHES"});
  const ModelConfig model = model_config_from(config);
  EXPECT_EQ(model.dgqa_eval, DgqaEvalMode::kPerBatchUpdate);
  EXPECT_EQ(model.dgqa_window_counter, DgqaWindowCounter::kEpochStep);
  EXPECT_EQ(model.dgqa_fixup, DgqaFixup::kRandomIndex);
  EXPECT_EQ(config.model().pretrained_final_norm(), config::FRESH);
  EXPECT_EQ(config.train().eval_average(), config::OVER_BATCHES);
}

TEST_F(ConfigTest, OverrideBool) {
  EXPECT_TRUE(load({"data.hflip=true"}).data().hflip());
  EXPECT_FALSE(load({"model.pgqa_eval_noise=false"}).model().pgqa_eval_noise());
}

TEST_F(ConfigTest, OverrideRepeatedReplacesTheWholeList) {
  const config::Config config =
      load({"model.in_channels=3", "data.mean=0.5,0.25,0.125", "data.std=0.5"});
  ASSERT_EQ(config.data().mean_size(), 3);
  EXPECT_FLOAT_EQ(config.data().mean(0), 0.5f);
  EXPECT_FLOAT_EQ(config.data().mean(1), 0.25f);
  EXPECT_FLOAT_EQ(config.data().mean(2), 0.125f);
  ASSERT_EQ(config.data().std_size(), 1);
  EXPECT_FLOAT_EQ(config.data().std(0), 0.5f);
}

TEST_F(ConfigTest, OverrideRepeatedWithNothingClearsIt) {
  EXPECT_EQ(load({"data.mean="}).data().mean_size(), 0);
}

TEST_F(ConfigTest, OverrideStringAsIs) {
  const config::Config config = load({"data.train_images=/data/a b=c.gz"});
  EXPECT_EQ(config.data().train_images(), "/data/a b=c.gz");
}

TEST_F(ConfigTest, OverrideTopLevelAndInt64) {
  const config::Config config = load({"seed=3", "train.max_steps=1000"});
  EXPECT_EQ(config.seed(), 3u);
  EXPECT_EQ(config.train().max_steps(), 1000);
}

TEST_F(ConfigTest, LaterOverrideWins) {
  EXPECT_EQ(load({"seed=3", "seed=4"}).seed(), 4u);
}

TEST_F(ConfigTest, BadOverridesNameTheFieldAndSet) {
  const struct {
    const char* assignment;
    const char* field;
  } cases[] = {
      {"nope=1", "nope"},
      {"model.nope=1", "model.nope"},
      {"seed.low=1", "seed"},
      {"model=3", "model"},
      {"model.depth", "model.depth"},
      {"=3", "=3"},
      {"optimizer.lr=abc", "optimizer.lr"},
      {"optimizer.lr=", "optimizer.lr"},
      {"optimizer.lr=1e39", "optimizer.lr"},
      {"optimizer.lr=nan", "optimizer.lr"},
      {"model.depth=2.5", "model.depth"},
      {"model.depth=99999999999", "model.depth"},
      {"train.max_steps=12x", "train.max_steps"},
      {"seed=-1", "seed"},
      {"model.attention=FOO", "model.attention"},
      {"data.hflip=yes", "data.hflip"},
      {"data.mean=0.5,x", "data.mean"},
  };
  for (const auto& c : cases) {
    const std::string message = load_error({c.assignment});
    EXPECT_NE(message.find("--set"), std::string::npos) << c.assignment << ": " << message;
    EXPECT_NE(message.find(c.field), std::string::npos) << c.assignment << ": " << message;
  }
}

TEST_F(ConfigTest, UnknownEnumNameListsTheValidOnes) {
  const std::string message = load_error({"model.attention=FOO"});
  EXPECT_NE(message.find("DGQA_EMA"), std::string::npos) << message;
}

// ---- The file ---------------------------------------------------------------------------------

TEST_F(ConfigTest, MissingFileIsNamed) {
  const std::string path = dir_ + "/absent.pbtxt";
  try {
    load_config(path, {});
    FAIL() << "no InputError";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
  }
}

TEST_F(ConfigTest, UnknownFieldInFileGivesFileLineAndMessage) {
  const std::string path = write("seed: 1\nmodel {\n  preset: \"vit_tiny\"\n  heads: 4\n}\n");
  try {
    load_config(path, {});
    FAIL() << "no InputError";
  } catch (const InputError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(path + ":4:"), std::string::npos) << message;
    EXPECT_NE(message.find("heads"), std::string::npos) << message;
  }
}

TEST_F(ConfigTest, SyntaxErrorGivesFileAndLine) {
  const std::string path = write("seed: 1\nmodel {\n  depth: twelve\n");
  try {
    load_config(path, {});
    FAIL() << "no InputError";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find(path + ":3:"), std::string::npos) << error.what();
  }
}

// ---- Validation -------------------------------------------------------------------------------

TEST_F(ConfigTest, MessageFormatIsSourceFieldWhat) {
  std::string text = kValidConfig;
  text.insert(text.find("  attention: GQA"), "  num_kv_heads: 4\n");
  const std::string path = write(text);
  try {
    load_config(path, {});
    FAIL() << "no InputError";
  } catch (const InputError& error) {
    EXPECT_EQ(
        std::string(error.what()),
        path + ": model.num_kv_heads: 4 does not divide model.num_heads = 6 (required for GQA)");
  }
}

TEST_F(ConfigTest, ImpossibleSettingsNameTheirField) {
  expect_errors_name_fields({
      {{"model.embed_dim=50"}, "model.embed_dim"},
      {{"model.num_kv_heads=4"}, "model.num_kv_heads"},
      {{"model.attention=PGQA", "model.num_kv_heads=4"}, "model.num_kv_heads"},
      {{"model.attention=KDGQA", "model.num_kv_heads=7"}, "model.num_kv_heads"},
      {{"model.attention=DGQA_EMA", "model.num_kv_heads=0"}, "model.num_kv_heads"},
      {{"model.num_kv_heads=-2"}, "model.num_kv_heads"},
      {{"model.attention=MHA", "model.num_kv_heads=3"}, "model.num_kv_heads"},
      {{"model.image_size=30"}, "model.image_size"},
      {{"model.image_size=0"}, "model.image_size"},
      {{"model.patch_size=0"}, "model.patch_size"},
      {{"model.in_channels=0"}, "model.in_channels"},
      {{"model.num_classes=-1"}, "model.num_classes"},
      {{"model.embed_dim=0"}, "model.embed_dim"},
      {{"model.depth=0"}, "model.depth"},
      {{"model.num_heads=0"}, "model.num_heads"},
      {{"model.attention=ATTENTION_UNSPECIFIED"}, "model.attention"},
      {{"model.dgqa_window=0"}, "model.dgqa_window"},
      {{"model.dgqa_beta=1.5"}, "model.dgqa_beta"},
      {{"model.dgqa_beta=-0.1"}, "model.dgqa_beta"},
      {{"model.init_std=-1"}, "model.init_std"},
      {{"optimizer.lr=-1"}, "optimizer.lr"},
      {{"optimizer.weight_decay=-0.1"}, "optimizer.weight_decay"},
      {{"optimizer.beta1=1"}, "optimizer.beta1"},
      {{"optimizer.beta2=-0.5"}, "optimizer.beta2"},
      {{"optimizer.eps=-1e-8"}, "optimizer.eps"},
      {{"optimizer.grad_clip=-1"}, "optimizer.grad_clip"},
      {{"schedule.warmup_steps=-1"}, "schedule.warmup_steps"},
      {{"schedule.min_lr=-1e-5"}, "schedule.min_lr"},
      {{"train.global_batch_size=0"}, "train.global_batch_size"},
      {{"train.eval_batch_size=0"}, "train.eval_batch_size"},
      {{"train.epochs=0"}, "train.epochs"},
      {{"train.max_steps=-1"}, "train.max_steps"},
      {{"train.eval_every_steps=-1"}, "train.eval_every_steps"},
      {{"train.log_every_steps=0"}, "train.log_every_steps"},
      {{"train.threads=-1"}, "train.threads"},
      {{"train.micro_batch_size=-1"}, "train.micro_batch_size"},
      {{"train.global_batch_size=32", "train.micro_batch_size=12"}, "train.micro_batch_size"},
      {{"train.backend=tpu"}, "train.backend"},
      {{"data.format=DATA_FORMAT_UNSPECIFIED"}, "data.format"},
      {{"data.train_images="}, "data.train_images"},
      {{"data.train_labels="}, "data.train_labels"},
      {{"data.test_images="}, "data.test_images"},
      {{"data.test_labels="}, "data.test_labels"},
      {{"data.format=CIFAR10"}, "data.root"},
      {{"data.format=CIFAR100"}, "data.root"},
      {{"data.mean=0.1,0.2"}, "data.mean"},
      {{"data.std=1,1,1"}, "data.std"},
      {{"data.std=0"}, "data.std"},
      {{"data.std=-0.5"}, "data.std"},
      {{"data.random_crop_padding=-1"}, "data.random_crop_padding"},
      {{"data.prefetch_batches=-1"}, "data.prefetch_batches"},
      {{"model.precision=BF16"}, "model.precision"},  // the CPU computes in fp32
      {{"dist.backend=NCCL"}, "dist.backend"},        // NCCL sums device buffers only
      {{"dist.zero_stage=2"}, "dist.zero_stage"},     // stages 2 and 3 are not built
      {{"dist.zero_stage=-1"}, "dist.zero_stage"},
  });
}

// Label smoothing, layer-wise LR decay and the schedules beyond CONSTANT and COSINE.
TEST_F(ConfigTest, FineTuningValuesAreCheckedByName) {
  expect_errors_name_fields({
      {{"optimizer.label_smoothing=1"}, "optimizer.label_smoothing"},
      {{"optimizer.label_smoothing=-0.1"}, "optimizer.label_smoothing"},
      {{"optimizer.layer_decay=0"}, "optimizer.layer_decay"},
      {{"optimizer.layer_decay=1.5"}, "optimizer.layer_decay"},
      {{"model.drop_path_rate=1"}, "model.drop_path_rate"},
      {{"model.drop_path_rate=-0.1"}, "model.drop_path_rate"},
      {{"schedule.warmup_start_factor=0"}, "schedule.warmup_start_factor"},
      {{"schedule.warmup_start_factor=1.5"}, "schedule.warmup_start_factor"},
      {{"schedule.warmup_steps=0", "schedule.warmup_start_factor=0.1"},
       "schedule.warmup_start_factor"},
      {{"schedule.kind=STEP", "schedule.step_size=0"}, "schedule.step_size"},
      {{"schedule.gamma=0"}, "schedule.gamma"},
      {{"schedule.gamma=2"}, "schedule.gamma"},
      {{"schedule.kind=MULTI_STEP"}, "schedule.milestones"},
      {{"schedule.kind=MULTI_STEP", "schedule.milestones=5,5"}, "schedule.milestones"},
      {{"schedule.kind=MULTI_STEP", "schedule.milestones=0,5"}, "schedule.milestones"},
      {{"schedule.kind=COSINE_RESTARTS"}, "schedule.cycle_steps"},
      {{"schedule.cycle_mul=0.5"}, "schedule.cycle_mul"},
      {{"schedule.cycle_decay=0"}, "schedule.cycle_decay"},
      {{"schedule.cycle_limit=-1"}, "schedule.cycle_limit"},
  });
  const config::Config good =
      load({"optimizer.label_smoothing=0.1", "optimizer.layer_decay=0.65",
            "schedule.warmup_start_factor=0.01", "schedule.kind=MULTI_STEP",
            "schedule.milestones=10,20", "schedule.gamma=0.5", "model.drop_path_rate=0.1"});
  EXPECT_FLOAT_EQ(good.optimizer().layer_decay(), 0.65f);
  EXPECT_FLOAT_EQ(model_config_from(good).drop_path_rate, 0.1f);
  EXPECT_EQ(good.schedule().milestones_size(), 2);
}

// The mixup section (docs/configs.md): ranges, the box range against the image size, an even
// global batch, the mode's names.
TEST_F(ConfigTest, MixupValuesAreCheckedByName) {
  expect_errors_name_fields({
      {{"mixup.mixup_alpha=-1"}, "mixup.mixup_alpha"},
      {{"mixup.mixup_alpha=inf"}, "mixup.mixup_alpha"},
      {{"mixup.cutmix_alpha=-0.5"}, "mixup.cutmix_alpha"},
      {{"mixup.prob=1.5"}, "mixup.prob"},
      {{"mixup.switch_prob=-0.1"}, "mixup.switch_prob"},
      {{"mixup.cutmix_minmax=0.5"}, "mixup.cutmix_minmax"},
      {{"mixup.cutmix_minmax=0.6,0.4"}, "mixup.cutmix_minmax"},
      {{"mixup.cutmix_minmax=0,0.5"}, "mixup.cutmix_minmax"},
      {{"mixup.cutmix_minmax=0.5,1.5"}, "mixup.cutmix_minmax"},
      // Sides from [int(8 * 0.3), int(8 * 0.35)) = [2, 2): none to draw.
      {{"model.image_size=8", "model.patch_size=4", "mixup.cutmix_minmax=0.3,0.35"},
       "mixup.cutmix_minmax"},
      {{"mixup.mixup_alpha=0.8", "train.global_batch_size=15"}, "train.global_batch_size"},
      {{"mixup.cutmix_minmax=0.2,0.8", "train.global_batch_size=7"}, "train.global_batch_size"},
      {{"mixup.mode=ROW"}, "mixup.mode"},
  });
  // Off (the default) with an odd batch, and on with timm's settings.
  EXPECT_EQ(load({"train.global_batch_size=15"}).mixup().mixup_alpha(), 0.f);
  const config::Config good = load({"mixup.mixup_alpha=0.8", "mixup.cutmix_alpha=1",
                                    "mixup.cutmix_minmax=0.2,0.8", "mixup.mode=PAIR"});
  EXPECT_EQ(good.mixup().mode(), config::PAIR);
  EXPECT_EQ(good.mixup().cutmix_minmax_size(), 2);
}

// cutmix_minmax bounds the box sides as timm's int(S * min) .. int(S * max) - 1 with Python's
// doubles: at S 10, [0.3, 0.7] gives sides 3 to 6 (an fp32 0.7 would stop at 5).
TEST_F(ConfigTest, CutmixMinmaxIsReadAsPythonReadsIt) {
  const config::Config config = load({"model.image_size=10", "model.patch_size=5",
                                      "mixup.cutmix_minmax=0.3,0.7", "mixup.mode=ELEM"});
  std::set<int> sides;
  for (const MixDraw& draw : mixup_draws(mixup_settings_from(config), 3, 0, 512, 10)) {
    sides.insert(draw.y1 - draw.y0);
    sides.insert(draw.x1 - draw.x0);
  }
  EXPECT_EQ(sides, (std::set<int>{3, 4, 5, 6}));
}

TEST_F(ConfigTest, CudaBackendOnlyInCudaBuilds) {
#ifdef DGQA_WITH_CUDA
  EXPECT_EQ(load({"train.backend=cuda"}).train().backend(), "cuda");
#else
  EXPECT_NE(load_error({"train.backend=cuda"}).find("train.backend"), std::string::npos);
#endif
}

TEST_F(ConfigTest, PrecisionDefaultsByTrainBackend) {
  const config::Config cpu = load();
  EXPECT_EQ(backend_options_from(cpu, 3).precision, Precision::kFP32);
  EXPECT_EQ(backend_options_from(cpu, 3).local_rank, 3);
  EXPECT_EQ(backend_options_from(cpu, 3).name, "cpu");
  config::Config gpu = cpu;  // as a CUDA build would accept it
  gpu.mutable_train()->set_backend("cuda");
  EXPECT_EQ(backend_options_from(gpu, 0).precision, Precision::kBF16);
  gpu.mutable_model()->set_precision(config::FP32);
  EXPECT_EQ(backend_options_from(gpu, 0).precision, Precision::kFP32);
}

TEST_F(ConfigTest, CifarNeedsOnlyRoot) {
  const config::Config config = load({"data.format=CIFAR10", "data.root=/data/cifar",
                                      "data.mean=", "data.std=", "model.in_channels=3"});
  EXPECT_EQ(config.data().root(), "/data/cifar");
}

TEST_F(ConfigTest, ValidateConfigDirectlyUsesItsSource) {
  config::Config config = load();
  config.mutable_model()->set_depth(-1);
  try {
    validate_config(config, "checkpoint state");
    FAIL() << "no InputError";
  } catch (const InputError& error) {
    EXPECT_EQ(std::string(error.what()).rfind("checkpoint state: model.depth: ", 0), 0u)
        << error.what();
  }
}

// ---- Presets ----------------------------------------------------------------------------------

// A config with only a preset for the model and the required data files.
std::string preset_config(const std::string& preset, const std::string& model_extra = "") {
  return "model { preset: \"" + preset + "\" " + model_extra +
         " }\n"
         "data { train_images: \"a\" train_labels: \"b\" test_images: \"c\" test_labels: \"d\" }\n";
}

TEST_F(ConfigTest, PresetShapes) {
  const struct {
    const char* preset;
    int patch_size, embed_dim, depth, num_heads, num_kv_heads;
  } cases[] = {
      {"vit_tiny", 16, 192, 12, 3, 3},   {"vit_small", 16, 384, 12, 6, 3},
      {"vit_base", 16, 768, 12, 12, 6},  {"vit_large", 16, 1024, 24, 16, 8},
      {"vit_huge", 14, 1280, 32, 16, 8},
  };
  for (const auto& c : cases) {
    const ModelConfig model = model_config_from(load({}, preset_config(c.preset)));
    EXPECT_EQ(model.image_size, 224) << c.preset;
    EXPECT_EQ(model.patch_size, c.patch_size) << c.preset;
    EXPECT_EQ(model.in_channels, 3) << c.preset;
    EXPECT_EQ(model.num_classes, 1000) << c.preset;
    EXPECT_EQ(model.embed_dim, c.embed_dim) << c.preset;
    EXPECT_EQ(model.depth, c.depth) << c.preset;
    EXPECT_EQ(model.num_heads, c.num_heads) << c.preset;
    EXPECT_EQ(model.num_kv_heads, c.num_kv_heads) << c.preset;
  }
}

TEST_F(ConfigTest, ExplicitFieldsOverrideThePreset) {
  const ModelConfig model = model_config_from(
      load({"model.num_classes=100"},
           preset_config("vit_small", "image_size: 32 patch_size: 4 num_kv_heads: 2")));
  EXPECT_EQ(model.image_size, 32);
  EXPECT_EQ(model.patch_size, 4);
  EXPECT_EQ(model.num_classes, 100);
  EXPECT_EQ(model.num_kv_heads, 2);
  EXPECT_EQ(model.embed_dim, 384);  // still the preset's
}

TEST_F(ConfigTest, UnknownPresetListsTheValidOnes) {
  const std::string message = load_error({}, preset_config("vit_gigantic"));
  EXPECT_NE(message.find("model.preset"), std::string::npos) << message;
  EXPECT_NE(message.find("vit_tiny"), std::string::npos) << message;
  EXPECT_NE(message.find("vit_huge"), std::string::npos) << message;
}

TEST_F(ConfigTest, WithoutPresetEveryShapeFieldIsRequired) {
  for (const char* field : {"image_size", "patch_size", "in_channels", "num_classes", "embed_dim",
                            "depth", "num_heads"}) {
    // Drop the field's line from the valid config.
    std::string text = kValidConfig;
    const auto start = text.find(std::string("  ") + field + ":");
    ASSERT_NE(start, std::string::npos) << field;
    text.erase(start, text.find('\n', start) + 1 - start);
    const std::string message = load_error({}, text);
    EXPECT_NE(message.find(std::string("model.") + field), std::string::npos) << message;
  }
}

// ---- Limits: thread count, integer extents, memory ---------------------------------------------

TEST_F(ConfigTest, ThreadCountIsCappedAt1024) {
  EXPECT_EQ(load({"train.threads=1024"}).train().threads(), 1024);
  for (const char* value : {"1025", "100000", "-1"}) {
    const std::string message = load_error({std::string("train.threads=") + value});
    EXPECT_NE(
        message.find(
            "train.threads: must be in [0, 1024] (0 = the cores, shared among the ranks), got " +
            std::string(value)),
        std::string::npos)
        << message;
  }
}

// Counts the model keeps in int are checked in 64 bits before they are narrowed.
TEST_F(ConfigTest, ShapesWhoseCountsOverflowIntNameTheirField) {
  std::string message = load_error({"model.image_size=46341", "model.patch_size=1"});
  EXPECT_NE(message.find("model.image_size: 46341 with model.patch_size = 1 gives 2147488281 "
                         "patches, more than 2147483646"),
            std::string::npos)
      << message;
  message = load_error({"model.embed_dim=536870912", "model.num_heads=1"});
  EXPECT_NE(message.find("model.embed_dim: 536870912 gives an MLP width 4 * embed_dim = "
                         "2147483648, more than 2147483647"),
            std::string::npos)
      << message;
  message = load_error({"model.image_size=26755", "model.patch_size=26755", "model.in_channels=3"});
  EXPECT_NE(message.find("model.patch_size: 26755 with model.in_channels = 3 gives patches of "
                         "more than 2147483647 values"),
            std::string::npos)
      << message;
  // The largest counts that fit are valid shapes (whether they fit in memory is checked later).
  EXPECT_NO_THROW(load({"model.embed_dim=536870911", "model.num_heads=1"}));
  EXPECT_NO_THROW(load({"model.image_size=46340", "model.patch_size=1"}));
}

// The model of kValidConfig: 28x28 images, patch 7, D 48, depth 2, 6 heads, 3 K/V heads.
TEST_F(ConfigTest, MemoryEstimateAddsItsParts) {
  const config::Config config = load();
  const ModelConfig model = model_config_from(config);
  const MemoryNeed train =
      estimate_memory(config, model, {64, "train.global_batch_size"}, true, 2, 1);
  const MemoryNeed eval =
      estimate_memory(config, model, {64, "train.global_batch_size"}, false, 1, 1);
  const double params = parameter_count(model).total();
  EXPECT_DOUBLE_EQ(train.weight_bytes, 10 * 4 * params);
  EXPECT_DOUBLE_EQ(eval.weight_bytes, 5 * 4 * params);
  EXPECT_DOUBLE_EQ(train.activation_bytes, 4 * activation_floats(model, 64));
  // Two loaders of (prefetch 2 + 3) batches of 64 images of 28 x 28 floats.
  EXPECT_DOUBLE_EQ(train.input_bytes, 2 * 5 * 64 * 28 * 28 * 4.0);
  EXPECT_DOUBLE_EQ(eval.input_bytes, train.input_bytes / 2);
  EXPECT_DOUBLE_EQ(train.total_bytes(), train.weight_bytes + train.bookkeeping_bytes +
                                            train.activation_bytes + train.input_bytes);
}

// With micro-batches, the activations are those of a micro-batch (and with recompute BLOCK, of
// one block besides the blocks' inputs) while the loaders still hold whole per-rank batches.
TEST_F(ConfigTest, MemoryEstimateOfMicroBatchesAndRecompute) {
  const config::Config config = load({"train.micro_batch_size=16"});
  const ModelConfig model = model_config_from(config);
  const RankBatch micro{16, "train.micro_batch_size", 64};
  const MemoryNeed train = estimate_memory(config, model, micro, true, 1, 1);
  EXPECT_DOUBLE_EQ(train.activation_bytes, 4 * activation_floats(model, 16));
  EXPECT_DOUBLE_EQ(train.input_bytes, 5 * 64 * 28 * 28 * 4.0);
  const config::Config recompute = load({"train.recompute=BLOCK"});
  EXPECT_DOUBLE_EQ(estimate_memory(recompute, model, micro, true, 1, 1).activation_bytes,
                   4 * activation_floats(model, 16, /*recompute=*/true));
  EXPECT_LT(activation_floats(model, 16, true), activation_floats(model, 16));
}

TEST_F(ConfigTest, MemoryCheckNamesTheFieldsBehindTheLargestPart) {
  const auto message_for = [&](const std::vector<std::string>& overrides, int batch) {
    const config::Config config = load(overrides);
    const MemoryNeed need = estimate_memory(config, model_config_from(config),
                                            {batch, "train.eval_batch_size"}, true, 1, 1);
    EXPECT_NO_THROW(check_memory(need, 0, 1));  // unknown machine memory: no check
    EXPECT_NO_THROW(check_memory(need, need.total_bytes(), 1));
    return tests::input_error_of([&] { check_memory(need, need.total_bytes() / 2, 1); });
  };
  std::string message = message_for({"model.depth=100", "model.embed_dim=4800"}, 1);
  EXPECT_EQ(message.find("model.embed_dim, model.depth: the run needs about "), 0u) << message;
  EXPECT_NE(message.find(" GiB (MemTotal): "), std::string::npos) << message;
  message = message_for({"model.num_classes=100000000"}, 1);
  EXPECT_EQ(message.find("model.num_classes, model.embed_dim: "), 0u) << message;
  message = message_for({"model.patch_size=1"}, 256);
  EXPECT_EQ(message.find("train.eval_batch_size, model.image_size / model.patch_size, "), 0u)
      << message;
  EXPECT_NE(message.find("of activations for 256 images a pass (train.eval_batch_size)"),
            std::string::npos)
      << message;
}

// Under ZeRO-1 each rank holds one shard of the two moments and of their checkpoint copies.
TEST_F(ConfigTest, MemoryEstimateShardsTheMomentsUnderZero) {
  const config::Config zero = load({"dist.zero_stage=1"});
  const ModelConfig model = model_config_from(zero);
  const double params = parameter_count(model).total();
  const RankBatch batch{16, "train.global_batch_size"};
  EXPECT_DOUBLE_EQ(estimate_memory(zero, model, batch, true, 1, 1).weight_bytes, 10 * 4 * params);
  EXPECT_DOUBLE_EQ(estimate_memory(zero, model, batch, true, 1, 4).weight_bytes, 7 * 4 * params);
  EXPECT_DOUBLE_EQ(estimate_memory(load(), model, batch, true, 1, 4).weight_bytes, 10 * 4 * params);
  EXPECT_DOUBLE_EQ(estimate_memory(zero, model, batch, false, 1, 4).weight_bytes, 5 * 4 * params);
}

// The ranks of one machine share its memory: each rank's need counts once per rank there.
TEST_F(ConfigTest, MemoryCheckCountsEveryRankOfTheMachine) {
  const config::Config config = load({"model.depth=100", "model.embed_dim=480"});
  const MemoryNeed need = estimate_memory(config, model_config_from(config),
                                          {1, "train.global_batch_size"}, true, 1, 4);
  EXPECT_NO_THROW(check_memory(need, 3 * need.total_bytes(), 1));
  EXPECT_NO_THROW(check_memory(need, 3 * need.total_bytes(), 3));
  const std::string message =
      tests::input_error_of([&] { check_memory(need, 3 * need.total_bytes(), 4); });
  EXPECT_EQ(message.find("model.embed_dim, model.depth: the 4 ranks on this machine need about "),
            0u)
      << message;
  EXPECT_NE(message.find(" each) of memory, more than this machine's "), std::string::npos)
      << message;
  EXPECT_NE(message.find(" (MemTotal); per rank: "), std::string::npos) << message;
}

TEST(MachineMemoryTest, ReadsMemTotal) {
  EXPECT_GT(machine_memory_bytes(), 64.0 * 1024 * 1024);  // any machine that runs the tests
}

}  // namespace
}  // namespace dgqa
