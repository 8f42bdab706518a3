#include "kernels/cpu/gelu.h"

#include <cmath>

namespace dgqa::cpu {

namespace {
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1 / sqrt(2 pi)
}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    out[i] = 0.5f * x * (1.f + std::erf(x * kInvSqrt2));
  }
}

// gelu'(x) = Phi(x) + x * phi(x), with Phi, phi the standard normal cdf and density.
void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float cdf = 0.5f * (1.f + std::erf(x * kInvSqrt2));
    const float density = kInvSqrt2Pi * std::exp(-0.5f * x * x);
    dinp[i] += dout[i] * (cdf + x * density);
  }
}

}  // namespace dgqa::cpu
