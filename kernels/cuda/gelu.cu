// Exact (erf) GELU on the GPU (semantics: kernels/cpu/gelu.h).
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"

#include <cstdint>

namespace dgqa::cuda {

namespace {

constexpr int kThreads = 256;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1 / sqrt(2 pi)

// Grid-stride loop: one element per thread per iteration.
__global__ void gelu_forward_kernel(float* out, const float* inp, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float x = inp[i];
    out[i] = 0.5f * x * (1.f + erff(x * kInvSqrt2));
  }
}

// Grid-stride loop: dinp += dout * gelu'(x), gelu'(x) = Phi(x) + x * phi(x).
__global__ void gelu_backward_kernel(float* dinp, const float* inp, const float* dout, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float x = inp[i];
    const float cdf = 0.5f * (1.f + erff(x * kInvSqrt2));
    const float density = kInvSqrt2Pi * expf(-0.5f * x * x);
    dinp[i] += dout[i] * (cdf + x * density);
  }
}

}  // namespace

void gelu_forward(float* out, const float* inp, int64_t n) {
  if (n <= 0) return;
  gelu_forward_kernel<<<grid_stride_blocks(n, kThreads), kThreads, 0, context().stream>>>(out, inp,
                                                                                          n);
  DGQA_CUDA_CHECK_LAUNCH();
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n) {
  if (n <= 0) return;
  gelu_backward_kernel<<<grid_stride_blocks(n, kThreads), kThreads, 0, context().stream>>>(
      dinp, inp, dout, n);
  DGQA_CUDA_CHECK_LAUNCH();
}

}  // namespace dgqa::cuda
