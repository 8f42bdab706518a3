// exp_fast and normal_tail (kernels/cpu/vector_math.h) against the double-precision library.
#include "kernels/cpu/vector_math.h"

#include <gtest/gtest.h>

#include <cmath>

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
