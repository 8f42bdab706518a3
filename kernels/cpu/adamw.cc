#include "kernels/cpu/adamw.h"

#include <cmath>

namespace dgqa::cpu {

void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int64_t t) {
  // Scalars in double, then used in float, as torch does with its Python-float scalars.
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), t);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), t);
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float sqrt_bias_correction2 = static_cast<float>(std::sqrt(bias_correction2));
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i];
    params[i] *= decay;
    m[i] = beta1 * m[i] + (1.f - beta1) * g;
    v[i] = beta2 * v[i] + (1.f - beta2) * (g * g);
    const float denominator = std::sqrt(v[i]) / sqrt_bias_correction2 + eps;
    params[i] -= step_size * (m[i] / denominator);
  }
}

}  // namespace dgqa::cpu
