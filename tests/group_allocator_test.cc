// When each scheme recomputes its allocation, and what it keeps between steps (design 3.2-3.3).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "model/allocation.h"
#include "model/group_allocator.h"

namespace dgqa {
namespace {

ModelConfig model_config(AttentionScheme scheme, int window = 3) {
  ModelConfig c;
  c.num_heads = 6;
  c.num_kv_heads = 3;
  c.attention = scheme;
  c.dgqa_window = window;
  return c;
}

ForwardContext train(int64_t step) {
  return ForwardContext{true, step};
}
ForwardContext eval() {
  return ForwardContext{false, 0};
}

TEST(GroupAllocatorTest, FixedSchemesNeverNeedNorms) {
  for (AttentionScheme s : {AttentionScheme::kMHA, AttentionScheme::kGQA, AttentionScheme::kPGQA}) {
    GroupAllocator allocator(model_config(s));
    EXPECT_FALSE(allocator.needs_key_norms(train(0)));
    EXPECT_FALSE(allocator.needs_key_norms(eval()));
    allocator.choose(train(0), {});
    EXPECT_EQ(allocator.active_allocation(), (std::vector<int>{2, 2, 2}));
  }
}

TEST(GroupAllocatorTest, KdgqaRecomputesEveryForward) {
  GroupAllocator allocator(model_config(AttentionScheme::kKDGQA));
  EXPECT_TRUE(allocator.needs_key_norms(train(1)));
  EXPECT_TRUE(allocator.needs_key_norms(eval()));
  allocator.choose(train(1), {4.f, 1.f, 1.f});
  EXPECT_EQ(allocator.active_allocation(), kdgqa_allocation({4.f, 1.f, 1.f}, 6));
  allocator.choose(eval(), {1.f, 1.f, 4.f});
  EXPECT_EQ(allocator.active_allocation(), kdgqa_allocation({1.f, 1.f, 4.f}, 6));
}

TEST(GroupAllocatorTest, DgqaUpdatesOnlyOnWindowSteps) {
  GroupAllocator allocator(model_config(AttentionScheme::kDGQA_EMA, 3));
  const std::vector<float> norms = {4.f, 1.f, 1.f};
  ASSERT_TRUE(allocator.needs_key_norms(train(0)));
  allocator.choose(train(0), norms);
  const DgqaUpdate expected = dgqa_update(DgqaKind::kEma, norms, {0.f, 0.f, 0.f}, 0.9f, 3, 6);
  EXPECT_EQ(allocator.active_allocation(), expected.allocation);
  EXPECT_EQ(allocator.allocation(), expected.allocation);
  EXPECT_EQ(allocator.cache(), expected.new_cache);
  EXPECT_NE(expected.allocation, (std::vector<int>{2, 2, 2}));  // the test means something

  for (int64_t step : {1, 2}) {
    EXPECT_FALSE(allocator.needs_key_norms(train(step)));
    allocator.choose(train(step), {});
    EXPECT_EQ(allocator.active_allocation(), expected.allocation);
  }
  EXPECT_TRUE(allocator.needs_key_norms(train(3)));
}

// Gradient accumulation (docs/design.md §3.3): a window step decides in its first micro-batch;
// its later micro-batches measure nothing and use that allocation, the cache left as it was.
TEST(GroupAllocatorTest, DgqaDecidesInTheFirstMicroBatchOfAWindowStep) {
  GroupAllocator allocator(model_config(AttentionScheme::kDGQA_DIFF, 3));
  const std::vector<float> norms = {4.f, 1.f, 1.f};
  allocator.choose(train(3), norms);
  const DgqaUpdate expected = dgqa_update(DgqaKind::kDiff, norms, {0.f, 0.f, 0.f}, 0.9f, 3, 6);
  ASSERT_NE(expected.allocation, (std::vector<int>{2, 2, 2}));  // the test means something
  for (int micro_batch : {1, 2}) {
    ForwardContext context = train(3);
    context.micro_batch = micro_batch;
    EXPECT_FALSE(allocator.needs_key_norms(context));
    allocator.choose(context, {});
    EXPECT_EQ(allocator.active_allocation(), expected.allocation);
    EXPECT_EQ(allocator.cache(), expected.new_cache);
  }
}

TEST(GroupAllocatorTest, DgqaEvaluationNeverChangesTheTrainingState) {
  GroupAllocator frozen(model_config(AttentionScheme::kDGQA_DIFF));
  frozen.choose(train(0), {1.f, 5.f, 1.f});
  const std::vector<int> trained = frozen.allocation();
  const std::vector<float> cache = frozen.cache();
  EXPECT_FALSE(frozen.needs_key_norms(eval()));
  frozen.choose(eval(), {});
  EXPECT_EQ(frozen.active_allocation(), trained);

  ModelConfig per_batch_config = model_config(AttentionScheme::kDGQA_DIFF);
  per_batch_config.dgqa_eval = DgqaEvalMode::kPerBatch;
  GroupAllocator per_batch(per_batch_config);
  per_batch.choose(train(0), {1.f, 5.f, 1.f});
  ASSERT_TRUE(per_batch.needs_key_norms(eval()));
  per_batch.choose(eval(), {9.f, 1.f, 1.f});
  EXPECT_EQ(per_batch.active_allocation(),
            dgqa_update(DgqaKind::kDiff, {9.f, 1.f, 1.f}, cache, 0.9f, 3, 6).allocation);
  EXPECT_EQ(per_batch.allocation(), trained);
  EXPECT_EQ(per_batch.cache(), cache);
}

TEST(GroupAllocatorTest, SetStateRejectsImpossibleAllocations) {
  GroupAllocator allocator(model_config(AttentionScheme::kDGQA_EMA));
  EXPECT_THROW(allocator.set_state({0.f, 0.f, 0.f}, {3, 3, 1}), std::exception);
  EXPECT_THROW(allocator.set_state({0.f, 0.f}, {3, 3}), std::exception);
  EXPECT_THROW(allocator.set_state({0.f, 0.f, 0.f}, {7, -1, 0}), std::exception);
  allocator.set_state({1.f, 2.f, 3.f}, {6, 0, 0});
  EXPECT_EQ(allocator.active_allocation(), (std::vector<int>{6, 0, 0}));
}

// The counts come from a file as I64: they are checked in 64 bits before they become ints. Once
// 2^32 + 2 was narrowed to 2, and two counts of 2^31 - 1 wrapped the int sum round to H.
TEST(GroupAllocatorTest, SetStateChecksCountsIn64Bits) {
  GroupAllocator allocator(model_config(AttentionScheme::kDGQA_DIFF));  // H 6, G 3
  const int64_t int_max = 2147483647;
  const std::vector<std::pair<std::vector<int64_t>, std::string>> cases = {
      {{(int64_t{1} << 32) + 2, 2, 2}, "count 4294967298 of K/V head 0 is outside [0, 6]"},
      {{int_max, int_max, 8}, "count 2147483647 of K/V head 0 is outside [0, 6]"},
      {{7, -1, 0}, "count 7 of K/V head 0 is outside [0, 6]"},
      {{0, -1, 7}, "count -1 of K/V head 1"},
      {{2, 2, 1}, "sums to 5, expected 6"},
  };
  for (const auto& [allocation, detail] : cases) {
    try {
      allocator.set_state({0.f, 0.f, 0.f}, allocation);
      ADD_FAILURE() << "accepted " << detail;
    } catch (const InputError& error) {
      EXPECT_NE(std::string(error.what()).find(detail), std::string::npos) << error.what();
    }
  }
  EXPECT_EQ(allocator.allocation(), (std::vector<int>{2, 2, 2})) << "a refused state was kept";
  EXPECT_THROW(allocator.set_state({0.f, NAN, 0.f}, {2, 2, 2}), InputError);
}

}  // namespace
}  // namespace dgqa
