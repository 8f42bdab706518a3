// `dgqa bench` run as a user would, its FLOP count (model/flops.h), the profiling
// backend it uses for --profile, and its model FLOP utilisation (--peak-tflops, and on a GPU the
// built-in peaks of kernels/cuda/device_info.h).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "kernels/cpu/cpu_backend.h"
#ifdef DGQA_WITH_CUDA
#include "kernels/cuda/device_info.h"
#endif
#include "cli/command_line.h"
#include "kernels/profiling_backend.h"
#include "model/flops.h"
#include "model/memory_estimate.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using nlohmann::json;

// timm's table gives ViT-B/16 at 224 as 17.6 G multiply-adds per image (forward, MHA).
TEST(FlopsTest, VitBase16MatchesTheCustomaryFigure) {
  ModelConfig vit_b;
  vit_b.embed_dim = 768;
  vit_b.depth = 12;
  vit_b.num_heads = 12;
  vit_b.num_kv_heads = 12;
  EXPECT_NEAR(forward_flops_per_image(vit_b) / 2, 17.6e9, 0.05e9);
  EXPECT_DOUBLE_EQ(training_flops_per_image(vit_b), 3 * forward_flops_per_image(vit_b));
}

// Fewer K/V heads take exactly their projections' share off: 2 T D (H - G) d per K and V per block.
TEST(FlopsTest, GroupedKeysAndValuesCountOnlyTheirHeads) {
  ModelConfig mha;
  mha.image_size = 32;
  mha.patch_size = 4;
  mha.embed_dim = 64;
  mha.depth = 3;
  mha.num_heads = 8;
  mha.num_kv_heads = 8;
  ModelConfig gqa = mha;
  gqa.num_kv_heads = 2;
  const double T = 65, D = 64, d = 8;
  EXPECT_DOUBLE_EQ(forward_flops_per_image(mha) - forward_flops_per_image(gqa),
                   3 * 2 * (2 * T * D * (8 - 2) * d));
}

TEST(BenchCliTest, ParsesItsFlagsAndRejectsBadCounts) {
  const CommandLine line = parse_command_line(
      {"bench", "--config", "c.pbtxt", "--steps", "7", "--warmup", "0", "--json", "--profile"});
  EXPECT_EQ(line.command, "bench");
  EXPECT_EQ(line.bench_steps, 7);
  EXPECT_EQ(line.bench_warmup, 0);
  EXPECT_TRUE(line.json);
  EXPECT_TRUE(line.bench_profile);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"bench", "--config", "c", "--steps", "0"},
        {"bench", "--config", "c", "--steps", "3x"},
        {"bench", "--config", "c", "--warmup", "-1"},
        {"bench", "--config", "c", "--real-data", "--data-only"},
        {"train", "--config", "c", "--json"}}) {
    EXPECT_THROW(parse_command_line(bad), std::exception) << bad[3];
  }
}

TEST(BenchCliTest, PeakTflopsTakesAPositiveNumber) {
  EXPECT_EQ(parse_command_line({"bench", "--config", "c"}).bench_peak_tflops, 0);
  EXPECT_EQ(
      parse_command_line({"bench", "--config", "c", "--peak-tflops", "989"}).bench_peak_tflops,
      989);
  EXPECT_EQ(
      parse_command_line({"bench", "--config", "c", "--peak-tflops", "0.5"}).bench_peak_tflops,
      0.5);
  for (const std::string bad : {"0", "-1", "abc", "12x", "", "nan", "inf", "1e999"}) {
    EXPECT_THROW(parse_command_line({"bench", "--config", "c", "--peak-tflops", bad}), InputError)
        << bad;
  }
  EXPECT_THROW(parse_command_line({"train", "--config", "c", "--peak-tflops", "1"}), InputError);
}

