#include "kernels/cpu/gelu.h"

#include <omp.h>

#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

namespace {

constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1 / sqrt(2 pi)

// Phi(x), the standard normal cdf, from the tail of |x|.
inline DGQA_ALWAYS_INLINE float normal_cdf(float x) {
  const float tail = normal_tail(x < 0.f ? -x : x);
  return x < 0.f ? tail : 1.f - tail;
}

// The same, and e^(-x^2/2) through *gaussian.
inline DGQA_ALWAYS_INLINE float normal_cdf(float x, float* gaussian) {
  const float tail = normal_tail(x < 0.f ? -x : x, gaussian);
  return x < 0.f ? tail : 1.f - tail;
}

DGQA_SIMD_CLONES void gelu_forward_range(float* out, const float* inp, int64_t first,
                                         int64_t last) {
#pragma omp simd
  for (int64_t i = first; i < last; ++i) out[i] = inp[i] * normal_cdf(inp[i]);
}

// gelu'(x) = Phi(x) + x phi(x), with phi the standard normal density.
DGQA_SIMD_CLONES void gelu_backward_range(float* dinp, const float* inp, const float* dout,
                                          int64_t first, int64_t last) {
#pragma omp simd
  for (int64_t i = first; i < last; ++i) {
    const float x = inp[i];
    float gaussian;
    const float cdf = normal_cdf(x, &gaussian);
    dinp[i] += dout[i] * (cdf + x * kInvSqrt2Pi * gaussian);
  }
}

// Calls range(first, last) on an even share of [0, n) per thread. (The vectorised bodies live in
// their own functions: target_clones does not reach into an OpenMP region's outlined body.)
template <typename Range>
void parallel_ranges(int64_t n, const Range& range) {
#pragma omp parallel
  {
    const int64_t parts = omp_get_num_threads(), part = omp_get_thread_num();
    range(n * part / parts, n * (part + 1) / parts);
  }
}

}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
  parallel_ranges(n,
                  [&](int64_t first, int64_t last) { gelu_forward_range(out, inp, first, last); });
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
  parallel_ranges(
      n, [&](int64_t first, int64_t last) { gelu_backward_range(dinp, inp, dout, first, last); });
}

}  // namespace dgqa::cpu
