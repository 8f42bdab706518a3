#include "kernels/cpu/cross_entropy.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace dgqa::cpu {

double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                     const int* labels, const int* mix_labels,
                                     const float* mix_weights, int N, int K, float smoothing) {
  std::vector<double> row_losses(N);
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    const float* z = logits + static_cast<int64_t>(n) * K;
    float* p = probs + static_cast<int64_t>(n) * K;
    // log softmax(z)_k = z_k - max - log(sum_j exp(z_j - max)): no exp of a large number.
    float max_logit = z[0];
    for (int k = 1; k < K; ++k) max_logit = std::fmax(max_logit, z[k]);
    double sum = 0.0, shifted_sum = 0.0;
    for (int k = 0; k < K; ++k) {
      p[k] = std::exp(z[k] - max_logit);
      sum += p[k];
      shifted_sum += z[k] - max_logit;
    }
    const float inv_sum = static_cast<float>(1.0 / sum);
    for (int k = 0; k < K; ++k) p[k] *= inv_sum;
    // -log p_k = log(sum) - (z_k - max): the labels' term and the mean over the K classes.
    double label_loss = std::log(sum) - (z[labels[n]] - max_logit);
    if (mix_weights != nullptr) {
      const double w = mix_weights[n];
      label_loss = w * label_loss + (1.0 - w) * (std::log(sum) - (z[mix_labels[n]] - max_logit));
    }
    const double mean_loss = std::log(sum) - shifted_sum / K;
    const double loss =
        smoothing == 0.f ? label_loss : (1.0 - smoothing) * label_loss + smoothing * mean_loss;
    losses[n] = static_cast<float>(loss);
    row_losses[n] = loss;
  }
  // Summed in row order: the same bits for any number of threads.
  double total = 0.0;
  for (double loss : row_losses) total += loss;
  return total;
}

void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels,
                                    const int* mix_labels, const float* mix_weights, int N, int K,
                                    float scale, float smoothing) {
  const float off_label = smoothing / K, on_label = 1.f - smoothing + off_label;
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    const float* p = probs + static_cast<int64_t>(n) * K;
    float* dz = dlogits + static_cast<int64_t>(n) * K;
    if (mix_weights == nullptr) {
      for (int k = 0; k < K; ++k) dz[k] += scale * (p[k] - (k == labels[n] ? on_label : off_label));
      continue;
    }
    // The mixed target: off_label everywhere, plus (1 - s) split between the two labels.
    const float w = mix_weights[n], on = on_label - off_label;
    for (int k = 0; k < K; ++k) {
      const float target =
          off_label + (k == labels[n] ? on * w : 0.f) + (k == mix_labels[n] ? on * (1.f - w) : 0.f);
      dz[k] += scale * (p[k] - target);
    }
  }
}

}  // namespace dgqa::cpu
