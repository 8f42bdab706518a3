// matmul_forward / matmul_backward against plain loops and finite differences.
#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <omp.h>
#include <algorithm>

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

// out = inp weight^T + bias in double (bias may be empty).
std::vector<double> reference_matmul(const std::vector<double>& inp,
                                     const std::vector<double>& weight,
                                     const std::vector<double>& bias, int N, int C, int OC) {
  std::vector<double> out(static_cast<size_t>(N) * OC);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      double sum = bias.empty() ? 0.0 : bias[o];
      for (int c = 0; c < C; ++c) sum += inp[n * C + c] * weight[o * C + c];
      out[n * OC + o] = sum;
    }
  }
  return out;
}

struct Shape {
  int N, C, OC;
};

class MatmulTest : public ::testing::TestWithParam<Shape> {};
// Finite differences cost a forward pass per input: small shapes only.
class MatmulGradientCheckTest : public ::testing::TestWithParam<Shape> {};

TEST_P(MatmulTest, ForwardMatchesReferenceWithAndWithoutBias) {
  const auto [N, C, OC] = GetParam();
  const auto inp = random_vector(N * C, 1);
  const auto weight = random_vector(OC * C, 2);
  const auto bias = random_vector(OC, 3);
  for (bool with_bias : {true, false}) {
    std::vector<float> out(N * OC, 123.f);  // garbage: the forward overwrites
    matmul_forward(out.data(), inp.data(), weight.data(), with_bias ? bias.data() : nullptr, N, C,
                   OC);
    const auto expected =
        reference_matmul(to_double(inp), to_double(weight),
                         with_bias ? to_double(bias) : std::vector<double>{}, N, C, OC);
    for (int i = 0; i < N * OC; ++i) {
      EXPECT_NEAR(out[i], expected[i], 1e-5 * (1 + std::fabs(expected[i])))
          << "bias " << with_bias << " element " << i;
    }
  }
}

// The backward's three sums written out, for shapes too large for finite differences.
TEST_P(MatmulTest, BackwardMatchesReferenceSums) {
  const auto [N, C, OC] = GetParam();
  // Float sums of up to 576 terms of size 1 in an order of BLAS's choosing.
  constexpr double kTolerance = 1e-4;
  const auto inp = random_vector(N * C, 21);
  const auto weight = random_vector(OC * C, 22);
  const auto dout = random_vector(N * OC, 23);
  std::vector<float> dinp(N * C, 0.f), dweight(OC * C, 0.f), dbias(OC, 0.f);
  matmul_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(), weight.data(),
                  N, C, OC);
  for (int n = 0; n < N; ++n) {
    for (int c = 0; c < C; ++c) {
      double expected = 0.0;
      for (int o = 0; o < OC; ++o) expected += double{dout[n * OC + o]} * weight[o * C + c];
      EXPECT_NEAR(dinp[n * C + c], expected, kTolerance * (1 + std::fabs(expected)));
    }
  }
  for (int o = 0; o < OC; ++o) {
    double expected_bias = 0.0;
    for (int n = 0; n < N; ++n) expected_bias += dout[n * OC + o];
    EXPECT_NEAR(dbias[o], expected_bias, kTolerance * (1 + std::fabs(expected_bias)));
    for (int c = 0; c < C; ++c) {
      double expected = 0.0;
      for (int n = 0; n < N; ++n) expected += double{dout[n * OC + o]} * inp[n * C + c];
      EXPECT_NEAR(dweight[o * C + c], expected, kTolerance * (1 + std::fabs(expected)));
    }
  }
}

