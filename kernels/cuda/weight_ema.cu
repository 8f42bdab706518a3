// The weight EMA update (semantics and formula: kernels/cpu/weight_ema.h).
#include <cstdint>

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"

namespace dgqa::cuda {

namespace {

constexpr int kThreads = 256;

// One thread per weight, grid-stride; the same float operations as the CPU's loop, written
// with the _rn intrinsics so that nvcc fuses none into an FMA: the same bits as the CPU.
__global__ void weight_ema_kernel(float* ema, const float* params, int64_t n, float weight) {
  const float keep = 1.f - weight;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float p = params[i], e = ema[i];
    ema[i] = weight < 0.5f ? __fadd_rn(e, __fmul_rn(weight, __fsub_rn(p, e)))
                           : __fsub_rn(p, __fmul_rn(__fsub_rn(p, e), keep));
  }
}

}  // namespace

void weight_ema_update(float* ema, const float* params, int64_t n, float weight) {
  if (n == 0) return;
  weight_ema_kernel<<<grid_stride_blocks(n, kThreads), kThreads, 0, context().stream>>>(ema, params,
                                                                                        n, weight);
  DGQA_CUDA_CHECK_LAUNCH();
}

}  // namespace dgqa::cuda
