#include "kernels/cpu/adamw.h"

#include <omp.h>

#include <cmath>

#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

namespace {

DGQA_SIMD_CLONES void adamw_range(float* params, const float* grads, float* m, float* v,
                                  int64_t first, int64_t last, float beta1, float beta2, float eps,
                                  float step_size, float sqrt_bias_correction2, float decay) {
#pragma omp simd
  for (int64_t i = first; i < last; ++i) {
    const float g = grads[i];
    params[i] *= decay;
    m[i] = beta1 * m[i] + (1.f - beta1) * g;
    v[i] = beta2 * v[i] + (1.f - beta2) * (g * g);
    const float denominator = std::sqrt(v[i]) / sqrt_bias_correction2 + eps;
    params[i] -= step_size * (m[i] / denominator);
  }
}

}  // namespace

void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int64_t t) {
  // Scalars in double, then used in float, as torch does with its Python-float scalars.
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), t);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), t);
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float sqrt_bias_correction2 = static_cast<float>(std::sqrt(bias_correction2));
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
#pragma omp parallel
  {
    const int64_t parts = omp_get_num_threads(), part = omp_get_thread_num();
    adamw_range(params, grads, m, v, n * part / parts, n * (part + 1) / parts, beta1, beta2, eps,
                step_size, sqrt_bias_correction2, decay);
  }
}

}  // namespace dgqa::cpu
