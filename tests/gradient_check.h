// Helpers of the kernels' finite-difference gradient checks, which run in double precision.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace dgqa::tests {

inline std::vector<double> to_double(const std::vector<float>& values) {
  return std::vector<double>(values.begin(), values.end());
}

// d/dx of loss(x) by central differences, for every element of x.
template <typename Loss>
std::vector<double> numerical_gradient(Loss loss, std::vector<double> x) {
  constexpr double kStep = 1e-5;
  std::vector<double> gradient(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + kStep;
    const double plus = loss(x);
    x[i] = saved - kStep;
    const double minus = loss(x);
    x[i] = saved;
    gradient[i] = (plus - minus) / (2 * kStep);
  }
  return gradient;
}

// sum_i values[i] * weights[i]: a scalar loss whose gradient with respect to values is weights.
inline double weighted_sum(const std::vector<double>& values, const std::vector<float>& weights) {
  double sum = 0.0;
  for (size_t i = 0; i < values.size(); ++i) sum += values[i] * weights[i];
  return sum;
}

// actual == initial + expected_change, element-wise, within a relative tolerance (backward
// kernels accumulate into their outputs).
inline void expect_accumulated(const std::vector<float>& actual, const std::vector<float>& initial,
                               const std::vector<double>& expected_change, const char* what) {
  ASSERT_EQ(actual.size(), expected_change.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double expected = initial[i] + expected_change[i];
    EXPECT_NEAR(actual[i], expected, 1e-4 + 1e-3 * std::fabs(expected)) << what << "[" << i << "]";
  }
}

}  // namespace dgqa::tests
