// verify_replicas (trainer/replicas.h) names what differs between the ranks: the weights, or a
// layer's DGQA cache or allocation. CTest runs this program plainly and as an MPI job of 2 ranks
// (replicas_2ranks); the tests that make the last rank differ need 2 ranks and skip otherwise.
#include "trainer/replicas.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "model/vit.h"
#include "tests/communicator_environment.h"
#include "tests/model_runs.h"

namespace dgqa {
namespace {

using tests::comm;

class ReplicasTest : public ::testing::Test {
 protected:
  // The same DGQA model on every rank (the same seed).
  ReplicasTest()
      : backend_(make_backend("cpu")),
        model_(tests::small_test_model(AttentionScheme::kDGQA_EMA), *backend_, 2, 7) {}

  bool last_rank() const { return comm().rank() == comm().world_size() - 1; }

  // The message of verify_replicas on every rank ("" if it passes).
  std::string verify() {
    try {
      verify_replicas(model_, comm(), "in the test");
    } catch (const std::runtime_error& error) {
      return error.what();
    }
    return "";
  }

  std::unique_ptr<Backend> backend_;
  VisionTransformer model_;
};

TEST_F(ReplicasTest, IdenticalReplicasPass) {
  EXPECT_EQ(verify(), "");
}

TEST_F(ReplicasTest, ADivergedDgqaCacheIsNamedWithItsLayerAndRank) {
  if (comm().world_size() < 2) GTEST_SKIP() << "needs 2 ranks (replicas_2ranks)";
  GroupAllocator& allocator = model_.allocators()[1];
  std::vector<float> cache = allocator.cache();
  if (last_rank()) cache[0] += 0.5f;
  const std::vector<int>& counts = allocator.allocation();
  allocator.set_state(cache, std::vector<int64_t>(counts.begin(), counts.end()));
  const std::string last = std::to_string(comm().world_size() - 1);
  EXPECT_EQ(verify(),
            "the ranks' replicas differ in the test: the DGQA cache of layer 1 on "
            "rank(s) " +
                last + " disagree with rank 0's");
}

TEST_F(ReplicasTest, ADivergedAllocationAndWeightsAreNamed) {
  if (comm().world_size() < 2) GTEST_SKIP() << "needs 2 ranks (replicas_2ranks)";
  GroupAllocator& allocator = model_.allocators()[0];
  std::vector<int64_t> counts(allocator.allocation().begin(), allocator.allocation().end());
  ASSERT_EQ(counts.size(), 2u);  // 4 query heads over 2 K/V heads
  if (last_rank())
    counts = counts[0] == 1 ? std::vector<int64_t>{2, 2} : std::vector<int64_t>{1, 3};
  allocator.set_state(allocator.cache(), counts);
  std::vector<float> params = model_.params_to_host();
  if (last_rank()) params.back() += 1.f;
  model_.params_from_host(params);
  const std::string last = std::to_string(comm().world_size() - 1);
  EXPECT_EQ(verify(), "the ranks' replicas differ in the test: the weights of rank(s) " + last +
                          "; the allocation of layer 0 on rank(s) " + last +
                          " disagree with rank 0's");
}

}  // namespace
}  // namespace dgqa
