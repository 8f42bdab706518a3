// Data parallelism on the GPU (docs/design.md §5): 2 ranks sharing one GPU through the host-staged
// MPI path compute what 1 rank computes, for every scheme; NCCL (gradients and key norms) on 1
// rank gives exactly what MPI gives, and on 2 GPUs what 1 rank gives; NCCL refuses two ranks on
// one GPU with a clear error; NcclAllReduce sums device buffers. ZeRO-1 (dist.zero_stage 1,
// design.md §5.11) through NCCL and through host-staged MPI trains the weights of plain data
// parallelism, in bf16 too (where the gathered parameters must refresh the bf16 copy of the
// weights). Skipped without a CUDA build or without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "comm/local_communicator.h"
#include "kernels/backend.h"
#include "tests/fixtures.h"
#include "tests/test_util.h"
#ifdef DGQA_WITH_CUDA
#include "comm/cuda/nccl_all_reduce.h"
#include "kernels/cuda/cuda_context.h"
#include "tests/device_array.h"
#endif

namespace dgqa {
namespace {

using nlohmann::json;
using tests::shell_quote;

const char* const kSchemes[] = {"MHA", "GQA", "KDGQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"};

int visible_gpus() {
#ifdef DGQA_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

using tests::mpirun_prefix;
using tests::read_run_records;
using tests::RunRecords;

class CudaDistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (visible_gpus() == 0) GTEST_SKIP() << "no GPU (or a build without -DDGQA_CUDA=ON)";
    dir_ = tests::make_temp_dir("dgqa_cuda_dist_");
    tests::FixtureDatasetOptions options;
    options.train_count = 700;
    options.test_count = 45;
    data_ = tests::write_fixture_dataset(dir_, options);
  }
  void TearDown() override {
    if (!dir_.empty()) tests::run_command("rm -rf " + shell_quote(dir_));
  }

  // dist_test's rank-invariance runs, 20 steps.
  std::string write_config(const std::string& scheme) {
    return tests::write_fixture_config(dir_ + "/" + scheme + ".pbtxt", data_,
                                       tests::rank_invariance_config(scheme, 20));
  }

  // Trains on the GPU; returns the run's losses. `sets` are more --set overrides.
  RunRecords train(const std::string& launcher, const std::string& config, const std::string& out,
                   const std::string& sets, std::string* log = nullptr) {
    std::string output;
    const int code = tests::run_command(launcher + shell_quote(tests::dgqa_binary()) +
                                            " train --config " + shell_quote(config) + " --out " +
                                            shell_quote(out) + " --set train.backend=cuda " + sets,
                                        &output);
    EXPECT_EQ(code, 0) << output;
    if (log != nullptr) *log = output;
    return read_run_records(out + "/metrics.jsonl");
  }

