// Softmax cross-entropy, plain, label-smoothed and with mixed targets: forward against a
// double-precision loop, backward against finite differences of the mean loss.
#include "kernels/cpu/cross_entropy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

using tests::random_vector;

constexpr int N = 7, K = 5;
const std::vector<int> kLabels = {0, 4, 2, 2, 1, 3, 4};
// Mixed targets: each row's second label and the first label's weight (a row with both labels
// the same, weights 0 and 1 among them).
const std::vector<int> kMixLabels = {3, 4, 0, 1, 1, 2, 0};
const std::vector<float> kMixWeights = {0.7f, 0.4f, 1.f, 0.f, 0.25f, 0.5f, 0.9f};

// -log softmax(logits[n])[labels[n]] in double, stable for large logits; with smoothing s,
// (1 - s) times that plus s times the mean over k of -log softmax(logits[n])[k].
double reference_loss(const double* logits, int label, double smoothing = 0.0) {
  double max_logit = logits[0];
  for (int k = 1; k < K; ++k) max_logit = std::max(max_logit, logits[k]);
  double sum = 0.0;
  for (int k = 0; k < K; ++k) sum += std::exp(logits[k] - max_logit);
  auto minus_log_p = [&](int k) { return std::log(sum) - (logits[k] - max_logit); };
  double mean = 0.0;
  for (int k = 0; k < K; ++k) mean += minus_log_p(k) / K;
  return (1 - smoothing) * minus_log_p(label) + smoothing * mean;
}

TEST(CrossEntropyTest, ForwardMatchesReference) {
  const auto logits = random_vector(N * K, 1, -4.f, 4.f);
  std::vector<float> probs(N * K), losses(N);
  const double total = softmax_cross_entropy_forward(probs.data(), losses.data(), logits.data(),
                                                     kLabels.data(), nullptr, nullptr, N, K, 0.f);
  double expected_total = 0.0;
  for (int n = 0; n < N; ++n) {
    const std::vector<double> row(logits.begin() + n * K, logits.begin() + (n + 1) * K);
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += std::exp(row[k]);
    for (int k = 0; k < K; ++k) EXPECT_NEAR(probs[n * K + k], std::exp(row[k]) / sum, 1e-6);
    const double loss = -std::log(std::exp(row[kLabels[n]]) / sum);
    EXPECT_NEAR(losses[n], loss, 1e-5 * (1 + loss)) << n;
    expected_total += loss;
  }
  EXPECT_NEAR(total, expected_total, 1e-5 * expected_total);
}

TEST(CrossEntropyTest, ForwardIsStableForLargeLogits) {
  auto logits = random_vector(N * K, 2, -4.f, 4.f);
  for (float& z : logits) z += 1000.f;  // exp(1000) overflows, even in double
  logits[1] = -1000.f;                  // and exp(-2000) underflows to 0
  std::vector<float> probs(N * K), losses(N);
  const double total = softmax_cross_entropy_forward(probs.data(), losses.data(), logits.data(),
                                                     kLabels.data(), nullptr, nullptr, N, K, 0.f);
  ASSERT_TRUE(std::isfinite(total));
  for (int n = 0; n < N; ++n) {
    const std::vector<double> row(logits.begin() + n * K, logits.begin() + (n + 1) * K);
    EXPECT_NEAR(losses[n], reference_loss(row.data(), kLabels[n]), 1e-4) << n;
    for (int k = 0; k < K; ++k) EXPECT_TRUE(std::isfinite(probs[n * K + k]));
  }
  EXPECT_EQ(probs[1], 0.f);
}

TEST(CrossEntropyTest, LabelSmoothingForwardMatchesReference) {
  const auto logits = random_vector(N * K, 5, -4.f, 4.f);
  constexpr float kSmoothing = 0.1f;
  std::vector<float> probs(N * K), losses(N);
  const double total =
      softmax_cross_entropy_forward(probs.data(), losses.data(), logits.data(), kLabels.data(),
                                    nullptr, nullptr, N, K, kSmoothing);
  double expected_total = 0.0;
  for (int n = 0; n < N; ++n) {
    const std::vector<double> row(logits.begin() + n * K, logits.begin() + (n + 1) * K);
    const double loss = reference_loss(row.data(), kLabels[n], kSmoothing);
    EXPECT_NEAR(losses[n], loss, 1e-5 * (1 + loss)) << n;
    // It differs from the plain loss (the test can tell them apart).
    EXPECT_GT(std::fabs(loss - reference_loss(row.data(), kLabels[n])), 1e-3) << n;
    expected_total += loss;
  }
  EXPECT_NEAR(total, expected_total, 1e-5 * expected_total);
}