TEST_P(MatmulGradientCheckTest, BackwardAccumulatesFiniteDifferenceGradients) {
  const auto [N, C, OC] = GetParam();
  const auto inp = random_vector(N * C, 4);
  const auto weight = random_vector(OC * C, 5);
  const auto bias = random_vector(OC, 6);
  const auto loss_weights = random_vector(N * OC, 7);  // loss = sum(out * loss_weights)
  // Start the gradients from non-zero values to check that they are accumulated.
  const auto dinp_initial = random_vector(N * C, 8);
  const auto dweight_initial = random_vector(OC * C, 9);
  const auto dbias_initial = random_vector(OC, 10);
  auto dinp = dinp_initial, dweight = dweight_initial, dbias = dbias_initial;
  matmul_backward(dinp.data(), dweight.data(), dbias.data(), loss_weights.data(), inp.data(),
                  weight.data(), N, C, OC);

  const auto inp_d = to_double(inp), weight_d = to_double(weight), bias_d = to_double(bias);
  auto loss = [&](const std::vector<double>& i, const std::vector<double>& w,
                  const std::vector<double>& b) {
    return weighted_sum(reference_matmul(i, w, b, N, C, OC), loss_weights);
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

TEST_P(MatmulGradientCheckTest, BackwardSkipsNullInputAndBiasGradients) {
  const auto [N, C, OC] = GetParam();
  const auto inp = random_vector(N * C, 11);
  const auto weight = random_vector(OC * C, 12);
  const auto dout = random_vector(N * OC, 13);
  std::vector<float> dweight_full(OC * C, 0.f), dweight_only(OC * C, 0.f);
  std::vector<float> dinp(N * C, 0.f), dbias(OC, 0.f);
  matmul_backward(dinp.data(), dweight_full.data(), dbias.data(), dout.data(), inp.data(),
                  weight.data(), N, C, OC);
  matmul_backward(nullptr, dweight_only.data(), nullptr, dout.data(), inp.data(), weight.data(), N,
                  C, OC);
  for (int i = 0; i < OC * C; ++i) EXPECT_FLOAT_EQ(dweight_only[i], dweight_full[i]) << i;
}

// Products large enough to be cut into pieces, with more rows than columns and fewer, and with
// remainders: every result has the same bits whatever the number of threads.
class MatmulThreadsTest : public ::testing::TestWithParam<Shape> {};

TEST_P(MatmulThreadsTest, ResultsDoNotDependOnTheThreadCount) {
  const auto [N, C, OC] = GetParam();
  const auto inp = random_vector(static_cast<size_t>(N) * C, 1);
  const auto weight = random_vector(static_cast<size_t>(OC) * C, 2);
  const auto bias = random_vector(OC, 3), dout = random_vector(static_cast<size_t>(N) * OC, 4);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<float> out(static_cast<size_t>(N) * OC), dinp(inp.size()), dweight(weight.size());
    std::vector<float> dbias(OC);
    matmul_forward(out.data(), inp.data(), weight.data(), bias.data(), N, C, OC);
    matmul_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(),
                    weight.data(), N, C, OC);
    return std::vector<std::vector<float>>{out, dinp, dweight, dbias};
  };
  const int default_threads = omp_get_max_threads();
  const auto one = run(1);
  for (int threads : {2, 3, 5}) {
    EXPECT_TRUE(run(threads) == one) << threads << " threads";
  }
  omp_set_num_threads(default_threads);
}

// A row of the output (forward) or of dinp (backward) has the same bits whatever the number of
// rows of the product: what lets N ranks with B/N samples compute what one rank with B computes.
TEST(MatmulRowsTest, RowsDoNotDependOnTheNumberOfRows) {
  const int C = 96, OC = 200, kMaxRows = 400;
  const auto inp = random_vector(static_cast<size_t>(kMaxRows) * C, 1);
  const auto weight = random_vector(static_cast<size_t>(OC) * C, 2);
  const auto bias = random_vector(OC, 3),
             dout = random_vector(static_cast<size_t>(kMaxRows) * OC, 4);
  auto run = [&](int N) {
    std::vector<float> out(static_cast<size_t>(N) * OC), dinp(static_cast<size_t>(N) * C);
    std::vector<float> dweight(weight.size()), dbias(OC);
    matmul_forward(out.data(), inp.data(), weight.data(), bias.data(), N, C, OC);
    matmul_backward(dinp.data(), dweight.data(), dbias.data(), dout.data(), inp.data(),
                    weight.data(), N, C, OC);
    return std::make_pair(out, dinp);
  };
  const auto all = run(kMaxRows);
  for (int N : {1, 2, 5, 13, 50, 97, 160, 250, 399}) {
    const auto part = run(N);
    EXPECT_TRUE(std::equal(part.first.begin(), part.first.end(), all.first.begin())) << N;
    EXPECT_TRUE(std::equal(part.second.begin(), part.second.end(), all.second.begin())) << N;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulThreadsTest,
                         ::testing::Values(Shape{300, 512, 16}, Shape{8, 16, 64},
                                           Shape{1000, 96, 200}, Shape{40, 300, 1000},
                                           Shape{333, 1000, 77}, Shape{1000, 200, 96}));

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulTest,
                         ::testing::Values(Shape{7, 5, 3}, Shape{1, 1, 1}, Shape{13, 33, 17},
                                           Shape{130, 192, 576}));
INSTANTIATE_TEST_SUITE_P(Shapes, MatmulGradientCheckTest,
                         ::testing::Values(Shape{7, 5, 3}, Shape{1, 1, 1}, Shape{13, 33, 17}));

}  // namespace
}  // namespace dgqa::cpu
