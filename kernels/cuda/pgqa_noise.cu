// PGQA's noise (semantics: kernels/cpu/pgqa_noise.h). Row statistics are summed in double, as
// on the CPU, with block reductions in a fixed order (deterministic, no atomics).
#include <cstdint>

#include "common/philox.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

namespace dgqa::cuda {

namespace {

constexpr int kWarpSize = 32;
// Threads per block of the row kernels: 8 warps (a multiple of 32, at most 1024).
constexpr int kRowThreads = 256;
constexpr int kRowWarps = kRowThreads / kWarpSize;
// Threads per block of the element-wise noise draw.
constexpr int kDrawThreads = 256;

// Butterfly sum over a full warp; every lane gets the same result.
__device__ double warp_sum(double value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

// Sum over the block (kRowThreads threads); every thread gets the result. Every thread must
// call it; it synchronises the block.
__device__ double block_sum(double value) {
  __shared__ double warp_partials[kRowWarps];
  value = warp_sum(value);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  __syncthreads();  // an earlier call's readers of warp_partials are done
  if (lane == 0) warp_partials[warp] = value;
  __syncthreads();
  return warp_sum(lane < kRowWarps ? warp_partials[lane] : 0.0);
}

// One thread per element of noise (H rows of L = T*d): element j of row h = g*(H/G) + i is
// element i*L + j of group g's Philox stream, or 0 on the diagonal j == i.
__global__ void draw_noise_kernel(float* __restrict__ noise, uint64_t seed, uint32_t step,
                                  uint32_t layer, int heads_per_group, int64_t L, int64_t total) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= total) return;
  const int64_t row = index / L, j = index % L;
  const int g = static_cast<int>(row / heads_per_group),
            i = static_cast<int>(row % heads_per_group);
  noise[index] = j == i ? 0.f
                        : philox_uniform_at(seed, step, layer, static_cast<uint32_t>(g),
                                            static_cast<uint64_t>(i) * L + j);
}

// Grid (H): block h standardises row h of noise in place (two passes in double; thread t takes
// elements t, t + 256, ...).
__global__ void standardise_rows_kernel(float* __restrict__ noise, int64_t L) {
  float* row = noise + blockIdx.x * L;
  double sum = 0.0;
  for (int64_t j = threadIdx.x; j < L; j += kRowThreads) sum += row[j];
  const double mean = block_sum(sum) / L;
  double squares = 0.0;
  for (int64_t j = threadIdx.x; j < L; j += kRowThreads) {
    const double centred = row[j] - mean;
    squares += centred * centred;
  }
  double std_dev = sqrt(block_sum(squares) / (L - 1));
  if (std_dev == 0.0) std_dev = 1.0;
  for (int64_t j = threadIdx.x; j < L; j += kRowThreads) {
    row[j] = static_cast<float>((row[j] - mean) / std_dev);
  }
}

// Offset in x (B, T, H*d) of element l = p*d + e of the row of head h in sample b.
__device__ int64_t row_element(int b, int h, int64_t l, int T, int H, int d) {
  const int64_t p = l / d, e = l % d;
  return (static_cast<int64_t>(b) * T + p) * H * d + static_cast<int64_t>(h) * d + e;
}

// Grid (H, B): block (h, b) handles the row of head h in sample b (thread t takes elements
// t, t + 256, ...): mean and unbiased std (two passes in double), then y. y may alias x: every
// read of x for the statistics happens before the block's first write.
__global__ void noise_forward_kernel(float* y, float* __restrict__ stats, const float* x,
                                     const float* __restrict__ noise, int T, int H, int d) {
  const int h = blockIdx.x, b = blockIdx.y;
  const int64_t L = static_cast<int64_t>(T) * d;
  const float* noise_row = noise + h * L;  // noise is (G, H/G, L) = (H, L)
  double sum = 0.0;
  for (int64_t l = threadIdx.x; l < L; l += kRowThreads) sum += x[row_element(b, h, l, T, H, d)];
  const double mean = block_sum(sum) / L;
  double squares = 0.0;
  for (int64_t l = threadIdx.x; l < L; l += kRowThreads) {
    const double centred = x[row_element(b, h, l, T, H, d)] - mean;
    squares += centred * centred;
  }
  const double std_dev = sqrt(block_sum(squares) / (L - 1));
  const float mean_f = static_cast<float>(mean), std_f = static_cast<float>(std_dev);
  if (threadIdx.x == 0) {
    stats[(static_cast<int64_t>(b) * H + h) * 2] = mean_f;
    stats[(static_cast<int64_t>(b) * H + h) * 2 + 1] = std_f;
  }
  for (int64_t l = threadIdx.x; l < L; l += kRowThreads) {
    const int64_t at = row_element(b, h, l, T, H, d);
    y[at] = x[at] - (noise_row[l] * std_f + mean_f);
  }
}

// Grid (H, B): block (h, b) handles the row of head h in sample b (thread t takes elements
// t, t + 256, ...): sum(dy) and sum(dy * noise) in double, then
//   dx += dy - sum(dy) / L - sum(dy * noise) (x - mean) / ((L - 1) std).
__global__ void noise_backward_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                      const float* __restrict__ x, const float* __restrict__ stats,
                                      const float* __restrict__ noise, int T, int H, int d) {
  const int h = blockIdx.x, b = blockIdx.y;
  const int64_t L = static_cast<int64_t>(T) * d;
  const float* noise_row = noise + h * L;
  const float mean = stats[(static_cast<int64_t>(b) * H + h) * 2];
  const float std_dev = stats[(static_cast<int64_t>(b) * H + h) * 2 + 1];
  double dy_sum = 0.0, dy_noise_sum = 0.0;
  for (int64_t l = threadIdx.x; l < L; l += kRowThreads) {
    const float grad = dy[row_element(b, h, l, T, H, d)];
    dy_sum += grad;
    dy_noise_sum += static_cast<double>(grad) * noise_row[l];
  }
  dy_sum = block_sum(dy_sum);
  dy_noise_sum = block_sum(dy_noise_sum);
  const float dmean = static_cast<float>(dy_sum / L);
  // A constant row (std 0) gets no gradient through its std.
  const float dstd_factor =
      std_dev == 0.f ? 0.f
                     : static_cast<float>(dy_noise_sum / ((L - 1) * static_cast<double>(std_dev)));
  for (int64_t l = threadIdx.x; l < L; l += kRowThreads) {
    const int64_t at = row_element(b, h, l, T, H, d);
    dx[at] += dy[at] - dmean - dstd_factor * (x[at] - mean);
  }
}

}  // namespace

void pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H, int G,
                     int T, int d) {
  const int64_t L = static_cast<int64_t>(T) * d, total = static_cast<int64_t>(H) * L;
  if (total == 0) return;
  const cudaStream_t stream = context().stream;
  const int64_t blocks = blocks_for(total, kDrawThreads);
  check_grid("pgqa_make_noise", blocks);
  draw_noise_kernel<<<static_cast<unsigned>(blocks), kDrawThreads, 0, stream>>>(
      noise, seed, step, layer, H / G, L, total);
  DGQA_CUDA_CHECK_LAUNCH();
  standardise_rows_kernel<<<H, kRowThreads, 0, stream>>>(noise, L);
  DGQA_CUDA_CHECK_LAUNCH();
}

void pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise, int B, int T,
                        int H, int G, int d) {
  if (B == 0 || H == 0 || static_cast<int64_t>(T) * d == 0) return;
  check_grid("pgqa_noise_forward", H, B);
  noise_forward_kernel<<<dim3(H, B), kRowThreads, 0, context().stream>>>(y, stats, x, noise, T, H,
                                                                         d);
  DGQA_CUDA_CHECK_LAUNCH();
}

void pgqa_noise_backward(float* dx, const float* dy, const float* x, const float* stats,
                         const float* noise, int B, int T, int H, int G, int d) {
  if (B == 0 || H == 0 || static_cast<int64_t>(T) * d == 0) return;
  check_grid("pgqa_noise_backward", H, B);
  noise_backward_kernel<<<dim3(H, B), kRowThreads, 0, context().stream>>>(dx, dy, x, stats, noise,
                                                                          T, H, d);
  DGQA_CUDA_CHECK_LAUNCH();
}

}  // namespace dgqa::cuda
