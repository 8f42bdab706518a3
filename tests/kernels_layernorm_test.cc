// layernorm_forward / layernorm_backward against a plain loop and finite differences.
#include "kernels/cpu/layernorm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/gradient_check.h"
#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

using tests::expect_accumulated;
using tests::numerical_gradient;
using tests::random_vector;
using tests::to_double;
using tests::weighted_sum;

constexpr float kEps = 1e-6f;

struct Reference {
  std::vector<double> out, mean, rstd;
};

// torch.nn.LayerNorm in double: biased variance over the last dimension.
Reference reference_layer_norm(const std::vector<double>& inp, const std::vector<double>& weight,
                               const std::vector<double>& bias, int N, int C) {
  Reference r{std::vector<double>(inp.size()), std::vector<double>(N), std::vector<double>(N)};
  for (int n = 0; n < N; ++n) {
    double mean = 0.0, variance = 0.0;
    for (int c = 0; c < C; ++c) mean += inp[n * C + c] / C;
    for (int c = 0; c < C; ++c) variance += (inp[n * C + c] - mean) * (inp[n * C + c] - mean) / C;
    r.mean[n] = mean;
    r.rstd[n] = 1.0 / std::sqrt(variance + kEps);
    for (int c = 0; c < C; ++c) {
      r.out[n * C + c] = (inp[n * C + c] - mean) * r.rstd[n] * weight[c] + bias[c];
    }
  }
  return r;
}

struct Shape {
  int N, C;
};

class LayerNormTest : public ::testing::TestWithParam<Shape> {};

TEST_P(LayerNormTest, ForwardMatchesReference) {
  const auto [N, C] = GetParam();
  // An offset and a scale per row, so that the mean and the variance matter.
  auto inp = random_vector(N * C, 1, -2.f, 2.f);
  for (int i = 0; i < N * C; ++i) inp[i] = inp[i] * (1 + i / C) + 3.f;
  const auto weight = random_vector(C, 2, 0.5f, 1.5f);
  const auto bias = random_vector(C, 3);
  std::vector<float> out(N * C), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), N,
                    C, kEps);
  const Reference expected =
      reference_layer_norm(to_double(inp), to_double(weight), to_double(bias), N, C);
  for (int n = 0; n < N; ++n) {
    EXPECT_NEAR(mean[n], expected.mean[n], 1e-5 * (1 + std::fabs(expected.mean[n]))) << n;
    EXPECT_NEAR(rstd[n], expected.rstd[n], 1e-5 * expected.rstd[n]) << n;
  }
  for (int i = 0; i < N * C; ++i) {
    EXPECT_NEAR(out[i], expected.out[i], 1e-5 * (1 + std::fabs(expected.out[i]))) << i;
  }
}

TEST_P(LayerNormTest, BackwardAccumulatesFiniteDifferenceGradients) {
  const auto [N, C] = GetParam();
  const auto inp = random_vector(N * C, 4, -2.f, 2.f);
  const auto weight = random_vector(C, 5, 0.5f, 1.5f);
  const auto bias = random_vector(C, 6);
  const auto loss_weights = random_vector(N * C, 7);  // loss = sum(out * loss_weights)
  std::vector<float> out(N * C), mean(N), rstd(N);
  layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), N,
                    C, kEps);
  const auto dinp_initial = random_vector(N * C, 8);
  const auto dweight_initial = random_vector(C, 9);
  const auto dbias_initial = random_vector(C, 10);
  auto dinp = dinp_initial, dweight = dweight_initial, dbias = dbias_initial;
  layernorm_backward(dinp.data(), dweight.data(), dbias.data(), loss_weights.data(), inp.data(),
                     weight.data(), mean.data(), rstd.data(), N, C);

  const auto inp_d = to_double(inp), weight_d = to_double(weight), bias_d = to_double(bias);
  auto loss = [&](const std::vector<double>& i, const std::vector<double>& w,
                  const std::vector<double>& b) {
    return weighted_sum(reference_layer_norm(i, w, b, N, C).out, loss_weights);
  };
  expect_accumulated(
      dinp, dinp_initial,
      numerical_gradient([&](const auto& x) { return loss(x, weight_d, bias_d); }, inp_d), "dinp");
  expect_accumulated(
      dweight, dweight_initial,
      numerical_gradient([&](const auto& x) { return loss(inp_d, x, bias_d); }, weight_d),
      "dweight");
  expect_accumulated(
      dbias, dbias_initial,
      numerical_gradient([&](const auto& x) { return loss(inp_d, weight_d, x); }, bias_d), "dbias");
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNormTest,
                         ::testing::Values(Shape{7, 5}, Shape{1, 1}, Shape{3, 2}, Shape{33, 64},
                                           Shape{130, 19}));

}  // namespace
}  // namespace dgqa::cpu
