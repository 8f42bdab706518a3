// Key-head norms on the GPU (semantics: kernels/cpu/key_norms.h).
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

#include <cstdint>

namespace dgqa::cuda {

namespace {

constexpr int kWarpSize = 32;
constexpr int kSampleThreads = 256;
constexpr int kHeadThreads = 64;

__device__ double warp_sum(double value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

// Grid (G, B): one block per (head g, sample b); threads stride over the T * d key elements of
// the head (d contiguous floats per position, positions G * d apart). The sum of squares is in
// double, as on the CPU; the warp totals are added in warp order (repeatable).
__global__ void sample_norms_kernel(float* sample_norms, const float* k, int T, int G, int d) {
  __shared__ double warp_totals[kSampleThreads / kWarpSize];
  const int g = blockIdx.x, b = blockIdx.y;
  const int64_t row_stride = static_cast<int64_t>(G) * d;
  const float* head = k + static_cast<int64_t>(b) * T * row_stride + static_cast<int64_t>(g) * d;
  double squares = 0.0;
  for (int i = threadIdx.x; i < T * d; i += kSampleThreads) {
    const int p = i / d, e = i - p * d;
    const double value = head[p * row_stride + e];
    squares += value * value;
  }
  squares = warp_sum(squares);
  if (threadIdx.x % kWarpSize == 0) warp_totals[threadIdx.x / kWarpSize] = squares;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int warp = 0; warp < kSampleThreads / kWarpSize; ++warp) total += warp_totals[warp];
    sample_norms[static_cast<int64_t>(b) * G + g] = static_cast<float>(sqrt(total));
  }
}

// One thread per head: norms[g] = the sum over samples, in fp32 and in sample order.
__global__ void head_norms_kernel(float* norms, const float* sample_norms, int B, int G) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= G) return;
  float sum = 0.f;
  for (int b = 0; b < B; ++b) sum += sample_norms[static_cast<int64_t>(b) * G + g];
  norms[g] = sum;
}

}  // namespace

void key_norms(float* norms, const float* k, int B, int T, int G, int d) {
  if (G <= 0) return;
  cudaStream_t stream = context().stream;
  float* sample_norms = nullptr;  // (B, G)
  if (B > 0) {
    check_grid("key_norms", G, B);
    DGQA_CUDA_CHECK(
        cudaMallocAsync(&sample_norms, static_cast<size_t>(B) * G * sizeof(float), stream));
    sample_norms_kernel<<<dim3(G, B), kSampleThreads, 0, stream>>>(sample_norms, k, T, G, d);
    DGQA_CUDA_CHECK_LAUNCH();
  }
  head_norms_kernel<<<static_cast<int>(blocks_for(G, kHeadThreads)), kHeadThreads, 0, stream>>>(
      norms, sample_norms, B, G);
  DGQA_CUDA_CHECK_LAUNCH();
  if (sample_norms != nullptr) DGQA_CUDA_CHECK(cudaFreeAsync(sample_norms, stream));
}

}  // namespace dgqa::cuda
