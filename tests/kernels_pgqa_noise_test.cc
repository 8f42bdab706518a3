// PGQA's noise (docs/design.md §3.4): the standardised Philox matrix, and the forward/backward of
// subtracting it, rescaled to each row's statistics, from the attention output.
#include "kernels/cpu/pgqa_noise.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/philox.h"
#include "tests/gradient_check.h"
#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

using tests::expect_accumulated;
using tests::numerical_gradient;
using tests::random_vector;
using tests::to_double;
using tests::weighted_sum;

constexpr uint64_t kSeed = 1234;

struct Shape {
  int B, T, H, G, d;
  int L() const { return T * d; }
  int heads_per_group() const { return H / G; }
  int x_size() const { return B * T * H * d; }
  int noise_size() const { return H * L(); }
};

std::vector<float> make_noise(const Shape& s, uint32_t step, uint32_t layer,
                              uint64_t seed = kSeed) {
  std::vector<float> noise(s.noise_size());
  pgqa_make_noise(noise.data(), seed, step, layer, s.H, s.G, s.T, s.d);
  return noise;
}

double row_mean(const double* row, int L) {
  double sum = 0.0;
  for (int j = 0; j < L; ++j) sum += row[j];
  return sum / L;
}

double unbiased_std(const double* row, int L) {
  const double mean = row_mean(row, L);
  double squares = 0.0;
  for (int j = 0; j < L; ++j) squares += (row[j] - mean) * (row[j] - mean);
  return std::sqrt(squares / (L - 1));
}

// Group g's matrix from its Philox stream, diagonal zeroed, rows standardised, in double.
std::vector<double> reference_noise(const Shape& s, uint32_t step, uint32_t layer) {
  const int L = s.L(), rows = s.heads_per_group();
  std::vector<double> noise(s.noise_size());
  for (int g = 0; g < s.G; ++g) {
    for (int i = 0; i < rows; ++i) {
      double* row = noise.data() + (g * rows + i) * L;
      for (int j = 0; j < L; ++j) row[j] = philox_uniform_at(kSeed, step, layer, g, i * L + j);
      row[i] = 0.0;
      const double mean = row_mean(row, L), std_dev = unbiased_std(row, L);
      for (int j = 0; j < L; ++j) row[j] = (row[j] - mean) / std_dev;
    }
  }
  return noise;
}

// Row (b, h) of x gathered into a contiguous vector of length L (index p*d + e).
std::vector<double> gather_row(const Shape& s, const std::vector<double>& x, int b, int h) {
  std::vector<double> row(s.L());
  for (int p = 0; p < s.T; ++p) {
    for (int e = 0; e < s.d; ++e) row[p * s.d + e] = x[((b * s.T + p) * s.H + h) * s.d + e];
  }
  return row;
}

// y = x - (noise * std + mean) per (b, h) row, in double.
std::vector<double> reference_forward(const Shape& s, const std::vector<double>& x,
                                      const std::vector<float>& noise) {
  std::vector<double> y(x.size());
  for (int b = 0; b < s.B; ++b) {
    for (int h = 0; h < s.H; ++h) {
      const auto row = gather_row(s, x, b, h);
      const double mean = row_mean(row.data(), s.L()), std_dev = unbiased_std(row.data(), s.L());
      for (int p = 0; p < s.T; ++p) {
        for (int e = 0; e < s.d; ++e) {
          const int index = ((b * s.T + p) * s.H + h) * s.d + e;
          y[index] = x[index] - (noise[h * s.L() + p * s.d + e] * std_dev + mean);
        }
      }
    }
  }
  return y;
}

const Shape kShape{2, 3, 4, 2, 5};  // L = 15, two heads per group

TEST(PgqaMakeNoiseTest, RowsAreStandardised) {
  const auto noise = make_noise(kShape, 3, 1);
  const auto noise_d = to_double(noise);
  for (int row = 0; row < kShape.H; ++row) {
    EXPECT_NEAR(row_mean(noise_d.data() + row * kShape.L(), kShape.L()), 0.0, 1e-6) << row;
    EXPECT_NEAR(unbiased_std(noise_d.data() + row * kShape.L(), kShape.L()), 1.0, 1e-6) << row;
  }
}

TEST(PgqaMakeNoiseTest, MatchesPhiloxWithZeroedDiagonal) {
  const auto noise = make_noise(kShape, 3, 1);
  const auto expected = reference_noise(kShape, 3, 1);
  for (int i = 0; i < kShape.noise_size(); ++i) EXPECT_NEAR(noise[i], expected[i], 1e-6) << i;
  // The zeroed element was the smallest of its uniform row, and stays so after standardising.
  const int rows = kShape.heads_per_group();
  for (int g = 0; g < kShape.G; ++g) {
    for (int i = 0; i < rows; ++i) {
      const float* row = noise.data() + (g * rows + i) * kShape.L();
      EXPECT_EQ(*std::min_element(row, row + kShape.L()), row[i]) << "group " << g << " row " << i;
    }
  }
}

