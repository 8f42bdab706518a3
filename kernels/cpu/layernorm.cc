#include "kernels/cpu/layernorm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace dgqa::cpu {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C, float eps) {
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    const float* x = inp + static_cast<int64_t>(n) * C;
    float* y = out + static_cast<int64_t>(n) * C;
    double sum = 0.0;
    for (int c = 0; c < C; ++c) sum += x[c];
    const double row_mean = sum / C;
    double squares = 0.0;  // two passes: no cancellation in the variance
    for (int c = 0; c < C; ++c) squares += (x[c] - row_mean) * (x[c] - row_mean);
    const float m = static_cast<float>(row_mean);
    const float r = static_cast<float>(1.0 / std::sqrt(squares / C + eps));
    for (int c = 0; c < C; ++c) y[c] = (x[c] - m) * r * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = r;
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
      const float* x = inp + static_cast<int64_t>(n) * C;
      const float* dy = dout + static_cast<int64_t>(n) * C;
      float* dx = dinp + static_cast<int64_t>(n) * C;
      const float m = mean[n], r = rstd[n];
      float g_mean = 0.f, gx_mean = 0.f;
      for (int c = 0; c < C; ++c) {
        const float xhat = (x[c] - m) * r;
        const float g = dy[c] * weight[c];
        g_mean += g;
        gx_mean += g * xhat;
        chunk_dweight[c] += dy[c] * xhat;
        chunk_dbias[c] += dy[c];
      }
      g_mean /= C;
      gx_mean /= C;
      for (int c = 0; c < C; ++c) {
        const float xhat = (x[c] - m) * r;
        dx[c] += r * (dy[c] * weight[c] - g_mean - xhat * gx_mean);
      }
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
