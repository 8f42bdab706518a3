// weight_ema_update against torch.lerp(ema, params, weight) written out in double: both of its
// branches (weight below 0.5 and from 0.5 on), and the exact ends (weight 1 copies, 0 keeps).
#include "kernels/cpu/weight_ema.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

TEST(WeightEmaKernelTest, UpdateIsLerpTowardsTheWeights) {
  const int n = 1001;
  const std::vector<float> params = tests::random_vector(n, 2);
  for (float weight : {0.001f, 0.37f, 0.5f, 0.63f, 0.999f}) {
    std::vector<float> ema = tests::random_vector(n, 3);
    const std::vector<float> before = ema;
    weight_ema_update(ema.data(), params.data(), n, weight);
    for (int i = 0; i < n; ++i) {
      const double expected = before[i] + double{weight} * (double{params[i]} - before[i]);
      ASSERT_NEAR(ema[i], expected, 3e-7) << "weight " << weight << " i " << i;
    }
  }
}

TEST(WeightEmaKernelTest, WeightOneCopiesAndZeroKeeps) {
  const int n = 257;
  const std::vector<float> params = tests::random_vector(n, 4);
  const std::vector<float> start = tests::random_vector(n, 5);
  std::vector<float> ema = start;
  weight_ema_update(ema.data(), params.data(), n, 0.f);
  EXPECT_EQ(ema, start);
  weight_ema_update(ema.data(), params.data(), n, 1.f);
  EXPECT_EQ(ema, params);
}

}  // namespace
}  // namespace dgqa::cpu