TEST(PgqaMakeNoiseTest, DeterministicPerSeedStepLayerAndGroup) {
  const auto noise = make_noise(kShape, 3, 1);
  EXPECT_EQ(make_noise(kShape, 3, 1), noise);
  EXPECT_NE(make_noise(kShape, 4, 1), noise);
  EXPECT_NE(make_noise(kShape, 3, 2), noise);
  EXPECT_NE(make_noise(kShape, 3, 1, kSeed + 1), noise);
  // Group 1 draws from its own stream: its rows differ from group 0's.
  const int group_size = kShape.heads_per_group() * kShape.L();
  EXPECT_FALSE(std::equal(noise.begin(), noise.begin() + group_size, noise.begin() + group_size));
}

TEST(PgqaNoiseForwardTest, MatchesReferenceAndSavesStatistics) {
  const Shape s = kShape;
  const auto noise = make_noise(s, 0, 0);
  auto x = random_vector(s.x_size(), 1, -1.f, 3.f);
  std::vector<float> y(s.x_size()), stats(2 * s.B * s.H);
  pgqa_noise_forward(y.data(), stats.data(), x.data(), noise.data(), s.B, s.T, s.H, s.G, s.d);
  const auto x_d = to_double(x);
  const auto expected = reference_forward(s, x_d, noise);
  for (int i = 0; i < s.x_size(); ++i) EXPECT_NEAR(y[i], expected[i], 1e-5) << i;
  for (int b = 0; b < s.B; ++b) {
    for (int h = 0; h < s.H; ++h) {
      const auto row = gather_row(s, x_d, b, h);
      EXPECT_NEAR(stats[(b * s.H + h) * 2], row_mean(row.data(), s.L()), 1e-6);
      EXPECT_NEAR(stats[(b * s.H + h) * 2 + 1], unbiased_std(row.data(), s.L()), 1e-6);
    }
  }
  // In place (y == x) gives the same result.
  pgqa_noise_forward(x.data(), stats.data(), x.data(), noise.data(), s.B, s.T, s.H, s.G, s.d);
  EXPECT_EQ(x, y);
}

TEST(PgqaNoiseBackwardTest, AccumulatesFiniteDifferenceGradient) {
  const Shape s = kShape;
  const auto noise = make_noise(s, 5, 2);
  const auto x = random_vector(s.x_size(), 2, -1.f, 3.f);
  const auto loss_weights = random_vector(s.x_size(), 3);  // loss = sum(y * loss_weights)
  std::vector<float> y(s.x_size()), stats(2 * s.B * s.H);
  pgqa_noise_forward(y.data(), stats.data(), x.data(), noise.data(), s.B, s.T, s.H, s.G, s.d);
  const auto dx_initial = random_vector(s.x_size(), 4);
  auto dx = dx_initial;
  pgqa_noise_backward(dx.data(), loss_weights.data(), x.data(), stats.data(), noise.data(), s.B,
                      s.T, s.H, s.G, s.d);

  auto loss = [&](const std::vector<double>& x_) {
    return weighted_sum(reference_forward(s, x_, noise), loss_weights);
  };
  expect_accumulated(dx, dx_initial, numerical_gradient(loss, to_double(x)), "dx");
}

// A constant row has std 0: its output is x - mean and its gradient dy - mean(dy), with no
// division by the zero std.
TEST(PgqaNoiseBackwardTest, ConstantRowGetsNoGradientThroughItsStd) {
  const Shape s{1, 2, 2, 1, 3};
  const auto noise = make_noise(s, 0, 0);
  auto x = random_vector(s.x_size(), 5);
  for (int p = 0; p < s.T; ++p) {
    for (int e = 0; e < s.d; ++e) x[(p * s.H + 1) * s.d + e] = 0.25f;  // head 1 constant
  }
  std::vector<float> y(s.x_size()), stats(2 * s.B * s.H);
  pgqa_noise_forward(y.data(), stats.data(), x.data(), noise.data(), s.B, s.T, s.H, s.G, s.d);
  EXPECT_EQ(stats[3], 0.f);
  const auto dy = random_vector(s.x_size(), 6);
  std::vector<float> dx(s.x_size(), 0.f);
  pgqa_noise_backward(dx.data(), dy.data(), x.data(), stats.data(), noise.data(), s.B, s.T, s.H,
                      s.G, s.d);
  double dy_mean = 0.0;
  for (int p = 0; p < s.T; ++p) {
    for (int e = 0; e < s.d; ++e) dy_mean += dy[(p * s.H + 1) * s.d + e] / double(s.L());
  }
  for (int p = 0; p < s.T; ++p) {
    for (int e = 0; e < s.d; ++e) {
      const int index = (p * s.H + 1) * s.d + e;
      EXPECT_EQ(y[index], 0.f) << index;
      EXPECT_NEAR(dx[index], dy[index] - dy_mean, 1e-6) << index;
    }
  }
}

}  // namespace
}  // namespace dgqa::cpu