  std::string dir_;
  tests::FixtureDataset data_;
};

class CudaRankInvarianceTest : public CudaDistTest,
                               public ::testing::WithParamInterface<const char*> {};

// fp32 on the GPU: 2 ranks x 16 through dist.backend MPI (host-staged) against 1 rank x 32.
TEST_P(CudaRankInvarianceTest, TwoRanksSharingTheGpuComputeWhatOneRankComputes) {
  const std::string scheme = GetParam();
  const std::string config = write_config(scheme);
  const std::string sets = "--set model.precision=FP32 --set dist.backend=MPI";
  const RunRecords one = train("", config, dir_ + "/one", sets);
  const RunRecords two = train(mpirun_prefix(2), config, dir_ + "/two", sets);
  ASSERT_EQ(one.losses.size(), 20u);
  ASSERT_EQ(two.losses.size(), one.losses.size());
  for (const auto& [step, loss] : one.losses) {
    EXPECT_NEAR(two.losses.at(step), loss, 1e-5 * std::fabs(loss)) << "step " << step;
  }
  EXPECT_EQ(two.allocations, one.allocations);
}

INSTANTIATE_TEST_SUITE_P(Schemes, CudaRankInvarianceTest, ::testing::ValuesIn(kSchemes));

// bf16 products: the rounding of each operand does not depend on the rank, so the runs differ
// only in the order of the gradient sums (fp32); the tolerance allows for that, amplified by 20
// steps of training.
TEST_F(CudaDistTest, Bf16TwoRanksComputeWhatOneRankComputes) {
  const std::string config = write_config("DGQA_EMA");
  const std::string sets = "--set model.precision=BF16 --set dist.backend=MPI";
  const RunRecords one = train("", config, dir_ + "/one", sets);
  const RunRecords two = train(mpirun_prefix(2), config, dir_ + "/two", sets);
  ASSERT_EQ(two.losses.size(), one.losses.size());
  for (const auto& [step, loss] : one.losses) {
    EXPECT_NEAR(two.losses.at(step), loss, 1e-4 * std::fabs(loss)) << "step " << step;
  }
}

class CudaNcclPathTest : public CudaDistTest, public ::testing::WithParamInterface<const char*> {};

// With one rank the NCCL sum is the identity: the whole NCCL path (its stream, the events that
// order it after backward, the key norms summed on the device inside the forward, and the
// optimizer after the gradient sums) must leave every bit as MPI's no-op does, for every scheme:
// the losses, the allocations (chosen from the key norms) and the evaluations.
TEST_P(CudaNcclPathTest, OneRankNcclGivesExactlyWhatMpiGives) {
  const std::string config = write_config(GetParam());
  std::string nccl_log, mpi_log;
  const RunRecords nccl = train("", config, dir_ + "/nccl", "--set dist.backend=NCCL", &nccl_log);
  const RunRecords mpi = train("", config, dir_ + "/mpi", "--set dist.backend=MPI", &mpi_log);
  EXPECT_NE(nccl_log.find("gradient buckets summed by NCCL, key norms summed by NCCL"),
            std::string::npos)
      << nccl_log;
  EXPECT_NE(mpi_log.find("key norms summed by none"), std::string::npos) << mpi_log;
  ASSERT_EQ(nccl.losses.size(), 20u);
  EXPECT_EQ(nccl.loss_text, mpi.loss_text);
  EXPECT_EQ(nccl.allocations, mpi.allocations);
  EXPECT_EQ(nccl.evals, mpi.evals);
}

INSTANTIATE_TEST_SUITE_P(Schemes, CudaNcclPathTest, ::testing::ValuesIn(kSchemes));

TEST_F(CudaDistTest, NcclWithTwoRanksPerGpuIsRefusedOrMatchesOneRank) {
  const std::string config = write_config("GQA");
  std::string output;
  const int code =
      tests::run_command(mpirun_prefix(2) + shell_quote(tests::dgqa_binary()) + " train --config " +
                             shell_quote(config) + " --out " + shell_quote(dir_ + "/two") +
                             " --set train.backend=cuda --set dist.backend=NCCL "
                             "--set model.precision=FP32",
                         &output);
  if (visible_gpus() == 1) {  // both ranks land on GPU 0
    EXPECT_EQ(code, 2) << output;
    EXPECT_NE(output.find("NCCL needs one GPU per rank"), std::string::npos) << output;
    return;
  }
  ASSERT_EQ(code, 0) << output;  // one GPU each: a real 2-rank NCCL job
  const RunRecords one =
      train("", config, dir_ + "/one", "--set dist.backend=NCCL --set model.precision=FP32");
  const RunRecords two = read_run_records(dir_ + "/two/metrics.jsonl");
  ASSERT_EQ(two.losses.size(), one.losses.size());
  for (const auto& [step, loss] : one.losses) {
    EXPECT_NEAR(two.losses.at(step), loss, 1e-5 * std::fabs(loss)) << "step " << step;
  }
  EXPECT_EQ(two.allocations, one.allocations);
}

// Two ranks on two GPUs, KDGQA and DGQA: the key norms summed by NCCL give the allocations of
// one rank, and dist.verify_replicas finds the caches and allocations equal on both ranks.
TEST_P(CudaNcclPathTest, TwoRanksOnTwoGpusChooseTheAllocationsOfOneRank) {
  if (visible_gpus() < 2) GTEST_SKIP() << "needs 2 GPUs";
  const std::string config = write_config(GetParam());
  const std::string sets =
      "--set dist.backend=NCCL --set model.precision=FP32 --set dist.verify_replicas=true";
  const RunRecords one = train("", config, dir_ + "/one", sets);
  const RunRecords two = train(mpirun_prefix(2), config, dir_ + "/two", sets);
  ASSERT_EQ(two.losses.size(), one.losses.size());
  for (const auto& [step, loss] : one.losses) {
    EXPECT_NEAR(two.losses.at(step), loss, 1e-5 * std::fabs(loss)) << "step " << step;
  }
  EXPECT_EQ(two.allocations, one.allocations);
}

// ZeRO-1 on one rank through NCCL by name runs its whole path (the reduces, and the gather whose
// NCCL writes must make the bf16 copy of the weights stale): every bit as without ZeRO-1, in
// bf16 (the default on cuda) and fp32.
TEST_P(CudaNcclPathTest, OneRankNcclZeroGivesExactlyWhatPlainNcclGives) {
  const std::string config = write_config(GetParam());
  for (const char* precision : {"BF16", "FP32"}) {
    SCOPED_TRACE(precision);
    const std::string sets =
        std::string("--set dist.backend=NCCL --set model.precision=") + precision;
    std::string zero_log;
    const RunRecords zero = train("", config, dir_ + "/zero_" + precision,
                                  sets + " --set dist.zero_stage=1", &zero_log);
    const RunRecords plain = train("", config, dir_ + "/plain_" + precision, sets);
    EXPECT_NE(zero_log.find("ZeRO-1: this rank keeps"), std::string::npos) << zero_log;
    ASSERT_EQ(zero.losses.size(), 20u);
    EXPECT_EQ(zero.loss_text, plain.loss_text);
    EXPECT_EQ(zero.allocations, plain.allocations);
    EXPECT_EQ(zero.evals, plain.evals);
  }
}

// ZeRO-1 on two ranks against plain data parallelism on the same two ranks: the final weights
// to rounding (tests::weights_difference), bf16. Through host-staged MPI on one GPU, and through
// NCCL when there are two GPUs.
TEST_F(CudaDistTest, TwoRanksZeroTrainTheWeightsOfPlainDataParallelism) {
  const std::string config = write_config("DGQA_EMA");
  std::vector<std::string> backends = {"MPI"};
  if (visible_gpus() >= 2) backends.push_back("NCCL");
  for (const std::string& backend : backends) {
    SCOPED_TRACE(backend);
    const std::string sets =
        "--set model.precision=BF16 --set dist.verify_replicas=true --set dist.backend=" + backend;
    const std::string zero = dir_ + "/zero_" + backend, plain = dir_ + "/plain_" + backend;
    train(mpirun_prefix(2), config, zero, sets + " --set dist.zero_stage=1");
    train(mpirun_prefix(2), config, plain, sets);
    tests::expect_weights_equal_to_rounding(
        zero + "/model.safetensors", plain + "/model.safetensors",
        tests::rank_invariance_config("DGQA_EMA", 20).lr, "ZeRO-1 vs plain over " + backend);
  }
}

#ifdef DGQA_WITH_CUDA
// NcclAllReduce over a job of one rank on the GPU, with a buffer of 2^20 random floats.
struct OneRankNccl {
  explicit OneRankNccl(uint32_t seed) : values(tests::random_vector(1 << 20, seed)) {}
  std::unique_ptr<Backend> backend = make_backend("cuda");
  std::unique_ptr<Communicator> local = make_local_communicator(RankInfo());
  std::unique_ptr<BufferAllReduce> nccl = make_nccl_all_reduce(*local, /*timeout_s=*/60);
  const std::vector<float> values;
  tests::DeviceArray<float> data{*backend, values};
};

// One rank: the reduce and the gather leave the device buffer as it was, and complete.
TEST_F(CudaDistTest, NcclReduceAndGatherOfOneRankLeaveTheBuffer) {
  OneRankNccl one(6);
  auto reduce = one.nccl->start_reduce(one.data.get() + 64, 1000, /*root=*/0, "a piece");
  one.nccl->wait(*reduce);
  EXPECT_TRUE(one.nccl->test(*reduce));
  one.nccl->all_gather_ranges(one.data.get(), {0, 1 << 20}, "the whole buffer");
  EXPECT_EQ(one.data.to_host(), one.values);
}

TEST_F(CudaDistTest, NcclAllReduceOfOneRankLeavesTheBufferAndCompletes) {
  OneRankNccl one(5);
  auto first = one.nccl->start(one.data.get(), 1 << 19, "first half");
  auto second = one.nccl->start(one.data.get() + (1 << 19), 1 << 19, "second half");
  one.nccl->wait(*second);
  one.nccl->wait(*first);
  EXPECT_TRUE(one.nccl->test(*first));
  EXPECT_EQ(one.data.to_host(), one.values);
}
#endif

}  // namespace
}  // namespace dgqa
