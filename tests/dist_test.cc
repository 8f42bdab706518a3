// Data-parallel training under mpirun (docs/design.md §5): N ranks x B/N samples compute what
// 1 rank x B computes, for every scheme; and a rank that dies or hangs ends the whole job.
#include <gtest/gtest.h>

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <thread>

#include "io/npy.h"
#include "io/safetensors.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"
#include "trainer/config.h"
#include "trainer/memory_check.h"

namespace dgqa {
namespace {

using nlohmann::json;
using tests::shell_quote;

// A rank-invariance run: its scheme and --set overrides.
struct RankCase {
  const char* name;
  const char* scheme;
  const char* sets;
  // Start every run from weights whose position embedding is for a 4x4 patch grid (16 px), which
  // --init-from resamples to the model's 2x2.
  bool other_grid = false;
};

// Every scheme (each with a weight EMA, see below), DGQA_EMA with every fine-tuning option at
// once (label smoothing, layer-wise LR decay, timm's no-decay rule, a warm-up from a start
// factor, cosine restarts, drop path, Mixup/CutMix, weights for another image size), and PGQA
// with drop path (its masks follow each image's place in the global batch, not the rank's
// share).
const RankCase kRankCases[] = {
    {"MHA", "MHA", ""},
    {"GQA", "GQA", ""},
    {"KDGQA", "KDGQA", ""},
    {"DGQA_DIFF", "DGQA_DIFF", ""},
    {"DGQA_EMA", "DGQA_EMA", ""},
    {"PGQA", "PGQA", ""},
    {"DGQA_EMA_fine_tuning", "DGQA_EMA",
     " --set optimizer.label_smoothing=0.1 --set optimizer.layer_decay=0.75"
     " --set optimizer.no_decay_1d=true --set schedule.warmup_steps=3"
     " --set schedule.warmup_start_factor=0.2 --set schedule.kind=COSINE_RESTARTS"
     " --set schedule.cycle_steps=6 --set schedule.cycle_decay=0.5"
     " --set model.drop_path_rate=0.3 --set mixup.mixup_alpha=0.8 --set mixup.cutmix_alpha=1",
     /*other_grid=*/true},
    {"PGQA_drop_path", "PGQA", " --set model.drop_path_rate=0.5"},
};

// Every scheme with Mixup/CutMix (docs/design.md §3.6), each in another of its settings (GQA's
// with micro-batches cut from the mixed share): the partner of global image g is B - 1 - g, on
// another rank, so the ranks swap their shares.
const RankCase kMixupCases[] = {
    {"MHA_timm_defaults", "MHA",
     " --set mixup.mixup_alpha=0.8 --set mixup.cutmix_alpha=1 --set optimizer.label_smoothing=0.1"},
    {"GQA_pair_minmax", "GQA",
     " --set mixup.mixup_alpha=0.5 --set mixup.cutmix_minmax=0.25,0.75 --set mixup.mode=PAIR"
     " --set train.micro_batch_size=4"},
    {"KDGQA_elem_mixup", "KDGQA", " --set mixup.mixup_alpha=1 --set mixup.mode=ELEM"},
    {"DGQA_DIFF_batch_cutmix", "DGQA_DIFF", " --set mixup.cutmix_alpha=1"},
    {"DGQA_EMA_elem_prob", "DGQA_EMA",
     " --set mixup.mixup_alpha=0.8 --set mixup.cutmix_alpha=1 --set mixup.prob=0.5"
     " --set mixup.mode=ELEM"},
    {"PGQA_pair_drop_path", "PGQA",
     " --set mixup.mixup_alpha=0.8 --set mixup.cutmix_alpha=1 --set mixup.mode=PAIR"
     " --set model.drop_path_rate=0.5"},
};

using tests::mpirun_prefix;
using tests::read_run_records;
using tests::RunRecords;

class DistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tests::make_temp_dir("dgqa_dist_");
    tests::FixtureDatasetOptions options;
    options.train_count = 700;  // 20 steps of 32 without repeating an example
    options.test_count = 45;    // eval batches of 16 split unevenly over 2 and 4 ranks
    data_ = tests::write_fixture_dataset(dir_, options);
  }
  void TearDown() override { tests::run_command("rm -rf " + shell_quote(dir_)); }

