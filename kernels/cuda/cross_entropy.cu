// Softmax cross-entropy with label smoothing and mixed targets on the GPU (semantics:
// kernels/cpu/cross_entropy.h).
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace dgqa::cuda {

namespace {

constexpr int kWarpSize = 32;
constexpr int kRowThreads = 256;
constexpr int kElementThreads = 256;

__device__ float warp_sum(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

__device__ float warp_max(float value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}

// The sum and the maximum of `value` over the block, returned to every thread; the warp
// results are combined in warp order (repeatable). warp_results holds kRowThreads / 32 floats.
__device__ float block_sum(float value, float* warp_results) {
  value = warp_sum(value);
  if (threadIdx.x % kWarpSize == 0) warp_results[threadIdx.x / kWarpSize] = value;
  __syncthreads();
  float total = 0.f;
  for (int warp = 0; warp < kRowThreads / kWarpSize; ++warp) total += warp_results[warp];
  __syncthreads();  // warp_results may be reused by the next call
  return total;
}

__device__ float block_max(float value, float* warp_results) {
  value = warp_max(value);
  if (threadIdx.x % kWarpSize == 0) warp_results[threadIdx.x / kWarpSize] = value;
  __syncthreads();
  float result = warp_results[0];
  for (int warp = 1; warp < kRowThreads / kWarpSize; ++warp) {
    result = fmaxf(result, warp_results[warp]);
  }
  __syncthreads();
  return result;
}

// One block of kRowThreads per row; threads stride over the K classes. log softmax(z)_k =
// z_k - max - log(sum_j exp(z_j - max)): no exp of a large number.
__global__ void softmax_cross_entropy_forward_kernel(float* probs, float* losses,
                                                     const float* logits, const int* labels,
                                                     const int* mix_labels,
                                                     const float* mix_weights, int K,
                                                     float smoothing) {
  __shared__ float warp_results[kRowThreads / kWarpSize];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * K;
  const float* z = logits + offset;
  float* p = probs + offset;

  float thread_max = -INFINITY;
  for (int k = threadIdx.x; k < K; k += kRowThreads) thread_max = fmaxf(thread_max, z[k]);
  const float max_logit = block_max(thread_max, warp_results);
  float thread_sum = 0.f, thread_shifted_sum = 0.f;
  for (int k = threadIdx.x; k < K; k += kRowThreads) {
    p[k] = expf(z[k] - max_logit);
    thread_sum += p[k];
    thread_shifted_sum += z[k] - max_logit;
  }
  const float sum = block_sum(thread_sum, warp_results);
  const float shifted_sum = block_sum(thread_shifted_sum, warp_results);
  const float inv_sum = 1.f / sum;
  for (int k = threadIdx.x; k < K; k += kRowThreads) p[k] *= inv_sum;  // its own elements
  if (threadIdx.x == 0) {
    // -log p_k = log(sum) - (z_k - max): the labels' term and the mean over the K classes.
    float label_loss = logf(sum) - (z[labels[blockIdx.x]] - max_logit);
    if (mix_weights != nullptr) {
      const float w = mix_weights[blockIdx.x];
      label_loss =
          w * label_loss + (1.f - w) * (logf(sum) - (z[mix_labels[blockIdx.x]] - max_logit));
    }
    const float mean_loss = logf(sum) - shifted_sum / K;
    losses[blockIdx.x] =
        smoothing == 0.f ? label_loss : (1.f - smoothing) * label_loss + smoothing * mean_loss;
  }
}

// Grid-stride loop over the N * K elements: dlogits += scale * (probs - target), the target
// on_label at the label and off_label elsewhere; with mix_weights, off_label plus (1 - s) split
// between the two labels (on_label - off_label = 1 - s).
__global__ void softmax_cross_entropy_backward_kernel(float* dlogits, const float* probs,
                                                      const int* labels, const int* mix_labels,
                                                      const float* mix_weights, int64_t total,
                                                      int K, float scale, float on_label,
                                                      float off_label) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    const int row = static_cast<int>(i / K);
    const int k = static_cast<int>(i - static_cast<int64_t>(row) * K);
    float target = k == labels[row] ? on_label : off_label;
    if (mix_weights != nullptr) {
      const float w = mix_weights[row], on = on_label - off_label;
      target = off_label + (k == labels[row] ? on * w : 0.f) +
               (k == mix_labels[row] ? on * (1.f - w) : 0.f);
    }
    dlogits[i] += scale * (probs[i] - target);
  }
}

}  // namespace

double softmax_cross_entropy_forward(float* probs, float* losses, const float* logits,
                                     const int* labels, const int* mix_labels,
                                     const float* mix_weights, int N, int K, float smoothing) {
  if (N <= 0) return 0.0;
  check_grid("softmax_cross_entropy_forward", N);
  cudaStream_t stream = context().stream;
  softmax_cross_entropy_forward_kernel<<<N, kRowThreads, 0, stream>>>(
      probs, losses, logits, labels, mix_labels, mix_weights, K, smoothing);
  DGQA_CUDA_CHECK_LAUNCH();
  // Summed on the host in double, in row order: the same result on every run.
  std::vector<float> host_losses(N);
  DGQA_CUDA_CHECK(cudaMemcpyAsync(host_losses.data(), losses, N * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream));
  DGQA_CUDA_CHECK(cudaStreamSynchronize(stream));
  double total = 0.0;
  for (float loss : host_losses) total += loss;
  return total;
}

void softmax_cross_entropy_backward(float* dlogits, const float* probs, const int* labels,
                                    const int* mix_labels, const float* mix_weights, int N, int K,
                                    float scale, float smoothing) {
  const int64_t total = static_cast<int64_t>(N) * K;
  if (total <= 0) return;
  const int blocks = grid_stride_blocks(total, kElementThreads);
  const float off_label = smoothing / K, on_label = 1.f - smoothing + off_label;
  softmax_cross_entropy_backward_kernel<<<blocks, kElementThreads, 0, context().stream>>>(
      dlogits, probs, labels, mix_labels, mix_weights, total, K, scale, on_label, off_label);
  DGQA_CUDA_CHECK_LAUNCH();
}

}  // namespace dgqa::cuda
