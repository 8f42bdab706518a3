// Softmax cross-entropy over class logits.
#pragma once

namespace dgqa::cpu {

// probs (N, K) = softmax(logits); losses (N) = -log probs[n, labels[n]].
// Returns the sum of the N losses (accumulated in double).
double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                     const int* labels, int N, int K);

// dlogits[n, k] += scale * (probs[n, k] - (k == labels[n]))   (scale = 1 / global batch)
void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels, int N,
                                    int K, float scale);

}  // namespace dgqa::cpu
