#include "kernels/cpu/weight_ema.h"

#include <omp.h>

#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

namespace {

DGQA_SIMD_CLONES void weight_ema_range(float* ema, const float* params, int64_t first, int64_t last,
                                       float weight) {
  if (weight < 0.5f) {
#pragma omp simd
    for (int64_t i = first; i < last; ++i) ema[i] += weight * (params[i] - ema[i]);
  } else {
    const float keep = 1.f - weight;
#pragma omp simd
    for (int64_t i = first; i < last; ++i) ema[i] = params[i] - (params[i] - ema[i]) * keep;
  }
}

}  // namespace

void weight_ema_update(float* ema, const float* params, int64_t n, float weight) {
#pragma omp parallel
  {
    const int64_t parts = omp_get_num_threads(), part = omp_get_thread_num();
    weight_ema_range(ema, params, n * part / parts, n * (part + 1) / parts, weight);
  }
}

}  // namespace dgqa::cpu
