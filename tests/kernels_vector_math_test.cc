// exp_fast and normal_tail (kernels/cpu/vector_math.h) against the double-precision library.
#include "kernels/cpu/vector_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace dgqa::cpu {
namespace {

TEST(VectorMathTest, ExpWithinTwoUlpOverItsRange) {
  double worst = 0;
  for (double x = -87.0; x <= 88.0; x += 0.001) {
    const double exact = std::exp(static_cast<double>(static_cast<float>(x)));
    const double error = std::fabs(exp_fast(static_cast<float>(x)) - exact) / exact;
    worst = std::fmax(worst, error);
  }
  EXPECT_LT(worst, 2 * 5.96e-8) << "largest relative error";  // 2^-24 is half an ulp
  EXPECT_EQ(exp_fast(0.f), 1.f);
  EXPECT_GT(exp_fast(-1000.f), 0.f);  // clamped, never 0 or a denormal
  EXPECT_TRUE(std::isfinite(exp_fast(1000.f)));
}

// exp_fast as it was before NaN had a defined path: the same bits for every non-NaN input.
float exp_fast_before_nan_path(float x) {
  x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
  const float r2 = r * r;
  const float q = (0.5f + r * (1.f / 6.f)) +
                  r2 * ((1.f / 24.f + r * (1.f / 120.f)) + r2 * (1.f / 720.f + r * (1.f / 5040.f)));
  const float p = 1.f + (r + r2 * q);
  const int32_t exponent_bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &exponent_bits, sizeof(scale));
  return p * scale;
}

TEST(VectorMathTest, ExpKeepsItsBitsForEveryNonNanInput) {
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFu; bits += 251) {  // both signs, every exponent
    const uint32_t word = static_cast<uint32_t>(bits);
    float x;
    std::memcpy(&x, &word, sizeof(x));
    if (std::isnan(x)) continue;
    const float now = exp_fast(x), before = exp_fast_before_nan_path(x);
    ASSERT_EQ(std::memcmp(&now, &before, sizeof(now)), 0) << "x = " << x;
  }
  const float infinity = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_fast(infinity), exp_fast_before_nan_path(infinity));
  EXPECT_EQ(exp_fast(-infinity), exp_fast_before_nan_path(-infinity));
}

// NaN goes through as NaN (no conversion of NaN to an integer), also in a vectorised loop.
TEST(VectorMathTest, ExpOfNanIsNan) {
  EXPECT_TRUE(std::isnan(exp_fast(std::numeric_limits<float>::quiet_NaN())));
  std::vector<float> x(64, 1.f), y(64);
  for (size_t i = 0; i < x.size(); i += 3) x[i] = std::numeric_limits<float>::quiet_NaN();
#pragma omp simd
  for (size_t i = 0; i < x.size(); ++i) y[i] = exp_fast(x[i]);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(std::isnan(y[i]), i % 3 == 0) << i;
    if (i % 3 != 0) {
      EXPECT_EQ(y[i], exp_fast(1.f));
    }
  }
}

// The relative error allowed grows as z^2/2: float's rounding of z*z (the exponent) is
// amplified by the exponential, for this function as for expf(-0.5f * z * z).
TEST(VectorMathTest, NormalTailMatchesErfc) {
  for (double z = 0; z <= 12.0; z += 0.0005) {
    const float zf = static_cast<float>(z);
    const double allowed = 4e-7 * (1 + 0.5 * zf * zf);
    const double exact_tail = 0.5 * std::erfc(zf / std::sqrt(2.0));
    const double exact_gaussian = std::exp(-0.5 * zf * zf);
    float gaussian = 0;
    const double error = std::fabs(normal_tail(zf, &gaussian) - exact_tail) / exact_tail;
    ASSERT_LT(error, allowed) << "z = " << zf;
    const double single_exp_error = std::fabs(normal_tail(zf) - exact_tail) / exact_tail;
    ASSERT_LT(single_exp_error, allowed) << "z = " << zf << " (one exp)";
    ASSERT_LT(std::fabs(gaussian - exact_gaussian) / exact_gaussian, allowed) << "z = " << zf;
  }
}

}  // namespace
}  // namespace dgqa::cpu
