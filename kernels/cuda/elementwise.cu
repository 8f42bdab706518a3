// Small element-wise and layout operations of the ViT (semantics: kernels/cpu/elementwise.h).
#include <cstdint>

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"

namespace dgqa::cuda {

namespace {

constexpr int kThreads = 256;

// The first index of this thread in a grid-stride loop, and the stride.
__device__ int64_t first_index() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}
__device__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// The element-wise kernels: one thread per element, grid-stride.
__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) x[i] += y[i];
}

__global__ void scale_kernel(float* x, float s, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) x[i] *= s;
}

__global__ void scale_samples_kernel(float* out, const float* in, const float* scales,
                                     int64_t total, int64_t n) {
  for (int64_t i = first_index(); i < total; i += grid_stride()) out[i] = in[i] * scales[i / n];
}

// The sum of value over the kThreads threads of the block, in thread 0 (a tree in shared memory,
// always the same order: the result is deterministic).
__device__ double block_sum(double value) {
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = value;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  return partial[0];
}

// sum_squares in two passes over a fixed grid of kSumBlocks blocks (so the summation order,
// and the result, depend only on n): each block sums the squares of its grid-stride share into
// block_sums[block]; then one block sums block_sums into *total.
constexpr int kSumBlocks = 1024;

__global__ void sum_squares_blocks_kernel(double* block_sums, const float* x, int64_t n) {
  double sum = 0.0;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    sum += static_cast<double>(x[i]) * x[i];
  }
  const double block_total = block_sum(sum);
  if (threadIdx.x == 0) block_sums[blockIdx.x] = block_total;
}

__global__ void sum_block_sums_kernel(double* total, const double* block_sums) {
  double sum = 0.0;
  for (int i = threadIdx.x; i < kSumBlocks; i += kThreads) sum += block_sums[i];
  const double block_total = block_sum(sum);
  if (threadIdx.x == 0) *total = block_total;
}

// One thread per element of x (B, N + 1, D), grid-stride.
__global__ void tokens_forward_kernel(float* x, const float* patches, const float* cls,
                                      const float* pos, int B, int N, int D) {
  const int64_t image_size = static_cast<int64_t>(N + 1) * D;
  const int64_t total = B * image_size;
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    const int64_t b = i / image_size, in_image = i % image_size;
    const float token = in_image < D ? cls[in_image] : patches[b * N * D + in_image - D];
    x[i] = token + pos[in_image];
  }
}

// dpatches[b, i] += dx[b, 1 + i]: one thread per element of dpatches (B, N, D), grid-stride.
__global__ void tokens_backward_patches_kernel(float* dpatches, const float* dx, int B, int N,
                                               int D) {
  const int64_t patches_size = static_cast<int64_t>(N) * D;
  const int64_t total = B * patches_size;
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    const int64_t b = i / patches_size;
    dpatches[i] += dx[i + (b + 1) * D];  // skips the class tokens of images 0..b
  }
}

// dpos += sum_b dx[b]; dcls += sum_b dx[b, 0]: one thread per (token, feature), grid-stride,
// each summing over the batch in order (deterministic, no atomics).
__global__ void tokens_backward_sums_kernel(float* dcls, float* dpos, const float* dx, int B, int N,
                                            int D) {
  const int64_t image_size = static_cast<int64_t>(N + 1) * D;
  for (int64_t i = first_index(); i < image_size; i += grid_stride()) {
    float sum = 0.f;
    for (int b = 0; b < B; ++b) sum += dx[b * image_size + i];
    dpos[i] += sum;
    if (i < D) dcls[i] += sum;
  }
}

// out[b] = x[b, 0] (forward), dx[b, 0] += dout[b] (backward): one thread per element of out
// (B, D), grid-stride.
__global__ void gather_cls_forward_kernel(float* out, const float* x, int B, int T, int D) {
  const int64_t total = static_cast<int64_t>(B) * D;
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    const int64_t b = i / D, c = i % D;
    out[i] = x[b * T * D + c];
  }
}

