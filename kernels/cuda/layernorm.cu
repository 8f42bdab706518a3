// LayerNorm over the last dimension on the GPU (semantics: kernels/cpu/layernorm.h).
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

#include <cstdint>

namespace dgqa::cuda {

namespace {

constexpr int kWarpSize = 32;
constexpr int kForwardThreads = 256;  // 8 warps: 8 rows per block
constexpr int kRowsPerForwardBlock = kForwardThreads / kWarpSize;
constexpr int kBackwardThreads = 256;
constexpr int kColumnThreads = 256;
// dweight and dbias are summed over fixed chunks of rows, then over the chunks in order: the
// result does not depend on the GPU or on scheduling.
constexpr int kRowsPerChunk = 32;

__device__ float warp_sum(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

// The sum of `value` over the block, returned to every thread. The warp totals are added in
// warp order, so the result is repeatable. warp_totals holds blockDim.x / 32 floats.
__device__ float block_sum(float value, float* warp_totals) {
  value = warp_sum(value);
  if (threadIdx.x % kWarpSize == 0) warp_totals[threadIdx.x / kWarpSize] = value;
  __syncthreads();
  float total = 0.f;
  for (int warp = 0; warp < static_cast<int>(blockDim.x / kWarpSize); ++warp) {
    total += warp_totals[warp];
  }
  __syncthreads();  // warp_totals may be reused by the next call
  return total;
}

// One warp per row; each lane strides over the row's columns. Two passes over the row (mean,
// then the squared deviations) avoid cancellation in the variance.
__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* inp,
                                         const float* weight, const float* bias, int N, int C,
                                         float eps) {
  const int row = blockIdx.x * kRowsPerForwardBlock + threadIdx.x / kWarpSize;
  if (row >= N) return;
  const int lane = threadIdx.x % kWarpSize;
  const float* x = inp + static_cast<int64_t>(row) * C;
  float* y = out + static_cast<int64_t>(row) * C;

  float sum = 0.f;
  for (int c = lane; c < C; c += kWarpSize) sum += x[c];
  const float row_mean = warp_sum(sum) / C;
  float squares = 0.f;
  for (int c = lane; c < C; c += kWarpSize) {
    const float deviation = x[c] - row_mean;
    squares += deviation * deviation;
  }
  const float row_rstd = 1.f / sqrtf(warp_sum(squares) / C + eps);
  for (int c = lane; c < C; c += kWarpSize) {
    y[c] = (x[c] - row_mean) * row_rstd * weight[c] + bias[c];
  }
  if (lane == 0) {
    mean[row] = row_mean;
    rstd[row] = row_rstd;
  }
}

// One block per row; threads stride over the columns. With xhat = (x - mean) * rstd and
// g = dout * weight: dinp += rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)).
__global__ void layernorm_backward_dinp_kernel(float* dinp, const float* dout, const float* inp,
                                               const float* weight, const float* mean,
                                               const float* rstd, int C) {
  __shared__ float warp_totals[kBackwardThreads / kWarpSize];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * C;
  const float* x = inp + offset;
  const float* dy = dout + offset;
  float* dx = dinp + offset;
  const float row_mean = mean[blockIdx.x], row_rstd = rstd[blockIdx.x];

  float g_sum = 0.f, gx_sum = 0.f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float xhat = (x[c] - row_mean) * row_rstd;
    const float g = dy[c] * weight[c];
    g_sum += g;
    gx_sum += g * xhat;
  }
  const float g_mean = block_sum(g_sum, warp_totals) / C;
  const float gx_mean = block_sum(gx_sum, warp_totals) / C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float xhat = (x[c] - row_mean) * row_rstd;
    dx[c] += row_rstd * (dy[c] * weight[c] - g_mean - xhat * gx_mean);
  }
}

// Grid (row chunks, column tiles); one thread per column, looping over the kRowsPerChunk rows
// of its chunk: partial[chunk, c] = the chunk's sums of dout * xhat and of dout.
__global__ void layernorm_backward_partials_kernel(float* partial_dweight, float* partial_dbias,
                                                   const float* dout, const float* inp,
                                                   const float* mean, const float* rstd, int N,
                                                   int C) {
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int chunk = blockIdx.x;
  const int first_row = chunk * kRowsPerChunk;
  const int end_row = min(N, first_row + kRowsPerChunk);
  float dweight_sum = 0.f, dbias_sum = 0.f;
  for (int n = first_row; n < end_row; ++n) {
    const int64_t i = static_cast<int64_t>(n) * C + c;
    dweight_sum += dout[i] * (inp[i] - mean[n]) * rstd[n];
    dbias_sum += dout[i];
  }
  partial_dweight[static_cast<int64_t>(chunk) * C + c] = dweight_sum;
  partial_dbias[static_cast<int64_t>(chunk) * C + c] = dbias_sum;
}

// One thread per column: adds the chunk partials in chunk order into dweight and dbias.
__global__ void layernorm_backward_params_kernel(float* dweight, float* dbias,
                                                 const float* partial_dweight,
                                                 const float* partial_dbias, int num_chunks,
                                                 int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float dweight_sum = 0.f, dbias_sum = 0.f;
  for (int chunk = 0; chunk < num_chunks; ++chunk) {
    dweight_sum += partial_dweight[static_cast<int64_t>(chunk) * C + c];
    dbias_sum += partial_dbias[static_cast<int64_t>(chunk) * C + c];
  }
  dweight[c] += dweight_sum;
  dbias[c] += dbias_sum;
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
  if (N <= 0 || C <= 0) return;
  const int blocks = static_cast<int>(blocks_for(N, kRowsPerForwardBlock));
  layernorm_forward_kernel<<<blocks, kForwardThreads, 0, context().stream>>>(
      out, mean, rstd, inp, weight, bias, N, C, eps);
  DGQA_CUDA_CHECK_LAUNCH();
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C) {
  if (N <= 0 || C <= 0) return;
  check_grid("layernorm_backward", N);
  cudaStream_t stream = context().stream;
  layernorm_backward_dinp_kernel<<<N, kBackwardThreads, 0, stream>>>(dinp, dout, inp, weight, mean,
                                                                     rstd, C);
  DGQA_CUDA_CHECK_LAUNCH();

  const int num_chunks = static_cast<int>(blocks_for(N, kRowsPerChunk));
  const size_t partial_bytes = static_cast<size_t>(num_chunks) * C * sizeof(float);
  float* partials = nullptr;  // partial dweight, then partial dbias
  DGQA_CUDA_CHECK(cudaMallocAsync(&partials, 2 * partial_bytes, stream));
  float* partial_dweight = partials;
  float* partial_dbias = partials + static_cast<size_t>(num_chunks) * C;
  const int column_tiles = static_cast<int>(blocks_for(C, kColumnThreads));
  layernorm_backward_partials_kernel<<<dim3(num_chunks, column_tiles), kColumnThreads, 0, stream>>>(
      partial_dweight, partial_dbias, dout, inp, mean, rstd, N, C);
  DGQA_CUDA_CHECK_LAUNCH();
  layernorm_backward_params_kernel<<<column_tiles, kColumnThreads, 0, stream>>>(
      dweight, dbias, partial_dweight, partial_dbias, num_chunks, C);
  DGQA_CUDA_CHECK_LAUNCH();
  DGQA_CUDA_CHECK(cudaFreeAsync(partials, stream));
}

}  // namespace dgqa::cuda
