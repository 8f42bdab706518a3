// gelu_forward / gelu_backward (exact erf form) against double-precision formulas.
#include "kernels/cpu/gelu.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

double reference_gelu(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

// Inputs over the interesting range, with exact zeros and the tails.
std::vector<float> gelu_inputs() {
  auto inputs = tests::random_vector(1001, 1, -6.f, 6.f);
  for (float x : {0.f, -0.f, 1e-3f, -1e-3f, -8.f, 8.f, -3.f, 3.f}) inputs.push_back(x);
  return inputs;
}

// The tolerance also tells the exact form from the tanh approximation (up to 5e-4 apart).
TEST(GeluTest, ForwardMatchesErfForm) {
  const auto inp = gelu_inputs();
  std::vector<float> out(inp.size());
  gelu_forward(out.data(), inp.data(), static_cast<int64_t>(inp.size()));
  for (size_t i = 0; i < inp.size(); ++i) {
    const double expected = reference_gelu(inp[i]);
    EXPECT_NEAR(out[i], expected, 1e-6 * (1 + std::fabs(expected))) << "x = " << inp[i];
  }
}

TEST(GeluTest, BackwardAccumulatesFiniteDifferenceGradient) {
  const auto inp = gelu_inputs();
  const int64_t n = static_cast<int64_t>(inp.size());
  const auto dout = tests::random_vector(inp.size(), 2);
  const auto dinp_initial = tests::random_vector(inp.size(), 3);
  auto dinp = dinp_initial;
  gelu_backward(dinp.data(), inp.data(), dout.data(), n);
  constexpr double kStep = 1e-5;
  for (int64_t i = 0; i < n; ++i) {
    const double slope =
        (reference_gelu(inp[i] + kStep) - reference_gelu(inp[i] - kStep)) / (2 * kStep);
    const double expected = dinp_initial[i] + dout[i] * slope;
    EXPECT_NEAR(dinp[i], expected, 1e-5 * (1 + std::fabs(expected))) << "x = " << inp[i];
  }
}

}  // namespace
}  // namespace dgqa::cpu
