// When each scheme recomputes its allocation, and what it keeps between steps (design 3.2-3.3).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
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
    GroupAllocator allocator(model_config(s), /*layer=*/0, /*seed=*/0);
    EXPECT_FALSE(allocator.needs_key_norms(train(0)));
    EXPECT_FALSE(allocator.needs_key_norms(eval()));
    allocator.choose(train(0), {});
    EXPECT_EQ(allocator.active_allocation(), (std::vector<int>{2, 2, 2}));
  }
}

TEST(GroupAllocatorTest, KdgqaRecomputesEveryForward) {
  GroupAllocator allocator(model_config(AttentionScheme::kKDGQA), /*layer=*/0, /*seed=*/0);
  EXPECT_TRUE(allocator.needs_key_norms(train(1)));
  EXPECT_TRUE(allocator.needs_key_norms(eval()));
  allocator.choose(train(1), {4.f, 1.f, 1.f});
  EXPECT_EQ(allocator.active_allocation(), kdgqa_allocation({4.f, 1.f, 1.f}, 6));
  allocator.choose(eval(), {1.f, 1.f, 4.f});
  EXPECT_EQ(allocator.active_allocation(), kdgqa_allocation({1.f, 1.f, 4.f}, 6));
}

TEST(GroupAllocatorTest, DgqaUpdatesOnlyOnWindowSteps) {
  GroupAllocator allocator(model_config(AttentionScheme::kDGQA_EMA, 3), /*layer=*/0, /*seed=*/0);
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
  GroupAllocator allocator(model_config(AttentionScheme::kDGQA_DIFF, 3), /*layer=*/0, /*seed=*/0);
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
  GroupAllocator frozen(model_config(AttentionScheme::kDGQA_DIFF), /*layer=*/0, /*seed=*/0);
  frozen.choose(train(0), {1.f, 5.f, 1.f});
  const std::vector<int> trained = frozen.allocation();
  const std::vector<float> cache = frozen.cache();
  EXPECT_FALSE(frozen.needs_key_norms(eval()));
  frozen.choose(eval(), {});
  EXPECT_EQ(frozen.active_allocation(), trained);

  ModelConfig per_batch_config = model_config(AttentionScheme::kDGQA_DIFF);
  per_batch_config.dgqa_eval = DgqaEvalMode::kPerBatch;
  GroupAllocator per_batch(per_batch_config, /*layer=*/0, /*seed=*/0);
  per_batch.choose(train(0), {1.f, 5.f, 1.f});
  ASSERT_TRUE(per_batch.needs_key_norms(eval()));
  per_batch.choose(eval(), {9.f, 1.f, 1.f});
  EXPECT_EQ(per_batch.active_allocation(),
            dgqa_update(DgqaKind::kDiff, {9.f, 1.f, 1.f}, cache, 0.9f, 3, 6).allocation);
  EXPECT_EQ(per_batch.allocation(), trained);
  EXPECT_EQ(per_batch.cache(), cache);
}

// dgqa_eval PER_BATCH_UPDATE keeps what an evaluation batch decided, as the paper's code does:
// the allocation, and the batch's norms as the cache.
TEST(GroupAllocatorTest, DgqaPerBatchUpdateKeepsTheEvaluationState) {
  ModelConfig config = model_config(AttentionScheme::kDGQA_DIFF);
  config.dgqa_eval = DgqaEvalMode::kPerBatchUpdate;
  GroupAllocator allocator(config, /*layer=*/0, /*seed=*/0);
  allocator.choose(train(0), {3.f, 6.f, 3.f});  // cache (3, 6, 3) / 3 = (1, 2, 1)
  ASSERT_TRUE(allocator.needs_key_norms(eval()));
  // Scores |cache - norms| = (8, 1, 0), quotas (16/3, 2/3, 0), rounded (5, 1, 0).
  allocator.choose(eval(), {9.f, 1.f, 1.f});
  EXPECT_EQ(allocator.active_allocation(), (std::vector<int>{5, 1, 0}));
  EXPECT_EQ(allocator.allocation(), (std::vector<int>{5, 1, 0}));
  EXPECT_EQ(allocator.cache(), (std::vector<float>{9.f, 1.f, 1.f}));
  allocator.choose(train(1), {});  // not a window step: training goes on with it
  EXPECT_EQ(allocator.active_allocation(), (std::vector<int>{5, 1, 0}));
}