  std::string write_config(const std::string& scheme, int max_steps) {
    return tests::write_fixture_config(dir_ + "/" + scheme + ".pbtxt", data_,
                                       tests::rank_invariance_config(scheme, max_steps));
  }

  // The weights of one step of `config`, with a position embedding for a 4x4 patch grid in
  // place of the model's 2x2 (the class token's row, then 16 rows of a smooth pattern).
  std::string weights_for_another_grid(const std::string& config) {
    const std::string out = dir_ + "/grid_source";
    std::string output;
    EXPECT_EQ(
        tests::run_command(std::string(DGQA_BINARY) + " train --config " + shell_quote(config) +
                               " --out " + shell_quote(out) + " --set train.max_steps=1",
                           &output),
        0)
        << output;
    const SafetensorsFile file = SafetensorsFile::read(out + "/model.safetensors");
    SafetensorsWriter writer;
    for (const std::string& name : file.names()) {
      const TensorData& tensor = file.get(name);
      if (tensor.dtype == "I64") {
        writer.add_i64(name, tensor.shape, file.as_i64(name).data());
      } else if (name != "pos_embed") {
        writer.add_f32(name, tensor.shape, file.as_f32(name).data());
      }
    }
    const std::vector<float> small = file.as_f32("pos_embed");
    const int64_t width = file.get("pos_embed").shape[2];
    std::vector<float> large(small.begin(), small.begin() + width);  // the class token's row
    for (int64_t i = width; i < 17 * width; ++i) large.push_back(0.02f * std::sin(0.1f * i));
    writer.add_f32("pos_embed", {1, 17, width}, large.data());
    const std::string path = dir_ + "/other_grid.safetensors";
    writer.write(path);
    return path;
  }

  std::string dir_;
  tests::FixtureDataset data_;
};

void PrintTo(const RankCase& rank_case, std::ostream* out) {
  *out << rank_case.name;
}

class RankInvarianceTest : public DistTest, public ::testing::WithParamInterface<RankCase> {};

