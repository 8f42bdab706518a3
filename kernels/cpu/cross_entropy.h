// Softmax cross-entropy over class logits, with optional label smoothing and optional mixed
// (Mixup/CutMix) targets of two labels per row.
#pragma once

namespace dgqa::cpu {

// With smoothing s, smooth(y)[k] = (1 - s) * (k == y) + s / K (torch's and timm's). Row n's
// target is smooth(labels[n]), or, with mix_labels and mix_weights (both given or both null),
// w * smooth(labels[n]) + (1 - w) * smooth(mix_labels[n]) with w = mix_weights[n] (timm's
// mixup_target). probs (N, K) = softmax(logits); losses (N) = -sum_k target[n, k] * log probs[n, k]
// (timm's SoftTargetCrossEntropy; torch's cross_entropy(label_smoothing=s) without mixing).
// Returns the sum of the N losses (accumulated in double).
double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                     const int* labels, const int* mix_labels,
                                     const float* mix_weights, int N, int K, float smoothing);

// dlogits[n, k] += scale * (probs[n, k] - target[n, k])   (scale = 1 / global batch), with the
// target of the forward pass.
void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels,
                                    const int* mix_labels, const float* mix_weights, int N, int K,
                                    float scale, float smoothing);

}  // namespace dgqa::cpu