// dgqa_window_counter EPOCH_STEP: the window counts the steps of the epoch, so the first step
// of every epoch is a window step.
TEST(GroupAllocatorTest, DgqaEpochStepCounterRestartsEachEpoch) {
  ModelConfig config = model_config(AttentionScheme::kDGQA_EMA, 3);
  config.dgqa_window_counter = DgqaWindowCounter::kEpochStep;
  GroupAllocator allocator(config, /*layer=*/0, /*seed=*/0);
  auto at = [](int64_t step, int64_t epoch_step) {
    ForwardContext context = train(step);
    context.epoch_step = epoch_step;
    return context;
  };
  EXPECT_TRUE(allocator.needs_key_norms(at(0, 0)));
  EXPECT_FALSE(allocator.needs_key_norms(at(3, 1)));  // a global window step, not an epoch one
  EXPECT_TRUE(allocator.needs_key_norms(at(4, 0)));
  EXPECT_TRUE(allocator.needs_key_norms(at(7, 3)));
  EXPECT_THROW(allocator.needs_key_norms(train(3)), std::logic_error) << "no epoch step given";
  GroupAllocator global(model_config(AttentionScheme::kDGQA_EMA, 3), /*layer=*/0, /*seed=*/0);
  EXPECT_TRUE(global.needs_key_norms(at(3, 1)));
}

// dgqa_fixup RANDOM_INDEX: rounding that misses H is corrected at drawn K/V heads. Scores
// (1, 1, 1) on 7 heads give quotas 7/3 each, rounded to (2, 2, 2): one head short, so exactly
// one entry gains it. The draws depend on the seed, the step and the layer only.
TEST(GroupAllocatorTest, DgqaRandomIndexFixupIsKeyedBySeedStepAndLayer) {
  ModelConfig config = model_config(AttentionScheme::kDGQA_EMA, 1);
  config.num_heads = 7;
  config.dgqa_fixup = DgqaFixup::kRandomIndex;
  auto pick = [&](int layer, uint64_t seed, int64_t step) {
    GroupAllocator allocator(config, layer, seed);
    allocator.choose(train(step), {1.f, 1.f, 1.f});
    const std::vector<int>& a = allocator.active_allocation();
    EXPECT_EQ(a[0] + a[1] + a[2], 7);
    for (int g = 0; g < 3; ++g) {
      if (a[g] == 3) return g;
    }
    ADD_FAILURE() << "no entry gained the missing head";
    return -1;
  };
  std::vector<int> picks;
  for (int layer = 0; layer < 12; ++layer) picks.push_back(pick(layer, 7, 5));
  EXPECT_EQ(picks, [&] {
    std::vector<int> again;
    for (int layer = 0; layer < 12; ++layer) again.push_back(pick(layer, 7, 5));
    return again;
  }());
  std::sort(picks.begin(), picks.end());
  EXPECT_NE(picks.front(), picks.back()) << "twelve layers drew the same index";
  std::vector<int> by_step;
  for (int64_t step = 0; step < 12; ++step) by_step.push_back(pick(0, 7, step));
  std::sort(by_step.begin(), by_step.end());
  EXPECT_NE(by_step.front(), by_step.back()) << "twelve steps drew the same index";
  // The largest-remainder rule gives the first index instead.
  config.dgqa_fixup = DgqaFixup::kLargestRemainder;
  GroupAllocator deterministic(config, 0, 7);
  deterministic.choose(train(0), {1.f, 1.f, 1.f});
  EXPECT_EQ(deterministic.active_allocation(), (std::vector<int>{3, 2, 2}));
}

TEST(GroupAllocatorTest, SetStateRejectsImpossibleAllocations) {
  GroupAllocator allocator(model_config(AttentionScheme::kDGQA_EMA), /*layer=*/0, /*seed=*/0);
  EXPECT_THROW(allocator.set_state({0.f, 0.f, 0.f}, {3, 3, 1}), std::exception);
  EXPECT_THROW(allocator.set_state({0.f, 0.f}, {3, 3}), std::exception);
  EXPECT_THROW(allocator.set_state({0.f, 0.f, 0.f}, {7, -1, 0}), std::exception);
  allocator.set_state({1.f, 2.f, 3.f}, {6, 0, 0});
  EXPECT_EQ(allocator.active_allocation(), (std::vector<int>{6, 0, 0}));
}

// The counts come from a file as I64: they are checked in 64 bits before they become ints. Once
// 2^32 + 2 was narrowed to 2, and two counts of 2^31 - 1 wrapped the int sum round to H.
TEST(GroupAllocatorTest, SetStateChecksCountsIn64Bits) {
  GroupAllocator allocator(model_config(AttentionScheme::kDGQA_DIFF), /*layer=*/0,
                           /*seed=*/0);  // H 6, G 3
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
