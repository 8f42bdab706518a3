#include "kernels/cpu/layernorm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

namespace {

// One row: y = (x - mean) * rstd * weight + bias. Two passes over x, so that the variance has no
// cancellation; both sums go through lane_sum (vectorised, the same order at any vector width).
DGQA_SIMD_CLONES void layernorm_forward_row(float* y, float* mean, float* rstd, const float* x,
                                            const float* weight, const float* bias, int C,
                                            float eps) {
  const float m = lane_sum<float>(C, [&](int c) { return x[c]; }) / C;
  const float variance = lane_sum<float>(C, [&](int c) { return (x[c] - m) * (x[c] - m); }) / C;
  const float r = 1.f / std::sqrt(variance + eps);
#pragma omp simd
  for (int c = 0; c < C; ++c) y[c] = (x[c] - m) * r * weight[c] + bias[c];
  *mean = m;
  *rstd = r;
}

// One row of the backward (see layernorm_backward), adding its dweight and dbias terms to
// row_dweight and row_dbias.
DGQA_SIMD_CLONES void layernorm_backward_row(float* dx, float* row_dweight, float* row_dbias,
                                             const float* dy, const float* x, const float* weight,
                                             float m, float r, int C) {
  const float g_mean = lane_sum<float>(C, [&](int c) { return dy[c] * weight[c]; }) / C;
  const float gx_mean =
      lane_sum<float>(C, [&](int c) { return dy[c] * weight[c] * ((x[c] - m) * r); }) / C;
#pragma omp simd
  for (int c = 0; c < C; ++c) {
    const float xhat = (x[c] - m) * r;
    row_dweight[c] += dy[c] * xhat;
    row_dbias[c] += dy[c];
    dx[c] += r * (dy[c] * weight[c] - g_mean - xhat * gx_mean);
  }
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    layernorm_forward_row(out + static_cast<int64_t>(n) * C, mean + n, rstd + n,
                          inp + static_cast<int64_t>(n) * C, weight, bias, C, eps);
  }
}

// With xhat = (x - mean) * rstd and g = dout * weight:
//   dinp = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),  dweight += dout * xhat,
//   dbias += dout.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C) {
  // dweight and dbias sum over rows. Rows are summed in fixed chunks, each into its own
  // buffers, which are then added up in chunk order: the threads never write to the same
  // memory, and the sums do not depend on how many threads there are (so a run gives the same
  // bits on any machine, and a resumed run continues exactly).
  constexpr int kRowsPerChunk = 32;
  const int num_chunks = (N + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<float> partial_dweight(static_cast<size_t>(num_chunks) * C, 0.f);
  std::vector<float> partial_dbias(static_cast<size_t>(num_chunks) * C, 0.f);
#pragma omp parallel for schedule(static)
  for (int chunk = 0; chunk < num_chunks; ++chunk) {
    float* chunk_dweight = partial_dweight.data() + static_cast<size_t>(chunk) * C;
    float* chunk_dbias = partial_dbias.data() + static_cast<size_t>(chunk) * C;
    for (int n = chunk * kRowsPerChunk; n < std::min(N, (chunk + 1) * kRowsPerChunk); ++n) {
      const int64_t row = static_cast<int64_t>(n) * C;
      layernorm_backward_row(dinp + row, chunk_dweight, chunk_dbias, dout + row, inp + row, weight,
                             mean[n], rstd[n], C);
    }
  }
  for (int chunk = 0; chunk < num_chunks; ++chunk) {
    for (int c = 0; c < C; ++c) {
      dweight[c] += partial_dweight[static_cast<size_t>(chunk) * C + c];
      dbias[c] += partial_dbias[static_cast<size_t>(chunk) * C + c];
    }
  }
}

}  // namespace dgqa::cpu
