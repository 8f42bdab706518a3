#include "kernels/cpu/attention.h"

#include <cblas.h>
#include <omp.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/head_matmul.h"
#include "kernels/cpu/threads.h"
#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

namespace {

// The (T, d) matrix of one K or V head (rows `stride` apart) transposed into a (d, T) matrix
// held by the calling thread, so that products with it read rows (see head_matmul).
const float* transposed_head(const float* head, int stride, int T, int d) {
  thread_local std::vector<float> transposed;  // grown once per thread, reused by every call
  transposed.resize(static_cast<size_t>(T) * d);
  for (int t = 0; t < T; ++t) {
    for (int c = 0; c < d; ++c) {
      transposed[static_cast<size_t>(c) * T + t] = head[static_cast<int64_t>(t) * stride + c];
    }
  }
  return transposed.data();
}

// Each row of scores (rows, cols) becomes its softmax.
DGQA_SIMD_CLONES void softmax_rows(float* scores, int rows, int cols) {
  for (int i = 0; i < rows; ++i) {
    float* row = scores + static_cast<int64_t>(i) * cols;
    float row_max = row[0];  // subtracted, so that exp never overflows
#pragma omp simd reduction(max : row_max)
    for (int j = 1; j < cols; ++j) row_max = row[j] > row_max ? row[j] : row_max;
#pragma omp simd
    for (int j = 0; j < cols; ++j) row[j] = exp_fast(row[j] - row_max);
    const float inv_sum = 1.f / lane_sum<float>(cols, [&](int j) { return row[j]; });
#pragma omp simd
    for (int j = 0; j < cols; ++j) row[j] *= inv_sum;
  }
}

// dA (rows, cols) becomes dS = A * (dA - rowsum(dA * A)), the softmax's backward.
DGQA_SIMD_CLONES void softmax_rows_backward(float* dscores, const float* probs, int rows,
                                            int cols) {
  for (int i = 0; i < rows; ++i) {
    const float* a_row = probs + static_cast<int64_t>(i) * cols;
    float* ds_row = dscores + static_cast<int64_t>(i) * cols;
    const float dot = lane_sum<float>(cols, [&](int j) { return ds_row[j] * a_row[j]; });
#pragma omp simd
    for (int j = 0; j < cols; ++j) ds_row[j] = a_row[j] * (ds_row[j] - dot);
  }
}

}  // namespace

// Layout: q, out and dq are (B, T, H*d) and k, v, dk, dv are (B, T, G*d), so the (T, d) matrix of
// one head is a column block of width d with row stride H*d or G*d. Both passes run one task
// per (sample, K/V head), which handles that K/V head's query heads (any number: KDGQA's groups
// differ in size).
//
// The forward's products are head_matmul's loops (its K is transposed once for all of its query
// heads); the backward's are OpenBLAS sgemms, which read the probabilities (no longer in cache
// by then: 7.7 MB a layer at tiny-fmnist's batch) faster through their packing: measured on a
// 2-core AMD EPYC, the forward takes 55% of the time it took with sgemm, a head_matmul backward
// 135%.

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const int* kv_head, int B, int T, int H, int G, int d, float scale) {
  const int q_stride = H * d, kv_stride = G * d;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < B; ++b) {
    for (int g = 0; g < G; ++g) {
      const float* k_head = k + static_cast<int64_t>(b) * T * kv_stride + g * d;
      const float* v_head = v + static_cast<int64_t>(b) * T * kv_stride + g * d;
      const float* k_transposed = transposed_head(k_head, kv_stride, T, d);
      for (int h = 0; h < H; ++h) {
        if (kv_head[h] != g) continue;
        const float* q_head = q + static_cast<int64_t>(b) * T * q_stride + h * d;
        float* out_head = out + static_cast<int64_t>(b) * T * q_stride + h * d;
        float* probs_head = probs + (static_cast<int64_t>(b) * H + h) * T * T;
        // Scores (T, T) = scale * q_head k_head^T, then a softmax over each row.
        head_matmul(probs_head, T, q_head, q_stride, 1, k_transposed, T, T, T, d, scale, false);
        softmax_rows(probs_head, T, T);
        // out_head (T, d) = probs_head v_head.
        head_matmul(out_head, q_stride, probs_head, T, 1, v_head, kv_stride, T, d, T, 1.f, false);
      }
    }
  }
}

// With S = scale * Q K^T, A = softmax(S) (probs) and O = A V:
//   dV = A^T dO,  dA = dO V^T,  dS = A * (dA - rowsum(dA * A)),
//   dQ = scale * dS K,  dK = scale * dS^T Q.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* probs, const int* kv_head,
                        int B, int T, int H, int G, int d, float scale, float* scratch) {
  run_blas_on_calling_thread();  // the products below are sgemms on this thread
  const int q_stride = H * d, kv_stride = G * d;
  // Several query heads may share a K/V head and add to the same dk, dv: one task per
  // (sample, K/V head) handles all of its query heads, so no two threads write the same rows.
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < B; ++b) {
    for (int g = 0; g < G; ++g) {
      float* dscores = scratch + static_cast<int64_t>(omp_get_thread_num()) * T * T;
      const float* k_head = k + static_cast<int64_t>(b) * T * kv_stride + g * d;
      const float* v_head = v + static_cast<int64_t>(b) * T * kv_stride + g * d;
      float* dk_head = dk + static_cast<int64_t>(b) * T * kv_stride + g * d;
      float* dv_head = dv + static_cast<int64_t>(b) * T * kv_stride + g * d;
      for (int h = 0; h < H; ++h) {
        if (kv_head[h] != g) continue;
        const float* q_head = q + static_cast<int64_t>(b) * T * q_stride + h * d;
        const float* dout_head = dout + static_cast<int64_t>(b) * T * q_stride + h * d;
        float* dq_head = dq + static_cast<int64_t>(b) * T * q_stride + h * d;
        const float* probs_head = probs + (static_cast<int64_t>(b) * H + h) * T * T;
        // dv_head += A^T dO.
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, d, T, 1.f, probs_head, T, dout_head,
                    q_stride, 1.f, dv_head, kv_stride);
        // dA = dO V^T, then dS in place.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d, 1.f, dout_head, q_stride,
                    v_head, kv_stride, 0.f, dscores, T);
        softmax_rows_backward(dscores, probs_head, T, T);
        // dq_head += scale * dS K;  dk_head += scale * dS^T Q.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, d, T, scale, dscores, T, k_head,
                    kv_stride, 1.f, dq_head, q_stride);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, d, T, scale, dscores, T, q_head,
                    q_stride, 1.f, dk_head, kv_stride);
      }
    }
  }
}

long attention_backward_scratch_size(int T) {
  return static_cast<long>(T) * T * omp_get_max_threads();
}

}  // namespace dgqa::cpu
