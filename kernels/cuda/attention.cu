// Scaled dot-product attention with a per-query-head K/V head map (semantics:
// kernels/cpu/attention.h). A first, straightforward version: one block per row of the
// attention matrix, scores in shared memory, every reduction in a fixed order so that results
// are deterministic (no atomics). A fused flash-style kernel comes later.
#include <cstdint>

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch_checks.h"

namespace dgqa::cuda {

namespace {

constexpr int kWarpSize = 32;
// Threads per block of every kernel here: 4 warps (a multiple of 32, at most 1024).
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / kWarpSize;

struct Sum {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Butterfly reduction over a full warp; every lane gets the same result.
template <typename Op>
__device__ float warp_reduce(float value, Op op) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}

// Reduction over the block (kThreads threads); every thread gets the result. Every thread must
// call it; it synchronises the block.
template <typename Op>
__device__ float block_reduce(float value, float identity, Op op) {
  __shared__ float warp_partials[kWarps];
  value = warp_reduce(value, op);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  __syncthreads();  // an earlier call's readers of warp_partials are done
  if (lane == 0) warp_partials[warp] = value;
  __syncthreads();
  return warp_reduce(lane < kWarps ? warp_partials[lane] : identity, op);
}

// Dot product of a (shared-memory) vector and a global one of length d, one warp: lanes take
// elements lane, lane + 32, ...; every lane gets the result.
__device__ float warp_dot(const float* a, const float* __restrict__ b, int d) {
  const int lane = threadIdx.x % kWarpSize;
  float dot = 0.f;
  for (int e = lane; e < d; e += kWarpSize) dot += a[e] * b[e];
  return warp_reduce(dot, Sum());
}

// Grid (T, H, B): block (i, h, b) computes row i of the attention of query head h in sample b.
// Warp w scores keys j = w, w + 4, ... (lanes over the d features); the softmax is a block
// reduction; then thread t computes out features t, t + 128, ... .
// Dynamic shared memory: q row (d floats) and the score row (T floats).
__global__ void attention_forward_kernel(float* __restrict__ out, float* __restrict__ probs,
                                         const float* __restrict__ q, const float* __restrict__ k,
                                         const float* __restrict__ v,
                                         const int* __restrict__ kv_head, int T, int H, int G,
                                         int d, float scale) {
  extern __shared__ float shared[];
  float* q_row = shared;
  float* scores = shared + d;
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int g = kv_head[h];
  const int64_t q_stride = static_cast<int64_t>(H) * d, kv_stride = static_cast<int64_t>(G) * d;
  const int64_t q_offset = (static_cast<int64_t>(b) * T + i) * q_stride + h * d;
  const float* k_head = k + static_cast<int64_t>(b) * T * kv_stride + g * d;
  const float* v_head = v + static_cast<int64_t>(b) * T * kv_stride + g * d;
  float* probs_row = probs + ((static_cast<int64_t>(b) * H + h) * T + i) * T;

  for (int e = threadIdx.x; e < d; e += kThreads) q_row[e] = q[q_offset + e];
  __syncthreads();
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  for (int j = warp; j < T; j += kWarps) {
    const float dot = warp_dot(q_row, k_head + j * kv_stride, d);
    if (lane == 0) scores[j] = scale * dot;
  }
  __syncthreads();

  float local_max = -INFINITY;
  for (int j = threadIdx.x; j < T; j += kThreads) local_max = fmaxf(local_max, scores[j]);
  const float row_max = block_reduce(local_max, -INFINITY, Max());  // exp never overflows
  float local_sum = 0.f;
  for (int j = threadIdx.x; j < T; j += kThreads) {
    scores[j] = expf(scores[j] - row_max);
    local_sum += scores[j];
  }
  const float inv_sum = 1.f / block_reduce(local_sum, 0.f, Sum());  // also publishes scores
  for (int j = threadIdx.x; j < T; j += kThreads) {
    scores[j] *= inv_sum;
    probs_row[j] = scores[j];
  }
  __syncthreads();

  for (int e = threadIdx.x; e < d; e += kThreads) {
    float acc = 0.f;
    for (int j = 0; j < T; ++j) acc += scores[j] * v_head[j * kv_stride + e];
    out[q_offset + e] = acc;
  }
}

// With A = probs, dA_ij = dout_i . v_j and dS_ij = A_ij (dA_ij - rowsum_i), where
// rowsum_i = sum_j dA_ij A_ij.
//
// Grid (T, H, B): block (i, h, b) handles query row i of head h in sample b: it computes
// dA_i. (warp w takes keys j = w, w + 4, ...), rowsum_i (block reduction, saved to
// rowsums[b, h, i] for the dk/dv kernel), dS_i. and dq_i += scale * sum_j dS_ij k_j
// (thread t takes features t, t + 128, ...).
// Dynamic shared memory: dout row (d floats) and the dS row (T floats).
__global__ void attention_backward_query_kernel(
    float* __restrict__ dq, float* __restrict__ rowsums, const float* __restrict__ dout,
    const float* __restrict__ k, const float* __restrict__ v, const float* __restrict__ probs,
    const int* __restrict__ kv_head, int T, int H, int G, int d, float scale) {
  extern __shared__ float shared[];
  float* dout_row = shared;
  float* ds = shared + d;
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int g = kv_head[h];
  const int64_t q_stride = static_cast<int64_t>(H) * d, kv_stride = static_cast<int64_t>(G) * d;
  const int64_t q_offset = (static_cast<int64_t>(b) * T + i) * q_stride + h * d;
  const float* k_head = k + static_cast<int64_t>(b) * T * kv_stride + g * d;
  const float* v_head = v + static_cast<int64_t>(b) * T * kv_stride + g * d;
  const int64_t row = (static_cast<int64_t>(b) * H + h) * T + i;
  const float* probs_row = probs + row * T;

  for (int e = threadIdx.x; e < d; e += kThreads) dout_row[e] = dout[q_offset + e];
  __syncthreads();
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  for (int j = warp; j < T; j += kWarps) {
    const float dot = warp_dot(dout_row, v_head + j * kv_stride, d);
    if (lane == 0) ds[j] = dot;
  }
  __syncthreads();

  float local = 0.f;
  for (int j = threadIdx.x; j < T; j += kThreads) local += ds[j] * probs_row[j];
  const float rowsum = block_reduce(local, 0.f, Sum());
  if (threadIdx.x == 0) rowsums[row] = rowsum;
  for (int j = threadIdx.x; j < T; j += kThreads) ds[j] = probs_row[j] * (ds[j] - rowsum);
  __syncthreads();

  for (int e = threadIdx.x; e < d; e += kThreads) {
    float acc = 0.f;
    for (int j = 0; j < T; ++j) acc += ds[j] * k_head[j * kv_stride + e];
    dq[q_offset + e] += scale * acc;
  }
}

// Grid (T, G, B): block (j, g, b) owns key/value row j of K/V head g in sample b, so no two
// blocks write the same dk/dv element. For each query head h with kv_head[h] == g, in order of
// h, it recomputes column j of dA and dS (warp w takes query rows i = w, w + 4, ...) and
// accumulates dk_j += scale * sum_i dS_ij q_i and dv_j += sum_i A_ij dout_i (thread t takes
// features t, t + 128, ..., summing i in order).
// Dynamic shared memory: v row, dk and dv accumulators (d floats each), A and dS columns (T each).
__global__ void attention_backward_key_value_kernel(
    float* __restrict__ dk, float* __restrict__ dv, const float* __restrict__ dout,
    const float* __restrict__ q, const float* __restrict__ v, const float* __restrict__ probs,
    const float* __restrict__ rowsums, const int* __restrict__ kv_head, int T, int H, int G, int d,
    float scale) {
  extern __shared__ float shared[];
  float* v_row = shared;
  float* dk_acc = shared + d;
  float* dv_acc = shared + 2 * d;
  float* a_col = shared + 3 * d;
  float* ds_col = a_col + T;
  const int j = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int64_t q_stride = static_cast<int64_t>(H) * d, kv_stride = static_cast<int64_t>(G) * d;
  const int64_t kv_offset = (static_cast<int64_t>(b) * T + j) * kv_stride + g * d;

  for (int e = threadIdx.x; e < d; e += kThreads) {
    v_row[e] = v[kv_offset + e];
    dk_acc[e] = 0.f;
    dv_acc[e] = 0.f;
  }
  __syncthreads();
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  for (int h = 0; h < H; ++h) {
    if (kv_head[h] != g) continue;
    const float* q_head = q + static_cast<int64_t>(b) * T * q_stride + h * d;
    const float* dout_head = dout + static_cast<int64_t>(b) * T * q_stride + h * d;
    const int64_t first_row = (static_cast<int64_t>(b) * H + h) * T;
    for (int i = warp; i < T; i += kWarps) {
      const float da = warp_dot(v_row, dout_head + i * q_stride, d);
      if (lane == 0) {
        const float a = probs[(first_row + i) * T + j];
        a_col[i] = a;
        ds_col[i] = a * (da - rowsums[first_row + i]);
      }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < d; e += kThreads) {
      float dk_sum = 0.f, dv_sum = 0.f;
      for (int i = 0; i < T; ++i) {
        dk_sum += ds_col[i] * q_head[i * q_stride + e];
        dv_sum += a_col[i] * dout_head[i * q_stride + e];
      }
      dk_acc[e] += scale * dk_sum;
      dv_acc[e] += dv_sum;
    }
    __syncthreads();  // the columns are overwritten for the next head
  }
  for (int e = threadIdx.x; e < d; e += kThreads) {
    dk[kv_offset + e] += dk_acc[e];
    dv[kv_offset + e] += dv_acc[e];
  }
}

}  // namespace

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const int* kv_head, int B, int T, int H, int G, int d, float scale) {
  if (B == 0 || T == 0 || H == 0) return;
  const size_t shared_bytes = attention_forward_shared_bytes(T, d);
  check_grid("attention_forward", T, H, B);
  check_shared_bytes("attention_forward", shared_bytes);
  attention_forward_kernel<<<dim3(T, H, B), kThreads, shared_bytes, context().stream>>>(
      out, probs, q, k, v, kv_head, T, H, G, d, scale);
  DGQA_CUDA_CHECK_LAUNCH();
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* probs, const int* kv_head,
                        int B, int T, int H, int G, int d, float scale) {
  if (B == 0 || T == 0 || H == 0) return;
  const size_t query_shared_bytes = attention_forward_shared_bytes(T, d);
  const size_t key_value_shared_bytes = attention_backward_key_value_shared_bytes(T, d);
  check_grid("attention_backward", T, H, B);
  check_shared_bytes("attention_backward", key_value_shared_bytes);
  const cudaStream_t stream = context().stream;
  // rowsum_i of every (b, h, i), B*H*T floats, passed from the first kernel to the second. It is
  // taken from the stream-ordered allocator and freed on the stream: the driver's memory pool
  // hands the same memory back on the next call, without a device-wide synchronisation and
  // without a buffer kept alive between calls.
  float* rowsums = nullptr;
  DGQA_CUDA_CHECK(
      cudaMallocAsync(reinterpret_cast<void**>(&rowsums), sizeof(float) * B * H * T, stream));
  attention_backward_query_kernel<<<dim3(T, H, B), kThreads, query_shared_bytes, stream>>>(
      dq, rowsums, dout, k, v, probs, kv_head, T, H, G, d, scale);
  DGQA_CUDA_CHECK_LAUNCH();
  attention_backward_key_value_kernel<<<dim3(T, G, B), kThreads, key_value_shared_bytes, stream>>>(
      dk, dv, dout, q, v, probs, rowsums, kv_head, T, H, G, d, scale);
  DGQA_CUDA_CHECK_LAUNCH();
  DGQA_CUDA_CHECK(cudaFreeAsync(rowsums, stream));
}

}  // namespace dgqa::cuda
