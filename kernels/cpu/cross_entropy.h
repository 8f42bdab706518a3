// Softmax cross-entropy over class logits, with optional label smoothing.
#pragma once

namespace dgqa::cpu {

// probs (N, K) = softmax(logits); losses (N) = (1 - smoothing) * (-log probs[n, labels[n]])
// + smoothing * mean_k(-log probs[n, k])   (torch's cross_entropy(label_smoothing=smoothing)).
// Returns the sum of the N losses (accumulated in double).
double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                     const int* labels, int N, int K, float smoothing);

// dlogits[n, k] += scale * (probs[n, k] - target[n, k])   (scale = 1 / global batch), where
// target[n, k] = (1 - smoothing) * (k == labels[n]) + smoothing / K.
void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels, int N,
                                    int K, float scale, float smoothing);

}  // namespace dgqa::cpu
