// The small element-wise and layout kernels against plain loops; the backward passes of the
// token layout against finite differences.
#include "kernels/cpu/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/gradient_check.h"
#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

using tests::random_vector;
using tests::to_double;

TEST(ElementwiseTest, AddInplace) {
  auto x = random_vector(1003, 1);
  const auto x_initial = x;
  const auto y = random_vector(1003, 2);
  add_inplace(x.data(), y.data(), 1003);
  for (int i = 0; i < 1003; ++i) EXPECT_EQ(x[i], x_initial[i] + y[i]) << i;
}

TEST(ElementwiseTest, ScaleInplace) {
  auto x = random_vector(1003, 3);
  const auto x_initial = x;
  scale_inplace(x.data(), -0.375f, 1003);
  for (int i = 0; i < 1003; ++i) EXPECT_EQ(x[i], x_initial[i] * -0.375f) << i;
}

TEST(ElementwiseTest, ScaleSamples) {
  const int B = 3, n = 517;
  const auto in = random_vector(B * n, 5);
  const std::vector<float> scales = {0.f, 1.25f, -3.5f};
  std::vector<float> out(B * n, 7.f);
  scale_samples(out.data(), in.data(), scales.data(), B, n);
  for (int i = 0; i < B * n; ++i) EXPECT_EQ(out[i], in[i] * scales[i / n]) << i;
  auto x = in;  // in place
  scale_samples(x.data(), x.data(), scales.data(), B, n);
  EXPECT_EQ(x, out);
}

TEST(ElementwiseTest, SumSquaresInDouble) {
  const auto x = random_vector(100003, 4);
  double expected = 0.0;
  for (float value : x) expected += double{value} * value;
  EXPECT_NEAR(sum_squares(x.data(), 100003), expected, 1e-9 * expected);
  // 1 followed by 2^22 - 1 squares of 1e-8: a float sum would stall at 1.
  const int n = 1 << 22;
  std::vector<float> tiny(n, 1e-4f);
  tiny[0] = 1.f;
  const double tiny_square = double{1e-4f} * double{1e-4f};
  EXPECT_NEAR(sum_squares(tiny.data(), n), 1.0 + tiny_square * (n - 1), 1e-9);
}

constexpr int B = 2, N = 3, D = 5, T = N + 1;

// x[b, 0] = cls + pos[0]; x[b, 1 + i] = patches[b, i] + pos[1 + i], in double.
std::vector<double> reference_tokens(const std::vector<double>& patches,
                                     const std::vector<double>& cls,
                                     const std::vector<double>& pos) {
  std::vector<double> x(B * T * D);
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      for (int c = 0; c < D; ++c) {
        const double token = t == 0 ? cls[c] : patches[(b * N + t - 1) * D + c];
        x[(b * T + t) * D + c] = token + pos[t * D + c];
      }
    }
  }
  return x;
}

TEST(TokensTest, ForwardMatchesReference) {
  const auto patches = random_vector(B * N * D, 5);
  const auto cls = random_vector(D, 6);
  const auto pos = random_vector(T * D, 7);
  std::vector<float> x(B * T * D);
  tokens_forward(x.data(), patches.data(), cls.data(), pos.data(), B, N, D);
  const auto expected = reference_tokens(to_double(patches), to_double(cls), to_double(pos));
  for (int i = 0; i < B * T * D; ++i) EXPECT_NEAR(x[i], expected[i], 1e-6) << i;
}

TEST(TokensTest, BackwardAccumulatesFiniteDifferenceGradients) {
  const auto dx = random_vector(B * T * D, 8);  // loss = sum(x * dx)
  const auto dpatches_initial = random_vector(B * N * D, 9);
  const auto dcls_initial = random_vector(D, 10);
  const auto dpos_initial = random_vector(T * D, 11);
  auto dpatches = dpatches_initial, dcls = dcls_initial, dpos = dpos_initial;
  tokens_backward(dpatches.data(), dcls.data(), dpos.data(), dx.data(), B, N, D);

  std::vector<double> inputs[3] = {to_double(random_vector(B * N * D, 12)),
                                   to_double(random_vector(D, 13)),
                                   to_double(random_vector(T * D, 14))};
  const std::vector<float>* gradients[3] = {&dpatches, &dcls, &dpos};
  const std::vector<float>* initial[3] = {&dpatches_initial, &dcls_initial, &dpos_initial};
  auto loss = [&]() {
    const auto x = reference_tokens(inputs[0], inputs[1], inputs[2]);
    double sum = 0.0;
    for (size_t i = 0; i < x.size(); ++i) sum += x[i] * dx[i];
    return sum;
  };
  constexpr double kStep = 1e-5;
  for (int which = 0; which < 3; ++which) {
    for (size_t i = 0; i < inputs[which].size(); ++i) {
      const double saved = inputs[which][i];
      inputs[which][i] = saved + kStep;
      const double plus = loss();
      inputs[which][i] = saved - kStep;
      const double minus = loss();
      inputs[which][i] = saved;
      const double expected = (*initial[which])[i] + (plus - minus) / (2 * kStep);
      EXPECT_NEAR((*gradients[which])[i], expected, 1e-5) << "input " << which << " [" << i << "]";
    }
  }
}

TEST(GatherClsTest, ForwardTakesTokenZero) {
  const auto x = random_vector(B * T * D, 15);
  std::vector<float> out(B * D);
  gather_cls_forward(out.data(), x.data(), B, T, D);
  for (int b = 0; b < B; ++b) {
    for (int c = 0; c < D; ++c) EXPECT_EQ(out[b * D + c], x[b * T * D + c]);
  }
}

TEST(GatherClsTest, BackwardAccumulatesIntoTokenZeroOnly) {
  const auto dout = random_vector(B * D, 16);
  const auto dx_initial = random_vector(B * T * D, 17);
  auto dx = dx_initial;
  gather_cls_backward(dx.data(), dout.data(), B, T, D);
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      for (int c = 0; c < D; ++c) {
        const int i = (b * T + t) * D + c;
        const float expected = t == 0 ? dx_initial[i] + dout[b * D + c] : dx_initial[i];
        EXPECT_EQ(dx[i], expected) << "b " << b << " t " << t << " c " << c;
      }
    }
  }
}

}  // namespace
}  // namespace dgqa::cpu
