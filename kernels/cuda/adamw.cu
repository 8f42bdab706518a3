// AdamW over a flat parameter buffer (semantics and formula: kernels/cpu/adamw.h), optionally
// fused with the refresh of the BF16 mode's bf16 weight copy (kernels/cuda/bf16_weights.h).
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"

namespace dgqa::cuda {

namespace {

constexpr int kThreads = 256;

// One thread per parameter, grid-stride; the same float operations as the CPU's loop. With
// kWriteBf16, each updated parameter is also stored rounded to bf16 into params_bf16: the bf16
// copy stays equal to the rounding of the fp32 master parameters at no extra pass over them.
template <bool kWriteBf16>
__global__ void adamw_kernel(float* params, const float* grads, float* m, float* v,
                             __nv_bfloat16* params_bf16, int64_t n, float beta1, float beta2,
                             float eps, float step_size, float sqrt_bias_correction2, float decay) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = grads[i];
    const float m_i = beta1 * m[i] + (1.f - beta1) * g;
    const float v_i = beta2 * v[i] + (1.f - beta2) * (g * g);
    m[i] = m_i;
    v[i] = v_i;
    const float denominator = sqrtf(v_i) / sqrt_bias_correction2 + eps;
    const float p = params[i] * decay - step_size * (m_i / denominator);
    params[i] = p;
    if constexpr (kWriteBf16) params_bf16[i] = __float2bfloat16_rn(p);
  }
}

}  // namespace

void adamw_update(float* params, const float* grads, float* m, float* v, int64_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int64_t t,
                  __nv_bfloat16* params_bf16) {
  if (n == 0) return;
  // Scalars in double on the host, then used in float, exactly as the CPU backend does.
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(beta1), t);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(beta2), t);
  const float step_size = static_cast<float>(lr / bias_correction1);
  const float sqrt_bias_correction2 = static_cast<float>(std::sqrt(bias_correction2));
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  const int grid = grid_stride_blocks(n, kThreads);
  cudaStream_t stream = context().stream;
  if (params_bf16 != nullptr) {
    adamw_kernel<true><<<grid, kThreads, 0, stream>>>(params, grads, m, v, params_bf16, n, beta1,
                                                      beta2, eps, step_size, sqrt_bias_correction2,
                                                      decay);
  } else {
    adamw_kernel<false><<<grid, kThreads, 0, stream>>>(params, grads, m, v, nullptr, n, beta1,
                                                       beta2, eps, step_size, sqrt_bias_correction2,
                                                       decay);
  }
  DGQA_CUDA_CHECK_LAUNCH();
}

}  // namespace dgqa::cuda
