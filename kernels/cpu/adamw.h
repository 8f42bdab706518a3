// AdamW over a flat parameter buffer, exactly as torch.optim.AdamW.
#pragma once

#include <cstdint>

namespace dgqa::cpu {

// For each i (t is the 1-based step number):
//   p *= 1 - lr * weight_decay
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int64_t t);

}  // namespace dgqa::cpu