// Every call goes to the wrapped backend (same results) and is counted under its kernel.
TEST(ProfilingBackendTest, ForwardsAndCountsEveryCall) {
  ProfilingBackend profiler(std::make_unique<CpuBackend>());
  CpuBackend plain;
  const auto inp = tests::random_vector(6 * 4, 1), weight = tests::random_vector(3 * 4, 2);
  std::vector<float> profiled(6 * 3), expected(6 * 3);
  for (int repeat = 0; repeat < 2; ++repeat) {
    profiler.matmul_forward(profiled.data(), inp.data(), weight.data(), nullptr, 6, 4, 3);
  }
  plain.matmul_forward(expected.data(), inp.data(), weight.data(), nullptr, 6, 4, 3);
  EXPECT_EQ(profiled, expected);
  EXPECT_DOUBLE_EQ(profiler.sum_squares(inp.data(), 24), plain.sum_squares(inp.data(), 24));
  ASSERT_EQ(profiler.entries().count("matmul_forward 6x4x3"), 1u);
  EXPECT_EQ(profiler.entries().at("matmul_forward 6x4x3").calls, 2);
  EXPECT_EQ(profiler.entries().at("sum_squares").calls, 1);
  EXPECT_GE(profiler.entries().at("sum_squares").seconds, 0.0);
  profiler.reset();
  EXPECT_TRUE(profiler.entries().empty());
}

class BenchCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tests::make_temp_dir("dgqa_bench_");
    data_ = tests::write_fixture_dataset(dir_);
  }
  std::string dir_;
  tests::FixtureDataset data_;
};

// The JSON report has the documented fields, consistent with each other, for every scheme.
TEST_F(BenchCommandTest, JsonReportIsConsistent) {
  for (const std::string scheme : {"MHA", "GQA", "KDGQA", "DGQA_EMA", "PGQA"}) {
    tests::FixtureConfig fixture;
    fixture.attention = scheme;
    fixture.num_kv_heads = scheme == "MHA" ? -1 : 2;
    const std::string config = tests::write_fixture_config(dir_ + "/c.pbtxt", data_, fixture);
    const tests::DgqaRun run =
        tests::run_dgqa("bench --config " + config + " --steps 3 --warmup 1 --json", dir_);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const json report = json::parse(run.out);
    EXPECT_EQ(report["scheme"], scheme);
    EXPECT_EQ(report["global_batch_size"], fixture.batch_size);
    EXPECT_EQ(report["steps"], 3);
    const double ips = report["images_per_sec"], gflops = report["gflops_per_sec"];
    EXPECT_GT(ips, 0);
    EXPECT_NEAR(gflops, ips * report["gflop_per_image"].get<double>(), 1e-9 * gflops);
    const json& ms = report["ms_per_step"];
    const double phases = ms["data"].get<double>() + ms["forward"].get<double>() +
                          ms["backward"].get<double>() + ms["communication"].get<double>() +
                          ms["optimizer"].get<double>();
    EXPECT_NEAR(ms["total"].get<double>(), phases, 1e-6 * phases);
    // images/s counts the whole timed loop, which holds the phases (an upper bound on the loop's
    // own overhead would be a bound on time, which a loaded machine breaks).
    EXPECT_GE(1e3 * fixture.batch_size / ips, ms["total"].get<double>() * (1 - 1e-9));
    EXPECT_GT(report["peak_memory_mib"].get<double>(), 0);
    EXPECT_EQ(report["shape"]["num_heads"], fixture.num_heads);
  }
}

// The metrics.jsonl "train" records of a run, by step.
std::map<int64_t, json> train_records(const std::string& metrics_path) {
  std::map<int64_t, json> records;
  for (const std::string& line : tests::lines_of(tests::read_file(metrics_path))) {
    const json record = json::parse(line);
    if (record.at("kind") == "train") records[record.at("step").get<int64_t>()] = record;
  }
  return records;
}

