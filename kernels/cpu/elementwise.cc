#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void scale_inplace(float* x, float s, int64_t n) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void scale_samples(float* out, const float* in, const float* scales, int B, int64_t n) {
#pragma omp parallel for
  for (int b = 0; b < B; ++b) {
    const int64_t first = static_cast<int64_t>(b) * n;
    for (int64_t i = first; i < first + n; ++i) out[i] = in[i] * scales[b];
  }
}

namespace {

DGQA_SIMD_CLONES double chunk_sum_squares(const float* x, int count) {
  return lane_sum<double>(count, [&](int i) { return static_cast<double>(x[i]) * x[i]; });
}

}  // namespace

// Fixed chunks summed in a fixed order: the result does not depend on the number of threads.
double sum_squares(const float* x, int64_t n) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t num_chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> chunk_sums(num_chunks);
#pragma omp parallel for
  for (int64_t chunk = 0; chunk < num_chunks; ++chunk) {
    const int64_t first = chunk * kChunk;
    chunk_sums[chunk] = chunk_sum_squares(x + first, static_cast<int>(std::min(n - first, kChunk)));
  }
  double total = 0.0;
  for (double chunk_sum : chunk_sums) total += chunk_sum;
  return total;
}

void tokens_forward(float* x, const float* patches, const float* cls, const float* pos, int B,
                    int N, int D) {
  const int T = N + 1;  // tokens per image: the class token, then the patches
#pragma omp parallel for
  for (int b = 0; b < B; ++b) {
    float* x_image = x + static_cast<int64_t>(b) * T * D;
    const float* patches_image = patches + static_cast<int64_t>(b) * N * D;
    for (int c = 0; c < D; ++c) x_image[c] = cls[c] + pos[c];
    for (int64_t i = D; i < static_cast<int64_t>(T) * D; ++i) {
      x_image[i] = patches_image[i - D] + pos[i];
    }
  }
}

void tokens_backward(float* dpatches, float* dcls, float* dpos, const float* dx, int B, int N,
                     int D) {
  const int T = N + 1;
  const int64_t image_size = static_cast<int64_t>(T) * D;
  // dpatches: independent per image.
#pragma omp parallel for
  for (int b = 0; b < B; ++b) {
    const float* dx_image = dx + b * image_size;
    float* dpatches_image = dpatches + static_cast<int64_t>(b) * N * D;
    for (int64_t i = D; i < image_size; ++i) dpatches_image[i - D] += dx_image[i];
  }
  // dpos and dcls sum over the batch: parallel over the positions instead.
#pragma omp parallel for
  for (int64_t i = 0; i < image_size; ++i) {
    float sum = 0.f;
    for (int b = 0; b < B; ++b) sum += dx[b * image_size + i];
    dpos[i] += sum;
    if (i < D) dcls[i] += sum;
  }
}

void gather_cls_forward(float* out, const float* x, int B, int T, int D) {
  for (int b = 0; b < B; ++b) {
    std::memcpy(out + static_cast<int64_t>(b) * D, x + static_cast<int64_t>(b) * T * D,
                sizeof(float) * D);
  }
}

void gather_cls_backward(float* dx, const float* dout, int B, int T, int D) {
  for (int b = 0; b < B; ++b) {
    float* dx_cls = dx + static_cast<int64_t>(b) * T * D;
    const float* dout_image = dout + static_cast<int64_t>(b) * D;
    for (int c = 0; c < D; ++c) dx_cls[c] += dout_image[c];
  }
}

}  // namespace dgqa::cpu
