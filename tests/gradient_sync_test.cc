// GradientSync, ZeRO-1's shards, the host-staged all-reduce and the key-norm reducer
// (trainer/gradient_sync.h, trainer/zero_shards.h, comm/staged_all_reduce.h,
// trainer/key_norm_reducer.h).
// CTest runs this program plainly and as an MPI job of 2 ranks (gradient_sync_2ranks); every
// rank fills its gradients with values that depend on the rank, so each can compute the sum.
//
// The staged path is what a GPU uses over MPI. Here a CPU backend that calls its memory "device
// memory" stands in for the GPU: the data take exactly the path they take from a GPU (copied to
// the host buffer, summed by MPI, copied back), which the counts of copies confirm.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "comm/communicator.h"
#include "comm/local_communicator.h"
#include "comm/staged_all_reduce.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/communicator_environment.h"
#include "trainer/config.h"
#include "trainer/gradient_sync.h"
#include "trainer/key_norm_reducer.h"
#include "trainer/zero_shards.h"

namespace dgqa {
namespace {

using tests::comm;

// CPU memory presented as device memory, counting the copies across the "bus".
class DeviceLikeBackend : public CpuBackend {
 public:
  bool host_memory() const override { return false; }
  void copy_to_device(void* device, const void* host, size_t bytes) override {
    ++to_device;
    CpuBackend::copy_to_device(device, host, bytes);
  }
  void copy_to_host(void* host, const void* device, size_t bytes) override {
    ++to_host;
    CpuBackend::copy_to_host(host, device, bytes);
  }
  int to_device = 0, to_host = 0;
};

float value(int rank, int64_t i) {
  return static_cast<float>((i % 17) + 100 * rank) * 0.25f;  // exact in float, sums exact too
}

float expected_sum(int world, int64_t i) {
  float sum = 0;
  for (int rank = 0; rank < world; ++rank) sum += value(rank, i);
  return sum;
}

// Runs one "backward": reports the gradient buffer ready from its end in steps, like the model.
void run_backward(GradientSync& sync, int64_t size, int64_t step) {
  for (int64_t first = size - step; first > 0; first -= step) sync.ready(first);
  sync.finish();
}

void check_sums(Backend& backend, const float* grads, int64_t size, int world) {
  std::vector<float> host(size);
  backend.copy_to_host(host.data(), grads, size * sizeof(float));
  for (int64_t i = 0; i < size; ++i) ASSERT_EQ(host[i], expected_sum(world, i)) << "element " << i;
}

void fill(Backend& backend, float* grads, int64_t size, int rank) {
  std::vector<float> host(size);
  for (int64_t i = 0; i < size; ++i) host[i] = value(rank, i);
  backend.copy_to_device(grads, host.data(), size * sizeof(float));
}

TEST(GradientSyncTest, HostMemoryGradientsAreSummedOverTheRanks) {
  CpuBackend backend;
  const int64_t size = 10000;
  auto* grads = static_cast<float*>(backend.allocate(size * sizeof(float)));
  fill(backend, grads, size, comm().rank());
  GradientSyncOptions options;
  options.bucket_mb = 0.004;  // 1048 floats: ten buckets
  GradientSync sync(comm(), backend, grads, size, options);
  EXPECT_EQ(sync.num_buckets(), 10);
  EXPECT_STREQ(sync.method(), comm().world_size() > 1 ? "MPI" : "none");
  run_backward(sync, size, 777);
  check_sums(backend, grads, size, comm().world_size());
  backend.release(grads);
}

TEST(GradientSyncTest, DeviceGradientsGoThroughHostMemoryOverMpi) {
  DeviceLikeBackend backend;
  const int64_t size = 10000;
  auto* grads = static_cast<float*>(backend.allocate(size * sizeof(float)));
  GradientSyncOptions options;
  options.bucket_mb = 0.004;
  GradientSync sync(comm(), backend, grads, size, options);
  const bool many = comm().world_size() > 1;
  EXPECT_STREQ(sync.method(), many ? "MPI through host memory" : "none");
  for (int round = 0; round < 2; ++round) {  // the same buffers serve every step
    fill(backend, grads, size, comm().rank());
    backend.to_device = backend.to_host = 0;
    run_backward(sync, size, 777);
    // Each bucket crosses once each way (none with one rank: there is nothing to sum).
    EXPECT_EQ(backend.to_host, many ? sync.num_buckets() : 0);
    EXPECT_EQ(backend.to_device, many ? sync.num_buckets() : 0);
    check_sums(backend, grads, size, comm().world_size());
  }
  backend.release(grads);
}

TEST(ZeroShardBoundsTest, ContiguousAlignedAndAsEqualAsBlocksAllow) {
  for (const int64_t size :
       {int64_t{0}, int64_t{1}, int64_t{64}, int64_t{65}, int64_t{1000}, int64_t{123457}}) {
    for (const int world : {1, 2, 3, 4, 7}) {
      SCOPED_TRACE(std::to_string(size) + " floats, " + std::to_string(world) + " ranks");
      const std::vector<int64_t> bounds = zero_shard_bounds(size, world);
      ASSERT_EQ(bounds.size(), static_cast<size_t>(world) + 1);
      EXPECT_EQ(bounds.front(), 0);
      EXPECT_EQ(bounds.back(), size);
      const int64_t blocks = (size + kShardAlignment - 1) / kShardAlignment;
      for (int rank = 0; rank < world; ++rank) {
        EXPECT_LE(bounds[rank], bounds[rank + 1]);
        EXPECT_EQ(bounds[rank] % kShardAlignment == 0 || bounds[rank] == size, true);
        // floor(blocks / world) blocks or one more (the last block may end short).
        const int64_t shard_blocks =
            (bounds[rank + 1] - bounds[rank] + kShardAlignment - 1) / kShardAlignment;
        EXPECT_GE(shard_blocks, blocks / world);
        EXPECT_LE(shard_blocks, blocks / world + 1);
      }
    }
  }
  EXPECT_EQ(zero_shard_bounds(256, 4), (std::vector<int64_t>{0, 64, 128, 192, 256}));
  EXPECT_EQ(zero_shard_bounds(200, 2), (std::vector<int64_t>{0, 128, 200}));
  EXPECT_EQ(zero_shard_bounds(200, 3), (std::vector<int64_t>{0, 64, 128, 200}));
  EXPECT_THROW(zero_shard_bounds(10, 0), std::invalid_argument);
  EXPECT_THROW(zero_shard_bounds(-1, 2), std::invalid_argument);
}

TEST(ZeroShardBoundsTest, APieceIsWhereARangeMeetsAShard) {
  const std::vector<int64_t> bounds = {0, 64, 128, 200};
  EXPECT_EQ(shard_piece(bounds, 1, 50, 150).first, 64);
  EXPECT_EQ(shard_piece(bounds, 1, 50, 150).last, 128);
  EXPECT_EQ(shard_piece(bounds, 2, 50, 150).first, 128);
  EXPECT_EQ(shard_piece(bounds, 2, 50, 150).last, 150);
  EXPECT_TRUE(shard_piece(bounds, 0, 64, 100).empty());
}

// ZeRO-1: after backward each rank holds the sums of its own shard; the parameters' shards, each
// filled in by its owner only, are gathered to every rank.
void check_zero_sync(Backend& backend) {
  const int64_t size = 10000;
  const int world = comm().world_size();
  auto* grads = static_cast<float*>(backend.allocate(size * sizeof(float)));
  auto* params = static_cast<float*>(backend.allocate(size * sizeof(float)));
  fill(backend, grads, size, comm().rank());
  GradientSyncOptions options;
  options.bucket_mb = 0.004;  // buckets that straddle the shards
  options.zero = true;
  GradientSync sync(comm(), backend, grads, size, options);
  const std::vector<int64_t>& bounds = sync.shard_bounds();
  EXPECT_EQ(bounds, zero_shard_bounds(size, world));
  run_backward(sync, size, 777);
  std::vector<float> host(size);
  backend.copy_to_host(host.data(), grads, size * sizeof(float));
  const int me = comm().rank();
  for (int64_t i = bounds[me]; i < bounds[me + 1]; ++i) {
    ASSERT_EQ(host[i], expected_sum(world, i)) << "element " << i;
  }
  std::vector<float> mine(size, -7.f);
  for (int64_t i = bounds[me]; i < bounds[me + 1]; ++i) mine[i] = value(0, i);
  backend.copy_to_device(params, mine.data(), size * sizeof(float));
  sync.gather_parameters(params);
  backend.copy_to_host(host.data(), params, size * sizeof(float));
  for (int64_t i = 0; i < size; ++i) ASSERT_EQ(host[i], value(0, i)) << "element " << i;
  backend.release(params);
  backend.release(grads);
}

TEST(GradientSyncTest, ZeroReducesEachShardToItsOwnerAndGathersTheParameters) {
  CpuBackend backend;
  check_zero_sync(backend);
}

TEST(GradientSyncTest, ZeroOnDeviceMemoryGoesThroughHostMemory) {
  DeviceLikeBackend backend;
  check_zero_sync(backend);
}

TEST(GradientSyncOptionsTest, ZeroStageOneShardsTheOptimizer) {
  config::Config config;
  EXPECT_FALSE(gradient_sync_options(config, 4).zero);
  config.mutable_dist()->set_zero_stage(1);
  EXPECT_TRUE(gradient_sync_options(config, 4).zero);
}

TEST(GradientSyncOptionsTest, NcclOnTheGpuWithSeveralRanksOrWhenNamed) {
  config::Config config;
  EXPECT_FALSE(gradient_sync_options(config, 4).nccl);  // cpu
  EXPECT_EQ(gradient_sync_options(config, 4).bucket_mb, 1);
  config.mutable_train()->set_backend("cuda");
  EXPECT_TRUE(gradient_sync_options(config, 4).nccl);
  EXPECT_FALSE(gradient_sync_options(config, 1).nccl);        // one rank sums nothing
  EXPECT_EQ(gradient_sync_options(config, 4).bucket_mb, 25);  // NCCL likes larger buckets
  config.mutable_dist()->set_bucket_mb(2);
  EXPECT_EQ(gradient_sync_options(config, 4).bucket_mb, 2);
  config.mutable_dist()->set_backend(config::NCCL);
  EXPECT_TRUE(gradient_sync_options(config, 1).nccl);  // named: runs even alone
  config.mutable_dist()->set_backend(config::MPI);
  EXPECT_FALSE(gradient_sync_options(config, 4).nccl);
  config.mutable_dist()->set_timeout_s(7);
  EXPECT_EQ(gradient_sync_options(config, 4).timeout_s, 7);
}

TEST(StagedAllReduceTest, ABucketComesBackSummedIntoItsOwnPlace) {
  DeviceLikeBackend backend;
  const int64_t size = 300;
  auto* grads = static_cast<float*>(backend.allocate(size * sizeof(float)));
  fill(backend, grads, size, comm().rank());
  StagedAllReduce staged(comm(), backend, grads, size);
  // Two buckets in flight at once, completed in the opposite order.
  auto upper = staged.start(grads + 200, 100, "upper bucket");
  auto lower = staged.start(grads + 50, 100, "lower bucket");
  staged.wait(*lower);
  staged.wait(*upper);
  std::vector<float> host(size);
  backend.copy_to_host(host.data(), grads, size * sizeof(float));
  for (int64_t i = 0; i < size; ++i) {
    const bool summed = (i >= 50 && i < 150) || i >= 200;
    EXPECT_EQ(host[i], summed ? expected_sum(comm().world_size(), i) : value(comm().rank(), i))
        << "element " << i;
  }
  backend.release(grads);
}

TEST(StagedAllReduceTest, ABucketOutsideTheBufferIsRefused) {
  DeviceLikeBackend backend;
  std::vector<float> buffer(100);
  StagedAllReduce staged(comm(), backend, buffer.data() + 10, 80);
  EXPECT_THROW(staged.start(buffer.data() + 60, 40, "past the end"), std::logic_error);
  EXPECT_THROW(staged.start(buffer.data() + 5, 10, "before the start"), std::logic_error);
}

// The path of the key norms follows the gradients': NCCL on the device exactly when the
// gradients go through NCCL (cuda with dist.backend NCCL, or the default with several ranks).
KeyNormPath path_for(const std::string& backend, config::DistBackend dist, int world_size) {
  config::Config config;
  config.mutable_train()->set_backend(backend);
  config.mutable_dist()->set_backend(dist);
  return key_norm_path(gradient_sync_options(config, world_size));
}

TEST(KeyNormReducerTest, TheDevicePathIsChosenForCudaWithNcclOnly) {
  using config::DIST_BACKEND_DEFAULT;
  using config::MPI;
  using config::NCCL;
  for (int world : {1, 2, 8}) {
    SCOPED_TRACE(std::to_string(world) + " ranks");
    EXPECT_EQ(path_for("cuda", NCCL, world), KeyNormPath::kDevice);
    EXPECT_EQ(path_for("cuda", MPI, world), KeyNormPath::kHost);
    EXPECT_EQ(path_for("cpu", MPI, world), KeyNormPath::kHost);
    EXPECT_EQ(path_for("cpu", DIST_BACKEND_DEFAULT, world), KeyNormPath::kHost);
    // The default on cuda is NCCL when there is something to sum.
    EXPECT_EQ(path_for("cuda", DIST_BACKEND_DEFAULT, world),
              world > 1 ? KeyNormPath::kDevice : KeyNormPath::kHost);
  }
}

// The host path: the norms are copied out of "device" memory once, then summed by MPI.
TEST(KeyNormReducerTest, TheHostPathCopiesOnceAndSumsOverTheRanks) {
  DeviceLikeBackend backend;
  GradientSyncOptions options;  // MPI
  KeyNormReducer reducer(comm(), options, /*shared_nccl_sum=*/nullptr, "test key-norm sum");
  EXPECT_EQ(reducer.path(), KeyNormPath::kHost);
  EXPECT_STREQ(reducer.method(), comm().world_size() > 1 ? "MPI" : "none");
  const int count = 5;
  auto* norms = static_cast<float*>(backend.allocate(count * sizeof(float)));
  fill(backend, norms, count, comm().rank());
  const int copies_before = backend.to_host;
  std::vector<float> sums(count, -1.f);
  reducer.sum_to_host(backend, norms, count, sums.data());
  EXPECT_EQ(backend.to_host, copies_before + 1);
  for (int i = 0; i < count; ++i) EXPECT_EQ(sums[i], expected_sum(comm().world_size(), i)) << i;
  EXPECT_EQ(reducer.totals().calls, 1);
  EXPECT_GE(reducer.totals().seconds, 0.0);
  reducer.reset_totals();
  EXPECT_EQ(reducer.totals().calls, 0);
  backend.release(norms);
}

}  // namespace
}  // namespace dgqa