// `dgqa bench --real-data` runs the training step of `dgqa train`, with the optimizer settings
// and schedule the config gives: with weight decay kept off 1-D tensors and tokens
// (no_decay_1d) and a warm-up that changes the rate every step, its timed steps have the losses,
// gradient norms and rates that train logs for the same steps, to the bit. Train with decay on
// every tensor gives other losses from the second step on, so the comparison can tell them apart.
TEST_F(BenchCommandTest, RealDataStepsAreThoseOfTrain) {
  tests::FixtureConfig fixture;
  fixture.attention = "KDGQA";
  fixture.max_steps = 4;
  fixture.lr = 2e-2f;
  const std::string config = tests::write_fixture_config(dir_ + "/c.pbtxt", data_, fixture);
  const std::string settings =
      " --set optimizer.weight_decay=0.5 --set schedule.warmup_steps=3 --set schedule.kind=COSINE";
  auto train = [&](const std::string& out, bool no_decay_1d) {
    const tests::DgqaRun run = tests::run_dgqa(
        "train --config " + config + settings +
            " --set optimizer.no_decay_1d=" + (no_decay_1d ? "true" : "false") + " --out " + out,
        dir_);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return train_records(out + "/metrics.jsonl");
  };
  const std::map<int64_t, json> trained = train(dir_ + "/no_decay_1d", true);
  const std::map<int64_t, json> decay_all = train(dir_ + "/decay_all", false);
  const tests::DgqaRun bench = tests::run_dgqa("bench --config " + config + settings +
                                                   " --set optimizer.no_decay_1d=true"
                                                   " --real-data --warmup 0 --steps 4 --json",
                                               dir_);
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  const json trajectory = json::parse(bench.out).at("trajectory");
  ASSERT_EQ(trajectory.size(), 4u);
  ASSERT_EQ(trained.size(), 4u);
  for (const json& step : trajectory) {
    const int64_t at = step.at("step");
    SCOPED_TRACE("step " + std::to_string(at));
    ASSERT_EQ(trained.count(at), 1u);
    EXPECT_EQ(step.at("loss").get<double>(), trained.at(at).at("loss").get<double>());
    EXPECT_EQ(step.at("grad_norm").get<double>(), trained.at(at).at("grad_norm").get<double>());
    EXPECT_EQ(step.at("lr").get<double>(), trained.at(at).at("lr").get<double>());
  }
  EXPECT_NE(trajectory[0].at("lr").get<double>(), trajectory[3].at("lr").get<double>());
  EXPECT_EQ(decay_all.at(1).at("loss").get<double>(), trained.at(1).at("loss").get<double>());
  EXPECT_NE(decay_all.at(3).at("loss").get<double>(), trained.at(3).at("loss").get<double>());
}

TEST_F(BenchCommandTest, ProfileAndDataOnlyAndRealDataRun) {
  const std::string config = tests::write_fixture_config(dir_ + "/c.pbtxt", data_);
  tests::DgqaRun run = tests::run_dgqa("bench --config " + config + " --steps 2 --profile", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("attention_forward"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("matmul_backward"), std::string::npos) << run.out;

  run = tests::run_dgqa("bench --config " + config + " --steps 20 --data-only --json", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_GT(json::parse(run.out)["images_per_sec_per_rank"].get<double>(), 0);

  // --real-data trains on the fixture files; 64 examples / batch 8 = 8 steps an epoch, so 12
  // steps cross into a second epoch.
  run = tests::run_dgqa("bench --config " + config + " --steps 12 --real-data --json", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(json::parse(run.out)["setup"].get<std::string>().find("real data"), std::string::npos);
}

TEST_F(BenchCommandTest, MissingDataIsAClearErrorOnlyWhenDataIsUsed) {
  const std::string config = tests::write_fixture_config(dir_ + "/c.pbtxt", data_);
  std::filesystem::remove(data_.train_images);
  // Synthetic data needs no files ...
  tests::DgqaRun run = tests::run_dgqa("bench --config " + config + " --steps 1", dir_);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  // ... the real data does.
  run = tests::run_dgqa("bench --config " + config + " --steps 1 --real-data", dir_);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("train_images"), std::string::npos) << run.err;
}

// --plan, --device-memory and --ranks come together, and --plan runs no steps.
TEST(BenchCliTest, PlanTakesDeviceMemoryAndRanks) {
  const CommandLine line = parse_command_line(
      {"bench", "--config", "c", "--plan", "--device-memory", "80", "--ranks", "8"});
  EXPECT_TRUE(line.bench_plan);
  EXPECT_EQ(line.plan_device_gib, 80);
  EXPECT_EQ(line.plan_ranks, 8);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"bench", "--config", "c", "--plan", "--ranks", "8"},
        {"bench", "--config", "c", "--plan", "--device-memory", "80"},
        {"bench", "--config", "c", "--device-memory", "80", "--ranks", "8"},
        {"bench", "--config", "c", "--plan", "--device-memory", "0", "--ranks", "8"},
        {"bench", "--config", "c", "--plan", "--device-memory", "80", "--ranks", "0"},
        {"bench", "--config", "c", "--plan", "--device-memory", "80", "--ranks", "8",
         "--real-data"}}) {
    EXPECT_THROW(parse_command_line(bad), InputError) << bad.back();
  }
}

