// Cross-checks dgqa's training against tools/torch_training.py, the float64 PyTorch reference
// built from torch's own cross_entropy, AdamW and LR schedulers, timm's DropPath with masks
// drawn in numpy from the formula of docs/design.md §3.6, timm's ModelEmaV3 average, and
// timm's Mixup/CutMix re-implemented there on the draws dgqa makes (§3.6, written here by
// mixup_draws), whose boxes and label weights it recomputes with timm's formulas; every
// scheme's allocation (§3.2-3.4) is computed by the reference itself. From the same weights,
// two (or three) steps on the same full batch must give the same weights (and weight average)
// to 1e-5 and the same DGQA allocations. Each case also checks that what it tests moves the
// weights by more than that (against a plain run, or against GQA's equal groups for a scheme),
// so that the agreement means something. Skips unless /usr/bin/python3 has torch and numpy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "data/mixup.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"
#include "trainer/batch_mixer.h"
#include "trainer/config.h"

namespace dgqa {
namespace {

using tests::DgqaRun;
using tests::shell_quote;

constexpr const char* kPython = "/usr/bin/python3";
constexpr int kExamples = 8;  // the training set is one batch: every step sees all of it
constexpr double kTolerance = 1e-5;
// What the fixture config sets (tests/fixtures.cc), for the reference; a case's own options
// come after these and override them.
constexpr const char* kFixtureOptions =
    "--lr 3e-3 --weight-decay 0.01 --schedule CONSTANT --seed 7";

struct Case {
  std::string name;
  std::string scheme;
  int steps;
  std::vector<std::string> sets;  // dgqa's --set path=value
  std::string torch_args;         // the same options for torch_training.py
  // What the effect is measured against: a dgqa run without the sets, or (for a scheme) the
  // reference trained with GQA's equal groups from the same weights.
  bool against_gqa = false;
  bool weight_ema = false;  // also compare model_ema.safetensors with the reference's average
  bool mixup = false;       // sets turn mixup on: pass the draws to the reference
};

void PrintTo(const Case& c, std::ostream* out) {
  *out << c.name;
}

// The largest absolute difference over the F32 tensors of the second weights file, leaving
// out the DGQA caches (sums of key norms, not weights) and the K biases: their gradient is zero
// in exact arithmetic and rounding noise in fp32, which AdamW scales up (docs/maintaining.md,
// "The K bias").
double largest_difference(const std::string& a, const std::string& b, std::string* where) {
  const SafetensorsFile first = SafetensorsFile::read(a), second = SafetensorsFile::read(b);
  double largest = 0;
  for (const std::string& name : second.names()) {
    if (second.get(name).dtype != "F32") continue;
    if (name.find(".attn.k.bias") != std::string::npos) continue;
    if (name.find(".attn.cache") != std::string::npos) continue;
    const std::vector<float> x = first.as_f32(name), y = second.as_f32(name);
    EXPECT_EQ(x.size(), y.size()) << name;
    for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
      const double difference = std::fabs(double{x[i]} - double{y[i]});
      if (difference > largest) *where = name + "[" + std::to_string(i) + "]";
      largest = std::max(largest, difference);
    }
  }
  return largest;
}

// Every I64 tensor (a DGQA allocation) of the second weights file equals the first's.
void expect_equal_allocations(const std::string& a, const std::string& b) {
  const SafetensorsFile first = SafetensorsFile::read(a), second = SafetensorsFile::read(b);
  for (const std::string& name : second.names()) {
    if (second.get(name).dtype != "I64") continue;
    EXPECT_EQ(first.as_i64(name), second.as_i64(name)) << name << " of " << a << " and " << b;
  }
}

// Multiplies the key projection of K/V head 0 (rows [0, d) of every blocks.i.attn.k weight and
// bias) by 3, so that its key norms stand out and DGQA's allocation leaves the equal split.
void skew_key_head_zero(const std::string& path, int head_dim) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  SafetensorsWriter writer;
  for (const std::string& name : file.names()) {
    const TensorData& tensor = file.get(name);
    if (tensor.dtype == "I64") {
      writer.add_i64(name, tensor.shape, file.as_i64(name).data());
      continue;
    }
    std::vector<float> values = file.as_f32(name);
    if (name.find(".attn.k.") != std::string::npos) {
      const size_t row = tensor.shape.size() == 2 ? tensor.shape[1] : 1;
      for (size_t i = 0; i < head_dim * row; ++i) values[i] *= 3;
    }
    writer.add_f32(name, tensor.shape, values.data());
  }
  writer.write(path);
}

class TorchTrainingTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    std::string output;
    if (tests::run_command(std::string(kPython) + " -c 'import torch, numpy'", &output) != 0) {
      GTEST_SKIP() << kPython << " cannot import torch and numpy";
    }
    dir_ = tests::make_temp_dir("dgqa_torch_training_");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Trains `steps` steps from `init` (none: dgqa's initialisation) with the overrides; returns
  // the path of the final weights.
  std::string train(const std::string& config, const std::string& name, int steps,
                    const std::string& init, const std::vector<std::string>& sets) {
    std::string args = "train --config " + shell_quote(config) + " --out " +
                       shell_quote(dir_ + "/" + name) +
                       " --set train.max_steps=" + std::to_string(steps);
    if (!init.empty()) args += " --init-from " + shell_quote(init);
    for (const std::string& set : sets) args += " --set " + set;
    const DgqaRun run = tests::run_dgqa(args, dir_);
    EXPECT_EQ(run.exit_code, 0) << "dgqa " << args << "\n" << run.err;
    return dir_ + "/" + name + "/model.safetensors";
  }

  // The Mixup/CutMix draws of dgqa's steps 0 .. c.steps - 1 under the case's config, as
  // float64 (steps, draws, 10), so that the reference recomputes each box from the beta dgqa
  // used: mixed, cutmix, beta, lam, cy, cx, y0, y1, x0, x1 (data/mixup.h); returns the
  // reference's arguments that pass them.
  std::string write_mixup_draws(const std::string& config_path, const Case& c) {
    const config::Config config = load_config(config_path, c.sets);
    const MixupSettings settings = mixup_settings_from(config);
    std::vector<double> rows;
    int64_t units = 0;
    for (int step = 0; step < c.steps; ++step) {
      const std::vector<MixDraw> draws = mixup_draws(settings, config.seed(), step, kExamples,
                                                     model_config_from(config).image_size);
      units = static_cast<int64_t>(draws.size());
      for (const MixDraw& d : draws) {
        rows.insert(rows.end(),
                    {d.mixed ? 1.0 : 0.0, d.cutmix ? 1.0 : 0.0, d.beta, d.lam, double(d.cy),
                     double(d.cx), double(d.y0), double(d.y1), double(d.x0), double(d.x1)});
      }
    }
    const std::string path = dir_ + "/mixup_draws.npy";
    write_npy_f64(path, rows.data(), {c.steps, units, 10});
    const char* modes[] = {"batch", "pair", "elem"};
    return " --mixup-draws " + shell_quote(path) + " --mixup-mode " +
           modes[static_cast<int>(settings.mode)] +
           (settings.cutmix_minmax ? " --cutmix-minmax" : "");
  }

  std::string dir_;
};

