// AdamW over a shard of the flat buffer (trainer/optimizer.h, ZeRO-1: docs/design.md §5.11):
// shards that cut tensors apart, each updated by its own AdamW with its own moments, give the
// parameters and moments of one AdamW over the whole buffer, bit for bit, with the per-tensor
// rules (timm's no-decay rule and layer-wise LR decay) in force.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "model/param_layout.h"
#include "tests/model_runs.h"
#include "tests/test_util.h"
#include "trainer/optimizer.h"
#include "trainer/zero_shards.h"

namespace dgqa {
namespace {

AdamWSettings fine_tuning_settings() {
  AdamWSettings settings;
  settings.no_decay_1d = true;
  settings.layer_decay = 0.75f;
  return settings;
}

TEST(ShardedAdamWTest, ShardsThatCutTensorsUpdateAsTheWholeBufferDoes) {
  CpuBackend backend;
  const ParamLayout layout(tests::small_test_model(AttentionScheme::kGQA));
  const int64_t size = layout.total_size();
  const AdamWSettings settings = fine_tuning_settings();
  // Three shards of ZeRO-1's split, and two cut at an odd place inside a tensor.
  for (const std::vector<int64_t>& bounds :
       {zero_shard_bounds(size, 3), std::vector<int64_t>{0, size / 2 + 5, size}}) {
    AdamW whole(backend, layout, settings);
    std::vector<std::unique_ptr<AdamW>> shards;
    for (size_t i = 0; i + 1 < bounds.size(); ++i) {
      shards.push_back(std::make_unique<AdamW>(backend, layout, settings,
                                               OptimizerShard{bounds[i], bounds[i + 1], nullptr}));
    }
    std::vector<float> expected = tests::random_vector(size, 1);
    std::vector<float> sharded = expected;
    for (uint32_t step = 0; step < 3; ++step) {
      std::vector<float> grads = tests::random_vector(size, 10 + step);
      std::vector<float> shard_grads = grads;
      whole.step(expected.data(), grads.data(), 1e-2f);
      for (auto& shard : shards) shard->step(sharded.data(), shard_grads.data(), 1e-2f);
    }
    EXPECT_TRUE(sharded == expected);
    const std::vector<float> first = whole.first_moments_to_host();
    const std::vector<float> second = whole.second_moments_to_host();
    for (const auto& shard : shards) {
      const std::vector<float> own(first.begin() + shard->shard_begin(),
                                   first.begin() + shard->shard_end());
      const std::vector<float> own_second(second.begin() + shard->shard_begin(),
                                          second.begin() + shard->shard_end());
      EXPECT_TRUE(shard->first_moments_to_host() == own) << "from " << shard->shard_begin();
      EXPECT_TRUE(shard->second_moments_to_host() == own_second) << "from " << shard->shard_begin();
    }
  }
}

TEST(ShardedAdamWTest, AShardOutsideTheBufferOrMomentsOfAnotherSizeAreRefused) {
  CpuBackend backend;
  const ParamLayout layout(tests::small_test_model(AttentionScheme::kGQA));
  const int64_t size = layout.total_size();
  EXPECT_THROW(AdamW(backend, layout, {}, OptimizerShard{0, size + 1, nullptr}),
               std::invalid_argument);
  EXPECT_THROW(AdamW(backend, layout, {}, OptimizerShard{10, 5, nullptr}), std::invalid_argument);
  AdamW shard(backend, layout, {}, OptimizerShard{64, 128, nullptr});
  EXPECT_EQ(shard.first_moments_to_host().size(), 64u);
  EXPECT_THROW(shard.restore(std::vector<float>(65), std::vector<float>(65), 1), std::logic_error);
}

}  // namespace
}  // namespace dgqa