__global__ void gather_cls_backward_kernel(float* dx, const float* dout, int B, int T, int D) {
  const int64_t total = static_cast<int64_t>(B) * D;
  for (int64_t i = first_index(); i < total; i += grid_stride()) {
    const int64_t b = i / D, c = i % D;
    dx[b * T * D + c] += dout[i];
  }
}

}  // namespace

void add_inplace(float* x, const float* y, int64_t n) {
  if (n == 0) return;
  add_kernel<<<grid_stride_blocks(n, kThreads), kThreads, 0, context().stream>>>(x, y, n);
  DGQA_CUDA_CHECK_LAUNCH();
}

void scale_inplace(float* x, float s, int64_t n) {
  if (n == 0) return;
  scale_kernel<<<grid_stride_blocks(n, kThreads), kThreads, 0, context().stream>>>(x, s, n);
  DGQA_CUDA_CHECK_LAUNCH();
}

void scale_samples(float* out, const float* in, const float* scales, int B, int64_t n) {
  const int64_t total = static_cast<int64_t>(B) * n;
  if (total == 0) return;
  scale_samples_kernel<<<grid_stride_blocks(total, kThreads), kThreads, 0, context().stream>>>(
      out, in, scales, total, n);
  DGQA_CUDA_CHECK_LAUNCH();
}

double sum_squares(const float* x, int64_t n) {
  CudaContext& ctx = context();
  // kSumBlocks block sums, then the total: kept between calls, for the life of the process.
  static double* scratch = nullptr;
  if (scratch == nullptr) DGQA_CUDA_CHECK(cudaMalloc(&scratch, sizeof(double) * (kSumBlocks + 1)));
  double* total = scratch + kSumBlocks;
  sum_squares_blocks_kernel<<<kSumBlocks, kThreads, 0, ctx.stream>>>(scratch, x, n);
  DGQA_CUDA_CHECK_LAUNCH();
  sum_block_sums_kernel<<<1, kThreads, 0, ctx.stream>>>(total, scratch);
  DGQA_CUDA_CHECK_LAUNCH();
  double result = 0.0;
  DGQA_CUDA_CHECK(
      cudaMemcpyAsync(&result, total, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream));
  DGQA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return result;
}

void tokens_forward(float* x, const float* patches, const float* cls, const float* pos, int B,
                    int N, int D) {
  const int64_t total = static_cast<int64_t>(B) * (N + 1) * D;
  if (total == 0) return;
  tokens_forward_kernel<<<grid_stride_blocks(total, kThreads), kThreads, 0, context().stream>>>(
      x, patches, cls, pos, B, N, D);
  DGQA_CUDA_CHECK_LAUNCH();
}

void tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B, int N,
                     int D) {
  const int64_t patches_total = static_cast<int64_t>(B) * N * D;
  const int64_t image_size = static_cast<int64_t>(N + 1) * D;
  CudaContext& ctx = context();
  if (patches_total > 0) {
    tokens_backward_patches_kernel<<<grid_stride_blocks(patches_total, kThreads), kThreads, 0,
                                     ctx.stream>>>(dpatches, dx, B, N, D);
    DGQA_CUDA_CHECK_LAUNCH();
  }
  if (image_size > 0) {
    tokens_backward_sums_kernel<<<grid_stride_blocks(image_size, kThreads), kThreads, 0,
                                  ctx.stream>>>(dcls, dpos, dx, B, N, D);
    DGQA_CUDA_CHECK_LAUNCH();
  }
}

void gather_cls_forward(float* out, const float* x, int B, int T, int D) {
  const int64_t total = static_cast<int64_t>(B) * D;
  if (total == 0) return;
  gather_cls_forward_kernel<<<grid_stride_blocks(total, kThreads), kThreads, 0, context().stream>>>(
      out, x, B, T, D);
  DGQA_CUDA_CHECK_LAUNCH();
}

void gather_cls_backward(float* dx, const float* dout, int B, int T, int D) {
  const int64_t total = static_cast<int64_t>(B) * D;
  if (total == 0) return;
  gather_cls_backward_kernel<<<grid_stride_blocks(total, kThreads), kThreads, 0,
                               context().stream>>>(dx, dout, B, T, D);
  DGQA_CUDA_CHECK_LAUNCH();
}

}  // namespace dgqa::cuda