TEST_P(TorchTrainingTest, WeightsMatchTheTorchReference) {
  const Case& c = GetParam();
  tests::FixtureDatasetOptions options;
  options.train_count = kExamples;
  const tests::FixtureDataset data = tests::write_fixture_dataset(dir_, options);
  tests::FixtureConfig settings;
  settings.attention = c.scheme;
  settings.num_kv_heads = c.scheme == "MHA" ? -1 : 2;
  settings.batch_size = kExamples;
  const std::string config = tests::write_fixture_config(dir_ + "/config.pbtxt", data, settings);

  // Start from weights two plain steps in (biases and norms away from their initial values).
  const std::string start = train(config, "start", 2, "", {});
  ASSERT_FALSE(HasFailure());
  skew_key_head_zero(start, settings.embed_dim / settings.num_heads);
  const std::string ours = train(config, "ours", c.steps, start, c.sets);
  ASSERT_FALSE(HasFailure());

  // The training split exactly as dgqa's loader gives it (mean 0, std 1), and its labels.
  const std::vector<float> images = tests::normalised_images(data.train);
  write_npy_f32(dir_ + "/images.npy", images.data(), {kExamples, 1, 8, 8});
  const std::vector<int64_t> labels(data.train.labels.begin(), data.train.labels.end());
  write_npy_i64(dir_ + "/labels.npy", labels.data(), {kExamples});
  const std::string mixup_args = c.mixup ? write_mixup_draws(config, c) : "";
  const auto reference = [&](const std::string& scheme, const std::string& out) {
    const std::string command =
        std::string(kPython) + " " +
        shell_quote(std::string(DGQA_SOURCE_DIR) + "/tools/torch_training.py") + " --weights " +
        shell_quote(start) + " --images " + shell_quote(dir_ + "/images.npy") + " --labels " +
        shell_quote(dir_ + "/labels.npy") + " --scheme " + scheme +
        " --num-heads 4 --num-kv-heads " + (scheme == "MHA" ? "4" : "2") +
        " --patch-size 4 --steps " + std::to_string(c.steps) + " " + kFixtureOptions + " " +
        c.torch_args + mixup_args + " --weights-out " + shell_quote(out + ".safetensors") +
        (c.weight_ema ? " --ema-out " + shell_quote(out + "_ema.safetensors") : "") + " 2>&1";
    std::string output;
    EXPECT_EQ(tests::run_command(command, &output), 0) << command << "\n" << output;
    return out + ".safetensors";
  };
  const std::string theirs = reference(c.scheme, dir_ + "/torch");
  ASSERT_FALSE(HasFailure());

  std::string where;
  const double difference = largest_difference(ours, theirs, &where);
  EXPECT_LE(difference, kTolerance) << "largest at " << where;
  expect_equal_allocations(ours, theirs);
  if (c.weight_ema) {
    const std::string ema = dir_ + "/ours/model_ema.safetensors";
    EXPECT_LE(largest_difference(ema, dir_ + "/torch_ema.safetensors", &where), kTolerance)
        << "weight average, largest at " << where;
    EXPECT_GT(largest_difference(ema, ours, &where), 100 * kTolerance)
        << "the average is hardly different from the weights";
  }
  if (!c.weight_ema) {  // the average's own effect is checked above
    const std::string baseline = c.against_gqa ? reference("GQA", dir_ + "/torch_gqa")
                                               : train(config, "plain", c.steps, start, {});
    EXPECT_GT(largest_difference(ours, baseline, &where), 100 * kTolerance)
        << "the case hardly changes the weights";
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", difference);
  RecordProperty("largest_difference", text);
}

std::vector<Case> all_cases() {
  return {
      {"label_smoothing_GQA", "GQA", 2, {"optimizer.label_smoothing=0.2"}, "--label-smoothing 0.2"},
      {"layer_decay_MHA",
       "MHA",
       2,
       {"optimizer.layer_decay=0.5", "optimizer.no_decay_1d=true", "optimizer.weight_decay=0.5"},
       "--layer-decay 0.5 --no-decay-1d --weight-decay 0.5"},
      {"step_schedule_GQA",
       "GQA",
       3,
       {"schedule.warmup_steps=1", "schedule.warmup_start_factor=0.25", "schedule.kind=STEP",
        "schedule.gamma=0.5"},
       "--warmup-steps 1 --warmup-start-factor 0.25 --schedule STEP --gamma 0.5"},
      {"cosine_restarts_MHA",
       "MHA",
       3,
       {"schedule.kind=COSINE_RESTARTS", "schedule.cycle_steps=2", "schedule.cycle_decay=0.5",
        "schedule.min_lr=1e-4"},
       "--schedule COSINE_RESTARTS --cycle 2 1 0.5 0 --min-lr 1e-4"},
      {"drop_path_GQA", "GQA", 2, {"model.drop_path_rate=0.5"}, "--drop-path-rate 0.5"},
      {"drop_path_MHA",
       "MHA",
       3,
       {"model.drop_path_rate=0.75", "optimizer.label_smoothing=0.1"},
       "--drop-path-rate 0.75 --label-smoothing 0.1"},
      {"all_GQA",
       "GQA",
       3,
       {"optimizer.label_smoothing=0.1", "optimizer.layer_decay=0.7", "optimizer.no_decay_1d=true",
        "schedule.kind=LINEAR", "schedule.min_lr=1e-4"},
       "--label-smoothing 0.1 --layer-decay 0.7 --no-decay-1d --schedule LINEAR --min-lr 1e-4"},
      {"weight_ema_GQA",
       "GQA",
       3,
       {"train.ema_decay=0.9", "train.ema_warmup=true"},
       "--ema-decay 0.9 --ema-warmup",
       /*against_gqa=*/false,
       /*weight_ema=*/true},
      {"weight_ema_MHA", "MHA", 3, {"train.ema_decay=0.5"}, "--ema-decay 0.5", false, true},
      // The schemes whose allocation or noise depends on the pass (a DGQA window of 2 steps
      // updates at steps 0 and 2).
      {"KDGQA", "KDGQA", 2, {}, "", /*against_gqa=*/true},
      {"DGQA_DIFF", "DGQA_DIFF", 3, {"model.dgqa_window=2"}, "--dgqa-window 2", true},
      {"DGQA_EMA",
       "DGQA_EMA",
       3,
       {"model.dgqa_window=2", "model.dgqa_beta=0.5"},
       "--dgqa-window 2 --dgqa-beta 0.5",
       true},
      {"PGQA", "PGQA", 2, {}, "", true},
      {"PGQA_drop_path", "PGQA", 2, {"model.drop_path_rate=0.5"}, "--drop-path-rate 0.5"},
      // Mixup/CutMix in each mode; the steps' draws differ (mixup or CutMix, mixed or not). In
      // the batch-mode mixup of the GQA cases (lam 0.47, then 0.015) one weight of fc1 gets
      // gradients at the scale of AdamW's eps, where g / (|g| + eps) turns fp32 rounding into
      // differences of 1.2e-5 (every other weight agrees to 2e-6): eps 1e-6 keeps its update
      // well-conditioned.
      {"mixup_batch_GQA",
       "GQA",
       2,
       {"mixup.mixup_alpha=0.8", "optimizer.label_smoothing=0.1", "optimizer.eps=1e-6"},
       "--label-smoothing 0.1 --eps 1e-6",
       false,
       false,
       /*mixup=*/true},
      {"cutmix_batch_MHA", "MHA", 2, {"mixup.cutmix_alpha=1"}, "", false, false, true},
      {"timm_defaults_batch_GQA",
       "GQA",
       3,
       {"mixup.mixup_alpha=0.8", "mixup.cutmix_alpha=1", "optimizer.label_smoothing=0.1",
        "optimizer.eps=1e-6"},
       "--label-smoothing 0.1 --eps 1e-6",
       false,
       false,
       /*mixup=*/true},
      {"pair_GQA",
       "GQA",
       2,
       {"mixup.mixup_alpha=0.8", "mixup.cutmix_alpha=1", "mixup.mode=PAIR"},
       "",
       false,
       false,
       /*mixup=*/true},
      {"elem_prob_MHA",
       "MHA",
       2,
       {"mixup.mixup_alpha=0.8", "mixup.cutmix_alpha=1", "mixup.prob=0.6", "mixup.mode=ELEM",
        "optimizer.label_smoothing=0.1"},
       "--label-smoothing 0.1",
       false,
       false,
       /*mixup=*/true},
      {"minmax_elem_GQA",
       "GQA",
       2,
       {"mixup.cutmix_minmax=0.25,0.75", "mixup.mode=ELEM", "model.drop_path_rate=0.5"},
       "--drop-path-rate 0.5",
       false,
       false,
       /*mixup=*/true},
  };
}

INSTANTIATE_TEST_SUITE_P(Options, TorchTrainingTest, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           return param.param.name;
                         });

}  // namespace
}  // namespace dgqa