// The loss of row n in double: with `mixed`, kMixWeights[n] of the label's smoothed loss and the
// rest of kMixLabels[n]'s (timm's mixup_target and SoftTargetCrossEntropy).
double reference_row_loss(const double* logits, int n, double smoothing, bool mixed) {
  const double loss = reference_loss(logits, kLabels[n], smoothing);
  if (!mixed) return loss;
  return kMixWeights[n] * loss +
         (1 - kMixWeights[n]) * reference_loss(logits, kMixLabels[n], smoothing);
}

TEST(CrossEntropyTest, MixedTargetsForwardMatchesReference) {
  const auto logits = random_vector(N * K, 6, -4.f, 4.f);
  for (float smoothing : {0.f, 0.1f}) {
    std::vector<float> probs(N * K), losses(N);
    const double total =
        softmax_cross_entropy_forward(probs.data(), losses.data(), logits.data(), kLabels.data(),
                                      kMixLabels.data(), kMixWeights.data(), N, K, smoothing);
    double expected_total = 0.0;
    for (int n = 0; n < N; ++n) {
      const std::vector<double> row(logits.begin() + n * K, logits.begin() + (n + 1) * K);
      const double loss = reference_row_loss(row.data(), n, smoothing, true);
      EXPECT_NEAR(losses[n], loss, 1e-5 * (1 + loss)) << n;
      expected_total += loss;
    }
    EXPECT_NEAR(total, expected_total, 1e-5 * expected_total);
  }
}

// The gradient of the mean loss with label smoothing `smoothing`, mixed targets or not,
// accumulated onto random values, against central differences in double.
void check_backward(float smoothing, bool mixed = false) {
  const int* mix_labels = mixed ? kMixLabels.data() : nullptr;
  const float* mix_weights = mixed ? kMixWeights.data() : nullptr;
  const auto logits = random_vector(N * K, 3, -4.f, 4.f);
  std::vector<float> probs(N * K), losses(N);
  softmax_cross_entropy_forward(probs.data(), losses.data(), logits.data(), kLabels.data(),
                                mix_labels, mix_weights, N, K, smoothing);
  const auto dlogits_initial = random_vector(N * K, 4);
  auto dlogits = dlogits_initial;
  softmax_cross_entropy_backward(dlogits.data(), probs.data(), kLabels.data(), mix_labels,
                                 mix_weights, N, K, 1.f / N, smoothing);

  std::vector<double> logits_d(logits.begin(), logits.end());
  auto mean_loss = [&]() {
    double sum = 0.0;
    for (int n = 0; n < N; ++n) {
      sum += reference_row_loss(logits_d.data() + n * K, n, smoothing, mixed);
    }
    return sum / N;
  };
  constexpr double kStep = 1e-5;
  for (int i = 0; i < N * K; ++i) {
    const double saved = logits_d[i];
    logits_d[i] = saved + kStep;
    const double plus = mean_loss();
    logits_d[i] = saved - kStep;
    const double minus = mean_loss();
    logits_d[i] = saved;
    const double expected = dlogits_initial[i] + (plus - minus) / (2 * kStep);
    EXPECT_NEAR(dlogits[i], expected, 1e-5 * (1 + std::fabs(expected))) << i;
  }
}

TEST(CrossEntropyTest, BackwardAccumulatesGradientOfMeanLoss) {
  check_backward(0.f);
}

TEST(CrossEntropyTest, LabelSmoothingBackwardAccumulatesGradientOfMeanLoss) {
  check_backward(0.3f);
}

TEST(CrossEntropyTest, MixedTargetsBackwardAccumulatesGradientOfMeanLoss) {
  check_backward(0.f, /*mixed=*/true);
  check_backward(0.1f, /*mixed=*/true);
}

}  // namespace
}  // namespace dgqa::cpu