// `dgqa bench --plan` prints the table, and its answers are the largest micro-batches whose
// computed memory fits: for the fixture's model on 4 ranks in 16 MiB, B fits and B + 1 does not.
TEST_F(BenchCommandTest, PlanPrintsTheLargestMicroBatchThatFits) {
  const std::string config = tests::write_fixture_config(dir_ + "/c.pbtxt", data_);
  const std::string plan =
      "bench --config " + config + " --plan --device-memory 0.015625 --ranks 4";
  tests::DgqaRun run = tests::run_dgqa(plan, dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("largest micro-batch"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("recompute ZeRO parameters"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("images/s"), std::string::npos) << "--plan runs no steps";

  run = tests::run_dgqa(plan + " --json", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(run.out);
  EXPECT_EQ(report.at("micro_batch"), 2);     // global batch 8 over 4 ranks
  EXPECT_EQ(report.at("precision"), "bf16");  // a device's default
  EXPECT_EQ(report.at("zero1_implemented"), false);
  ModelConfig model;  // the fixture's
  model.image_size = 8;
  model.patch_size = 4;
  model.in_channels = 1;
  model.num_classes = 4;
  model.embed_dim = 16;
  model.depth = 2;
  model.num_heads = 4;
  model.num_kv_heads = 2;
  ASSERT_EQ(report.at("rows").size(), 4u);
  const char* recompute[] = {"NONE", "NONE", "BLOCK", "BLOCK"};
  for (int i = 0; i < 4; ++i) {
    const json& row = report["rows"][i];
    EXPECT_EQ(row["at_micro_batch"]["recompute"], recompute[i]);
    EXPECT_EQ(row["at_micro_batch"]["zero_stage"], i % 2);
    RankSetup setup;
    setup.recompute = i >= 2;
    setup.bf16 = true;
    setup.ranks = 4;
    setup.zero_stage = i % 2;
    setup.micro_batch = row["largest_micro_batch"].get<int>();
    EXPECT_LE(rank_memory(model, setup).total(), 1 << 24);
    setup.micro_batch += 1;
    EXPECT_GT(rank_memory(model, setup).total(), 1 << 24);
  }
  EXPECT_GT(report["rows"][2]["largest_micro_batch"], report["rows"][0]["largest_micro_batch"]);
}

// The report has the memory per rank by kind (model/memory_estimate.h), and on the CPU the
// computed totals account for the measured peak resident memory of two runs whose buffers
// dominate it (computed about 290 MiB, and 140 with recompute, micro-batches and a weight EMA):
// each peak is at least its computed total, and the two peaks differ by the computed difference
// to within 10%. The rest of a peak is the same in both runs: the program, its libraries (about
// 15 MiB in a CPU build, 170 MiB more when the CUDA libraries are linked), the threads' stacks
// and the input batch. AddressSanitizer's shadow memory and quarantine inflate the peak: the
// bound is not checked in that build.
TEST_F(BenchCommandTest, ComputedMemoryAccountsForTheMeasuredPeak) {
  std::vector<double> computed, measured;  // MiB
  for (const std::string train : {"", "recompute: BLOCK micro_batch_size: 32 ema_decay: 0.9"}) {
    SCOPED_TRACE(train);
    tests::FixtureConfig fixture;
    fixture.image_size = 28;
    fixture.patch_size = 2;  // 197 tokens
    fixture.embed_dim = 128;
    fixture.depth = 4;
    fixture.batch_size = train.empty() ? 32 : 64;
    fixture.extra_train = train;
    const std::string config = tests::write_fixture_config(dir_ + "/c.pbtxt", data_, fixture);
    const tests::DgqaRun run =
        tests::run_dgqa("bench --config " + config + " --steps 1 --warmup 0 --json", dir_);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const json memory = json::parse(run.out).at("memory_per_rank");
    EXPECT_EQ(memory.at("micro_batch"), 32);
    EXPECT_EQ(memory.at("recompute"), train.empty() ? "NONE" : "BLOCK");
    EXPECT_EQ(memory.at("precision"), "fp32");
    EXPECT_EQ(memory.at("weight_ema"), !train.empty());
    EXPECT_EQ(memory.at("ranks"), 1);
    EXPECT_EQ(memory.at("zero_stage"), 0);
    double sum = 0;
    for (const char* kind : {"parameters", "gradients", "optimizer", "activations", "workspace"}) {
      sum += memory.at(std::string(kind) + "_bytes").get<double>();
    }
    const double computed_mib = memory.at("total_bytes").get<double>() / (1 << 20);
    EXPECT_DOUBLE_EQ(sum / (1 << 20), computed_mib);
    computed.push_back(computed_mib);
    measured.push_back(json::parse(run.out).at("peak_memory_mib").get<double>());
    std::printf("computed %.1f MiB, measured peak %.1f MiB (%s)\n", computed_mib, measured.back(),
                train.empty() ? "recompute NONE" : "recompute BLOCK");
  }
#ifndef __SANITIZE_ADDRESS__
  ASSERT_EQ(measured.size(), 2u);
  EXPECT_GE(measured[0], computed[0]);
  EXPECT_GE(measured[1], computed[1]);
  const double computed_saving = computed[0] - computed[1];
  EXPECT_NEAR(measured[0] - measured[1], computed_saving, 0.1 * computed_saving);
#endif
}

// --peak-tflops works on the CPU too: MFU = effective GFLOP/s / (1000 x peak TFLOP/s).
TEST_F(BenchCommandTest, PeakTflopsGivesTheMfu) {
  const std::string config = tests::write_fixture_config(dir_ + "/c.pbtxt", data_);
  tests::DgqaRun run = tests::run_dgqa(
      "bench --config " + config + " --steps 2 --warmup 0 --json --peak-tflops 0.25", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  json report = json::parse(run.out);
  ASSERT_TRUE(report.contains("mfu")) << run.out;
  EXPECT_EQ(report["peak_tflops"].get<double>(), 0.25);
  EXPECT_EQ(report["peak_source"], "--peak-tflops");
  EXPECT_EQ(report["precision"], "fp32");
  const double gflops = report["gflops_per_sec"];
  EXPECT_NEAR(report["mfu"].get<double>(), gflops / 250, 1e-12 * gflops);
  EXPECT_FALSE(report.contains("device_name")) << "the CPU backend has no device to describe";
  EXPECT_FALSE(report.contains("device_memory_bytes"));

  // Without a peak the CPU report has no MFU; the text report prints it when there is one.
  run = tests::run_dgqa("bench --config " + config + " --steps 1 --warmup 0 --json", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  report = json::parse(run.out);
  EXPECT_FALSE(report.contains("mfu"));
  EXPECT_FALSE(report.contains("peak_tflops"));
  run = tests::run_dgqa("bench --config " + config + " --steps 1 --peak-tflops 2", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("MFU "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("of a peak of 2 TFLOP/s"), std::string::npos) << run.out;
}

// A bad --peak-tflops ends the program with exit code 2 and one error line naming the flag.
TEST_F(BenchCommandTest, BadPeakTflopsIsAnInputError) {
  const std::string config = tests::write_fixture_config(dir_ + "/c.pbtxt", data_);
  for (const std::string value : {"0", "-5", "fast", "1e999", "nan", ""}) {
    const tests::DgqaRun run = tests::run_dgqa(
        "bench --config " + config + " --steps 1 --peak-tflops " + tests::shell_quote(value), dir_);
    EXPECT_EQ(run.exit_code, 2) << value << ": " << run.err;
    EXPECT_EQ(tests::count_lines_containing(run.err, "dgqa: error:"), 1) << run.err;
    EXPECT_NE(run.err.find("--peak-tflops " + value + ": expected a number"), std::string::npos)
        << run.err;
    EXPECT_TRUE(run.out.empty()) << run.out;
  }
  const tests::DgqaRun run = tests::run_dgqa("bench --config " + config + " --peak-tflops", dir_);
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("--peak-tflops needs a value"), std::string::npos) << run.err;
}

#ifdef DGQA_WITH_CUDA
// The built-in peaks (NVIDIA datasheet, dense): matched by compute capability and name; the NVL
// variants and every other device are unknown (0). Needs no GPU.
TEST(DevicePeakTest, KnownDevicesHaveTheDatasheetFigures) {
  using cuda::dense_peak_flops;
  const Precision bf16 = Precision::kBF16, fp32 = Precision::kFP32;
  EXPECT_EQ(dense_peak_flops("NVIDIA H100 80GB HBM3", 9, 0, bf16), 989e12);
  EXPECT_EQ(dense_peak_flops("NVIDIA H100 80GB HBM3", 9, 0, fp32), 67e12);
  EXPECT_EQ(dense_peak_flops("NVIDIA H100 PCIe", 9, 0, bf16), 756e12);
  EXPECT_EQ(dense_peak_flops("NVIDIA H100 PCIe", 9, 0, fp32), 51e12);
  EXPECT_EQ(dense_peak_flops("NVIDIA H200", 9, 0, bf16), 989e12);
  EXPECT_EQ(dense_peak_flops("NVIDIA H200", 9, 0, fp32), 67e12);
  EXPECT_EQ(dense_peak_flops("NVIDIA A100-SXM4-80GB", 8, 0, bf16), 312e12);
  EXPECT_EQ(dense_peak_flops("NVIDIA A100 80GB PCIe", 8, 0, fp32), 19.5e12);
  EXPECT_EQ(dense_peak_flops("NVIDIA H100 NVL", 9, 0, bf16), 0);
  EXPECT_EQ(dense_peak_flops("NVIDIA H200 NVL", 9, 0, bf16), 0);
  EXPECT_EQ(dense_peak_flops("NVIDIA GH200 480GB", 9, 0, bf16), 0);
  EXPECT_EQ(dense_peak_flops("NVIDIA L4", 8, 9, bf16), 0);
  EXPECT_EQ(dense_peak_flops("NVIDIA H100 80GB HBM3", 8, 0, bf16), 0);  // capability must match
}

// On a GPU the report names the device and its memory in use, and has an MFU when the device is
// in the table. Skips where there is no GPU.
TEST_F(BenchCommandTest, CudaReportDescribesTheDevice) {
  try {
    make_backend("cuda");
  } catch (const std::exception& error) {
    GTEST_SKIP() << "no CUDA backend here: " << error.what();
  }
  const std::string config = tests::write_fixture_config(dir_ + "/c.pbtxt", data_);
  const tests::DgqaRun run = tests::run_dgqa(
      "bench --config " + config + " --set train.backend=cuda --steps 2 --warmup 1 --json", dir_);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(run.out);
  EXPECT_EQ(report["backend"], "cuda");
  ASSERT_TRUE(report.contains("device_name")) << run.out;
  EXPECT_GT(report["device_sm_count"].get<int>(), 0);
  EXPECT_GT(report["device_memory_bytes"].get<int64_t>(), 0);
  if (report.contains("mfu")) {
    const double gflops = report["gflops_per_sec"];
    EXPECT_NEAR(report["mfu"].get<double>(), gflops / (1e3 * report["peak_tflops"].get<double>()),
                1e-12 * gflops);
    EXPECT_GT(report["mfu"].get<double>(), 0);
    EXPECT_LT(report["mfu"].get<double>(), 1);
  }
}
#endif

}  // namespace
}  // namespace dgqa