TEST_P(RankInvarianceTest, RanksComputeWhatOneRankComputes) {
  const std::string scheme = GetParam().scheme;
  const std::string config = write_config(scheme, 20);
  const std::string init_from =
      GetParam().other_grid ? " --init-from " + shell_quote(weights_for_another_grid(config)) : "";
  std::map<int, RunRecords> runs;
  for (int ranks : {1, 2, 4}) {
    const std::string out = dir_ + "/out" + std::to_string(ranks);
    const std::string launcher = ranks == 1 ? "" : mpirun_prefix(ranks);
    std::string output;
    // With a weight EMA, which every rank keeps alike and evaluates with the weights.
    const int code =
        tests::run_command(launcher + DGQA_BINARY + " train --config " + shell_quote(config) +
                               " --out " + shell_quote(out) + GetParam().sets + init_from +
                               " --set train.ema_decay=0.9 --set train.ema_warmup=true",
                           &output);
    ASSERT_EQ(code, 0) << ranks << " ranks:\n" << output;
    if (GetParam().other_grid) {
      EXPECT_NE(output.find("Resampled pos_embed"), std::string::npos) << output;
    }
    runs[ranks] = read_run_records(out + "/metrics.jsonl");
  }
  const RunRecords& one = runs[1];
  ASSERT_EQ(one.losses.size(), 20u);
  EXPECT_GE(one.allocations.size(), scheme == std::string("KDGQA") ? 20u : 1u);
  for (int ranks : {2, 4}) {
    const RunRecords& many = runs[ranks];
    ASSERT_EQ(many.losses.size(), one.losses.size()) << ranks << " ranks";
    for (const auto& [step, loss] : one.losses) {
      EXPECT_NEAR(many.losses.at(step), loss, 1e-5 * std::fabs(loss))
          << ranks << " ranks, step " << step;
    }
    EXPECT_EQ(many.allocations, one.allocations) << ranks << " ranks";
    ASSERT_EQ(many.evals.size(), one.evals.size());
    for (size_t i = 0; i < one.evals.size(); ++i) {
      EXPECT_EQ(many.evals[i].at("examples"), 45) << ranks << " ranks";
      // KDGQA's evaluation allocates from the key norms of the trained weights, and those are not
      // the same to rounding: the K bias has no gradient in exact arithmetic (a constant added to
      // every key of a row leaves its softmax unchanged), so its computed gradient is rounding
      // noise, which Adam scales up to steps of the learning rate. Its values after 20 steps
      // differ with the rank count (by ~1e-3 on an AVX2 machine) and can move an evaluation
      // allocation across a boundary. Evaluating the same weights on several ranks is compared
      // in EvalLogitsOfSeveralRanksAreThoseOfOne.
      if (scheme == std::string("KDGQA")) continue;
      for (const char* key : {"loss", "ema_loss"}) {
        EXPECT_NEAR(many.evals[i].at(key), one.evals[i].at(key), 1e-4) << ranks << " ranks";
      }
      for (const char* key : {"top1", "ema_top1"}) {
        EXPECT_NEAR(many.evals[i].at(key), one.evals[i].at(key), 1e-6) << ranks << " ranks";
      }
    }
  }
  if (scheme != std::string("MHA") && scheme != std::string("GQA") &&
      scheme != std::string("PGQA")) {  // the allocation really moved during the run
    EXPECT_GT(one.allocations.size(), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, RankInvarianceTest, ::testing::ValuesIn(kRankCases),
                         [](const auto& test_param) { return std::string(test_param.param.name); });
INSTANTIATE_TEST_SUITE_P(Mixup, RankInvarianceTest, ::testing::ValuesIn(kMixupCases),
                         [](const auto& test_param) { return std::string(test_param.param.name); });

const char* const kSchemes[] = {"MHA", "GQA", "KDGQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"};

// Gradient accumulation (docs/design.md §3.6) and recomputation (§3.9): a run of `ranks` ranks
// whose forward passes see micro_batch images each (0: the whole per-rank batch).
struct AccumulatedRun {
  RunRecords records;
  std::string weights;  // the path of the final model.safetensors
};

class AccumulationTest : public DistTest, public ::testing::WithParamInterface<const char*> {
 protected:
  AccumulatedRun train(int ranks, int micro_batch, int max_steps, bool recompute = false) {
    const std::string scheme = GetParam();
    const std::string name = scheme + "_" + std::to_string(ranks) + "x" +
                             std::to_string(micro_batch) + "_" + std::to_string(max_steps) +
                             (recompute ? "_recompute" : "");
    tests::FixtureConfig fixture = tests::rank_invariance_config(scheme, max_steps);
    fixture.extra_train = "  micro_batch_size: " + std::to_string(micro_batch) + "\n" +
                          (recompute ? "  recompute: BLOCK\n" : "");
    const std::string config =
        tests::write_fixture_config(dir_ + "/" + name + ".pbtxt", data_, fixture);
    const std::string out = dir_ + "/" + name;
    const std::string launcher = ranks == 1 ? "" : mpirun_prefix(ranks);
    std::string output;
    const int code = tests::run_command(launcher + DGQA_BINARY + " train --config " +
                                            shell_quote(config) + " --out " + shell_quote(out),
                                        &output);
    EXPECT_EQ(code, 0) << name << ":\n" << output;
    return {read_run_records(out + "/metrics.jsonl"), out + "/model.safetensors"};
  }
};

// The losses of every step within 1e-5 relative; with `grad_norms`, the gradient norms too.
void expect_same_losses(const RunRecords& actual, const RunRecords& expected, size_t steps,
                        bool grad_norms = false) {
  ASSERT_EQ(expected.losses.size(), steps);
  ASSERT_EQ(actual.losses.size(), steps);
  for (const auto& [step, loss] : expected.losses) {
    EXPECT_NEAR(actual.losses.at(step), loss, 1e-5 * std::fabs(loss)) << "step " << step;
    const double norm = expected.grad_norms.at(step);
    if (grad_norms) {
      EXPECT_NEAR(actual.grad_norms.at(step), norm, 1e-5 * norm) << "step " << step;
    }
  }
}

// 4 micro-batches of 8 images accumulate to the gradient of one pass over all 32, up to the
// order of the sums: the training losses and gradient norms of 6 steps agree to 1e-5 relative
// (AdamW does not see the scale of the gradients, the norm does), and the final weights of
// every tensor to rounding (tests::weights_difference says how close that is).
// Only schemes whose allocation does not come from the key norms of the pass can match: MHA,
// GQA and PGQA (whose noise is that of the optimizer step, the same for every micro-batch).
class OnePassTest : public AccumulationTest {};
TEST_P(OnePassTest, AccumulatedMicroBatchesEqualOnePass) {
  const AccumulatedRun accumulated = train(1, 8, 6), whole = train(1, 0, 6);
  expect_same_losses(accumulated.records, whole.records, 6, /*grad_norms=*/true);
  tests::expect_weights_equal_to_rounding(accumulated.weights, whole.weights,
                                          tests::rank_invariance_config(GetParam(), 6).lr,
                                          "accumulated vs one pass");
}

INSTANTIATE_TEST_SUITE_P(FixedAllocations, OnePassTest, ::testing::Values("MHA", "GQA", "PGQA"),
                         [](const auto& test_param) { return std::string(test_param.param); });

// 2 ranks x micro-batches of 8 see the same 16 images per forward pass as 1 rank x 16 (each
// rank's share of a global batch is cut into consecutive micro-batches, docs/design.md §5.5),
// so every scheme takes the same allocations, and the losses agree to 1e-5 relative.
class AccumulatedRanksTest : public AccumulationTest {};
TEST_P(AccumulatedRanksTest, RanksComputeWhatOneRankComputesPerMicroBatch) {
  const AccumulatedRun many = train(2, 8, 20), one = train(1, 16, 20);
  expect_same_losses(many.records, one.records, 20);
  EXPECT_EQ(many.records.allocations, one.records.allocations);
  if (std::string(GetParam()) == "KDGQA" || std::string(GetParam()).rfind("DGQA", 0) == 0) {
    EXPECT_GT(one.records.allocations.size(), 1u);  // the allocation really moved
  }
  if (std::string(GetParam()) == "KDGQA") {  // it follows each micro-batch's norms
    EXPECT_NE(train(1, 0, 20).records.loss_text, one.records.loss_text);
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, AccumulatedRanksTest, ::testing::ValuesIn(kSchemes),
                         [](const auto& test_param) { return std::string(test_param.param); });

// Recomputing each block before its backward gives the bits of keeping the activations: the
// losses as written, the allocations and the final weights of a 6-step run, on 1 rank and on 2
// ranks with 2 micro-batches a step.
class RecomputeTrainingTest : public AccumulationTest {};
TEST_P(RecomputeTrainingTest, RecomputeTrainsTheSameBits) {
  for (const auto& [ranks, micro_batch] : {std::pair{1, 0}, std::pair{2, 8}}) {
    SCOPED_TRACE(std::to_string(ranks) + " ranks, micro-batch " + std::to_string(micro_batch));
    const AccumulatedRun kept = train(ranks, micro_batch, 6);
    const AccumulatedRun recomputed = train(ranks, micro_batch, 6, /*recompute=*/true);
    ASSERT_EQ(kept.records.losses.size(), 6u);
    EXPECT_EQ(recomputed.records.loss_text, kept.records.loss_text);
    EXPECT_EQ(recomputed.records.allocations, kept.records.allocations);
    EXPECT_TRUE(tests::read_file(recomputed.weights) == tests::read_file(kept.weights));
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, RecomputeTrainingTest, ::testing::ValuesIn(kSchemes),
                         [](const auto& test_param) { return std::string(test_param.param); });

// ZeRO-1 (docs/design.md §5.11): each rank updating its shard of the weights, with its shard of
// the moments, and gathering the others', trains the weights of plain data parallelism on the
// same ranks, to rounding (tests::weights_difference; the sums are taken in another order: a
// reduce to the shard's owner instead of an all-reduce, and the gradient norm from the shards'
// sums of squares), with the same losses and gradient norms to 1e-5 relative. The cases of
// RankInvarianceTest (every scheme; GQA with layer-wise LR decay and timm's no-decay rule; PGQA
// with drop path), and GQA with gradient clipping (at a norm below the gradients', so every
// step clips) and a weight EMA. The replicas are checked to agree at the end of every run
// (dist.verify_replicas in the fixture config).
const RankCase kZeroClipCase[] = {
    {"GQA_clip_ema", "GQA",
     " --set optimizer.grad_clip=0.05 --set optimizer.no_decay_1d=true"
     " --set train.ema_decay=0.9"},
};

class ZeroTest : public DistTest, public ::testing::WithParamInterface<RankCase> {
 protected:
  // The final weights of a 6-step run on `ranks` ranks at dist.zero_stage `stage`.
  std::string train(int ranks, int stage) {
    const std::string name = std::string(GetParam().name) + "_" + std::to_string(ranks) + "_zero" +
                             std::to_string(stage);
    const std::string out = dir_ + "/" + name;
    std::string output;
    const int code = tests::run_command(mpirun_prefix(ranks) + DGQA_BINARY + " train --config " +
                                            shell_quote(write_config(GetParam().scheme, 6)) +
                                            " --out " + shell_quote(out) + GetParam().sets +
                                            " --set dist.zero_stage=" + std::to_string(stage),
                                        &output);
    EXPECT_EQ(code, 0) << name << ":\n" << output;
    return out;
  }
};

TEST_P(ZeroTest, ZeroOneTrainsTheWeightsOfPlainDataParallelism) {
  const double lr = tests::rank_invariance_config(GetParam().scheme, 6).lr;
  for (int ranks : {2, 4}) {
    SCOPED_TRACE(std::to_string(ranks) + " ranks");
    const std::string plain = train(ranks, 0), zero = train(ranks, 1);
    expect_same_losses(read_run_records(zero + "/metrics.jsonl"),
                       read_run_records(plain + "/metrics.jsonl"), 6, /*grad_norms=*/true);
    tests::expect_weights_equal_to_rounding(
        zero + "/model.safetensors", plain + "/model.safetensors", lr,
        std::string(GetParam().name) + ", ZeRO-1 vs plain on " + std::to_string(ranks) + " ranks");
    if (std::string(GetParam().sets).find("ema_decay") != std::string::npos) {
      tests::expect_weights_equal_to_rounding(
          zero + "/model_ema.safetensors", plain + "/model_ema.safetensors", lr,
          "the weight EMA on " + std::to_string(ranks) + " ranks");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllSchemes, ZeroTest, ::testing::ValuesIn(kRankCases),
                         [](const auto& test_param) { return std::string(test_param.param.name); });
INSTANTIATE_TEST_SUITE_P(Clipping, ZeroTest, ::testing::ValuesIn(kZeroClipCase),
                         [](const auto& test_param) { return std::string(test_param.param.name); });

TEST_F(DistTest, MicroBatchNotDividingTheRankBatchIsBadInput) {
  tests::FixtureConfig fixture = tests::rank_invariance_config("GQA", 2);
  fixture.extra_train = "  micro_batch_size: 32\n";  // divides 32, not the 16 of each rank
  const std::string config = tests::write_fixture_config(dir_ + "/micro.pbtxt", data_, fixture);
  std::string output;
  const int code = tests::run_command(
      mpirun_prefix(2) + DGQA_BINARY + " train --config " + shell_quote(config), &output);
  EXPECT_EQ(code, 2) << output;
  EXPECT_NE(output.find("train.micro_batch_size: 32 does not divide the per-rank batch 16"),
            std::string::npos)
      << output;
}

TEST_F(DistTest, BatchNotDivisibleByRanksIsBadInput) {
  std::string output;
  const int code = tests::run_command(
      mpirun_prefix(3) + DGQA_BINARY + " train --config " + shell_quote(write_config("GQA", 2)),
      &output);
  EXPECT_EQ(code, 2) << output;
  EXPECT_NE(output.find("train.global_batch_size"), std::string::npos) << output;
}

// The ranks that mpirun starts on this machine share its memory: a model whose training state
// fills about two thirds of it fits one rank and is refused for two, before anything is allocated.
TEST_F(DistTest, RanksThatTogetherOverfillTheMachineAreRefused) {
  const double machine = machine_memory_bytes();
  if (machine <= 0) GTEST_SKIP() << "no MemTotal in /proc/meminfo";
  const std::string config = write_config("GQA", 2);
  std::vector<std::string> sets = {"model.embed_dim=1024", ""};
  double per_rank = 0;
  for (int depth = 1; per_rank < 0.6 * machine; ++depth) {
    sets[1] = "model.depth=" + std::to_string(depth);
    const config::Config loaded = load_config(config, sets);
    per_rank = estimate_memory(loaded, model_config_from(loaded), {16, "train.global_batch_size"},
                               /*training=*/true, /*loaders=*/2, /*world_size=*/2)
                   .total_bytes();
  }
  ASSERT_LT(per_rank, machine);
  std::string output;
  const int code = tests::run_command(
      mpirun_prefix(2) + DGQA_BINARY + " train --config " + shell_quote(config) + " --out " +
          shell_quote(dir_ + "/out") + " --set " + sets[0] + " --set " + sets[1],
      &output);
  EXPECT_EQ(code, 2) << output;
  EXPECT_NE(output.find("model.embed_dim, model.depth: the 2 ranks on this machine need about "),
            std::string::npos)
      << output;
  EXPECT_FALSE(tests::file_exists(dir_ + "/out/model.safetensors"));
}

// The thread count of a training run (rank 0's "with N threads").
int threads_in_log(const std::string& log) {
  const size_t at = log.find(" threads, ");
  if (at == std::string::npos) return -1;
  return std::stoi(log.substr(log.rfind(' ', at - 1) + 1));
}

// Ranks started without a thread count (no train.threads, no OMP_NUM_THREADS) and not bound
// to cores share the machine's cores out instead of each starting a thread per core.
TEST_F(DistTest, RanksWithoutAThreadCountShareTheCores) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  const int cores = CPU_COUNT(&allowed);
  const int machine_cores = static_cast<int>(std::thread::hardware_concurrency());
  const std::string config = write_config("GQA", 1);
  const std::string run = " train --config " + shell_quote(config) + " --set train.threads=0";
  std::string output;
  ASSERT_EQ(tests::run_command("env -u OMP_NUM_THREADS " + std::string(DGQA_BINARY) + run +
                                   " --out " + shell_quote(dir_ + "/one"),
                               &output),
            0)
      << output;
  EXPECT_EQ(threads_in_log(output), cores) << output;
  for (int ranks : {2, 4}) {
    ASSERT_EQ(tests::run_command("env -u OMP_NUM_THREADS " + shell_quote(tests::mpiexec_path()) +
                                     " --allow-run-as-root --oversubscribe --bind-to none -np " +
                                     std::to_string(ranks) + " " + DGQA_BINARY + run + " --out " +
                                     shell_quote(dir_ + "/" + std::to_string(ranks)),
                                 &output),
              0)
        << output;
    EXPECT_EQ(threads_in_log(output), std::max(1, std::min(cores, machine_cores / ranks)))
        << ranks << " ranks: " << output;
  }
}

// `dgqa bench` under mpirun: each rank trains its shard, rank 0 alone prints the report.
TEST_F(DistTest, BenchReportsTheWholeJobOnce) {
  std::string output;
  // The braces keep the ranks' log lines (stderr) out of the captured output.
  const int code = tests::run_command("{ " + mpirun_prefix(2) + DGQA_BINARY + " bench --config " +
                                          shell_quote(write_config("KDGQA", 2)) +
                                          " --steps 3 --warmup 1 --json 2>/dev/null; }",
                                      &output);
  ASSERT_EQ(code, 0) << output;
  ASSERT_EQ(tests::lines_of(output).size(), 1u) << output;
  const json report = json::parse(output);
  EXPECT_EQ(report["world_size"], 2);
  EXPECT_GT(report["images_per_sec"].get<double>(), 0);
  EXPECT_GE(report["ms_per_step"]["communication"].get<double>(), 0);
}

// `dgqa eval --logits-out` under mpirun: rank 0 writes the logits of every test example, in the
// dataset's order, and they are those of one process (45 examples: eval batches of 16 split
// unevenly over the ranks), as are the printed metrics. To rounding only: OpenBLAS computes a
// row's bits by its place in a 12-row panel (kernels/cpu/matmul.cc), and a rank's rows sit
// elsewhere in its own products than in one process's.
TEST_F(DistTest, EvalLogitsOfSeveralRanksAreThoseOfOne) {
  const std::string config = write_config("KDGQA", 2);
  const std::string out = dir_ + "/trained";
  std::string output;
  ASSERT_EQ(tests::run_command(std::string(DGQA_BINARY) + " train --config " + shell_quote(config) +
                                   " --out " + shell_quote(out),
                               &output),
            0)
      << output;
  std::map<int, json> metrics;
  std::map<int, NpyArray> logits;
  for (int ranks : {1, 2, 3}) {
    const std::string path = dir_ + "/logits" + std::to_string(ranks) + ".npy";
    const std::string launcher = ranks == 1 ? "" : mpirun_prefix(ranks);
    ASSERT_EQ(
        tests::run_command("{ " + launcher + DGQA_BINARY + " eval --config " + shell_quote(config) +
                               " --init-from " + shell_quote(out + "/model.safetensors") +
                               " --logits-out " + shell_quote(path) + " 2>/dev/null; }",
                           &output),
        0)
        << ranks << " ranks: " << output;
    ASSERT_EQ(tests::lines_of(output).size(), 1u) << ranks << " ranks: " << output;
    metrics[ranks] = json::parse(output);
    logits[ranks] = read_npy_f32(path);
  }
  ASSERT_EQ(logits[1].shape, (std::vector<int64_t>{45, 4}));
  for (int ranks : {2, 3}) {
    EXPECT_EQ(metrics[ranks].at("examples"), 45) << ranks << " ranks";
    EXPECT_NEAR(metrics[ranks].at("loss"), metrics[1].at("loss"), 1e-5) << ranks << " ranks";
    EXPECT_EQ(metrics[ranks].at("top1"), metrics[1].at("top1")) << ranks << " ranks";
    ASSERT_EQ(logits[ranks].shape, logits[1].shape) << ranks << " ranks";
    for (size_t i = 0; i < logits[1].data.size(); ++i) {
      ASSERT_NEAR(logits[ranks].data[i], logits[1].data[i], 1e-5) << ranks << " ranks, " << i;
    }
  }
}

// Starts a 2-rank run, waits for its first train line, then does `action` (a shell command
// with $VICTIM = one rank's pid) and reports: the victim's rank, exit status, seconds until
// mpirun ended, and whether any rank is left.
std::string interrupt_run(const std::string& config, const std::string& extra_args,
                          const std::string& out, const std::string& action) {
  const std::string script =
      mpirun_prefix(2) + DGQA_BINARY + " train --config " + shell_quote(config) + " --out " +
      shell_quote(out) + " " + extra_args + " >" + shell_quote(out + ".log") +
      " 2>&1 & launcher=$!\n" + "for i in $(seq 600); do grep -q '\"train\"' " +
      shell_quote(out + "/metrics.jsonl") +
      " 2>/dev/null && break; sleep 0.1; done\n"
      "VICTIM=$(pgrep -P $launcher -f 'dgqa train' | tail -n 1)\n"
      "[ -n \"$VICTIM\" ] || { echo no-rank-found; kill $launcher; exit 1; }\n"
      "echo victim-rank=$(tr '\\0' '\\n' </proc/$VICTIM/environ | "
      "sed -n 's/^OMPI_COMM_WORLD_RANK=//p')\n" +
      action +
      "\nstart=$(date +%s%N); wait $launcher; status=$?; end=$(date +%s%N)\n"
      "echo status=$status milliseconds=$(( (end - start) / 1000000 ))\n"
      "sleep 0.5; pgrep -f " +
      shell_quote(config) + " >/dev/null && echo ranks-left || echo no-ranks-left\n";
  tests::write_file(out + ".sh", script);
  std::string output;
  tests::run_command("bash " + shell_quote(out + ".sh"), &output);
  return output + "\n--- job output:\n" + tests::read_file(out + ".log");
}

// How long mpirun took to end after the rank was interrupted.
double seconds_of(const std::string& report) {
  const size_t at = report.find("milliseconds=");
  return at == std::string::npos ? 1e9 : std::stod(report.substr(at + 13)) / 1000;
}

TEST_F(DistTest, AKilledRankEndsTheJob) {
  const std::string config = write_config("GQA", 100000);
  const std::string report = interrupt_run(config, "", dir_ + "/killed", "kill -KILL $VICTIM");
  EXPECT_EQ(report.find("status=0"), std::string::npos) << report;
  EXPECT_NE(report.find("status="), std::string::npos) << report;
  EXPECT_LT(seconds_of(report), 60) << report;
  EXPECT_NE(report.find("no-ranks-left"), std::string::npos) << report;
}

TEST_F(DistTest, AHangingRankEndsTheJobAfterTheTimeout) {
  // A stopped rank never joins the next collective: the other one gives up after
  // dist.timeout_s, names the operation and the stopped rank, and the job ends.
  const std::string config = write_config("GQA", 100000);
  const std::string report =
      interrupt_run(config, "--set dist.timeout_s=5", dir_ + "/hung", "kill -STOP $VICTIM");
  EXPECT_NE(report.find("status=1"), std::string::npos) << report;
  // The waiting rank names the stopped one; the stopped one, woken to be ended, does not report.
  const size_t victim_at = report.find("victim-rank=");
  ASSERT_NE(victim_at, std::string::npos) << report;
  const int victim = std::stoi(report.substr(victim_at + 12));
  const int waiter = 1 - victim;
  EXPECT_NE(report.find("dgqa: failed: rank " + std::to_string(waiter) + ": "), std::string::npos)
      << report;
  EXPECT_NE(report.find(" s: rank " + std::to_string(victim) + " did not arrive"),
            std::string::npos)
      << report;
  EXPECT_EQ(report.find("dgqa: failed: rank " + std::to_string(victim) + ": "), std::string::npos)
      << report;
  EXPECT_LT(seconds_of(report), 40) << report;
  EXPECT_NE(report.find("no-ranks-left"), std::string::npos) << report;
}

// What srun does when a rank dies: the survivors get SIGTERM. A survivor takes it as a stop
// request, but its peer never comes: it gives up after the stop grace (10 s of waiting), names
// the peer, and the job ends, long before dist.timeout_s. A stopped rank stands in for the dead
// one, which mpirun (unlike srun) would notice itself.
TEST_F(DistTest, AStopRequestWithAHungPeerEndsTheJobAfterTheGrace) {
  const std::string config = write_config("GQA", 100000);
  const std::string report =
      interrupt_run(config, "--set dist.timeout_s=300", dir_ + "/stop_hung",
                    "kill -STOP $VICTIM\n"
                    "OTHER=$(pgrep -P $launcher -f 'dgqa train' | grep -vx $VICTIM | head -n 1)\n"
                    "kill -TERM $OTHER");
  EXPECT_NE(report.find("status=1"), std::string::npos) << report;
  const size_t victim_at = report.find("victim-rank=");
  ASSERT_NE(victim_at, std::string::npos) << report;
  const int victim = std::stoi(report.substr(victim_at + 12));
  EXPECT_NE(report.find("did not complete within 10 s of a stop request: rank " +
                        std::to_string(victim) + " did not arrive"),
            std::string::npos)
      << report;
  EXPECT_LT(seconds_of(report), 40) << report;
  EXPECT_NE(report.find("no-ranks-left"), std::string::npos) << report;
}

}  // namespace
}  // namespace dgqa
