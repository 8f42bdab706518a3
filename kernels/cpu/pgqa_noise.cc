#include "kernels/cpu/pgqa_noise.h"

#include <cmath>

#include "common/philox.h"
#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

void pgqa_make_noise(float* noise, uint64_t seed, uint32_t step, uint32_t layer, int H, int G,
                     int T, int d) {
  const int heads_per_group = H / G;
  const int64_t L = static_cast<int64_t>(T) * d;
  // Row h = g * heads_per_group + i of noise is row i of group g's matrix R.
#pragma omp parallel for collapse(2)
  for (int g = 0; g < G; ++g) {
    for (int i = 0; i < heads_per_group; ++i) {
      float* row = noise + (static_cast<int64_t>(g) * heads_per_group + i) * L;
      double sum = 0.0;
      for (int64_t j = 0; j < L; ++j) {
        // The stream of group g numbers R's elements row by row, as R.flatten() would.
        row[j] = j == i ? 0.f : philox_uniform_at(seed, step, layer, g, i * L + j);
        sum += row[j];
      }
      const double mean = sum / L;
      double squares = 0.0;
      for (int64_t j = 0; j < L; ++j) squares += (row[j] - mean) * (row[j] - mean);
      double std_dev = std::sqrt(squares / (L - 1));
      if (std_dev == 0.0) std_dev = 1.0;
      for (int64_t j = 0; j < L; ++j) row[j] = static_cast<float>((row[j] - mean) / std_dev);
    }
  }
}

namespace {

// Mean and unbiased standard deviation of the row of head h in one sample: T pieces of d
// floats, row_stride apart. (Sums in float vector lanes, see vector_math.h: each lane adds
// only 1/16 of the row, and the variance is taken around the mean, in a second pass.)
DGQA_SIMD_CLONES void row_stats(const float* x_row, int T, int d, int64_t row_stride, double* mean,
                                double* std_dev) {
  const int64_t L = static_cast<int64_t>(T) * d;
  float partial[kLanes] = {};
  for (int p = 0; p < T; ++p) {
    const float* piece = x_row + p * row_stride;
    lane_accumulate(partial, d, [&](int e) { return piece[e]; });
  }
  const float m = static_cast<float>(static_cast<double>(add_lanes(partial)) / L);
  float squares[kLanes] = {};
  for (int p = 0; p < T; ++p) {
    const float* piece = x_row + p * row_stride;
    lane_accumulate(squares, d, [&](int e) { return (piece[e] - m) * (piece[e] - m); });
  }
  *mean = m;
  *std_dev = std::sqrt(static_cast<double>(add_lanes(squares)) / (L - 1));
}

// y = x - (noise * std + mean) over the row's T pieces (y may alias x).
DGQA_SIMD_CLONES void row_subtract_noise(float* y_row, const float* x_row, const float* noise_row,
                                         int T, int d, int64_t row_stride, float mean,
                                         float std_dev) {
  for (int p = 0; p < T; ++p) {
    const float* x_piece = x_row + p * row_stride;
    const float* noise_piece = noise_row + p * d;
    float* y_piece = y_row + p * row_stride;
#pragma omp simd
    for (int e = 0; e < d; ++e) y_piece[e] = x_piece[e] - (noise_piece[e] * std_dev + mean);
  }
}

// The row's sums of dy and of dy * noise, for the backward pass.
DGQA_SIMD_CLONES void row_gradient_sums(const float* dy_row, const float* noise_row, int T, int d,
                                        int64_t row_stride, double* dy_sum, double* dy_noise_sum) {
  float sums[kLanes] = {}, noise_sums[kLanes] = {};
  for (int p = 0; p < T; ++p) {
    const float* dy_piece = dy_row + p * row_stride;
    const float* noise_piece = noise_row + p * d;
    lane_accumulate(sums, d, [&](int e) { return dy_piece[e]; });
    lane_accumulate(noise_sums, d, [&](int e) { return dy_piece[e] * noise_piece[e]; });
  }
  *dy_sum = add_lanes(sums);
  *dy_noise_sum = add_lanes(noise_sums);
}

// dx += dy - dmean - dstd_factor (x - mean) over the row's T pieces.
DGQA_SIMD_CLONES void row_input_gradient(float* dx_row, const float* dy_row, const float* x_row,
                                         int T, int d, int64_t row_stride, float dmean,
                                         float dstd_factor, float mean) {
  for (int p = 0; p < T; ++p) {
    const int64_t offset = p * row_stride;
#pragma omp simd
    for (int e = 0; e < d; ++e) {
      dx_row[offset + e] += dy_row[offset + e] - dmean - dstd_factor * (x_row[offset + e] - mean);
    }
  }
}

}  // namespace

void pgqa_noise_forward(float* y, float* stats, const float* x, const float* noise, int B, int T,
                        int H, int G, int d) {
  const int64_t row_stride = static_cast<int64_t>(H) * d;
  const int64_t L = static_cast<int64_t>(T) * d;
#pragma omp parallel for collapse(2)
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h) {
      const int64_t offset = static_cast<int64_t>(b) * T * row_stride + h * d;
      const float* x_row = x + offset;
      float* y_row = y + offset;
      const float* noise_row = noise + h * L;  // noise is (G, H/G, L) = (H, L)
      double mean, std_dev;
      row_stats(x_row, T, d, row_stride, &mean, &std_dev);
      const float mean_f = static_cast<float>(mean), std_f = static_cast<float>(std_dev);
      stats[(static_cast<int64_t>(b) * H + h) * 2] = mean_f;
      stats[(static_cast<int64_t>(b) * H + h) * 2 + 1] = std_f;
      // Element-wise and after the statistics, so y may alias x.
      row_subtract_noise(y_row, x_row, noise_row, T, d, row_stride, mean_f, std_f);
    }
  }
}

// y_j = x_j - mean - n_j * std, with d mean / d x_j = 1 / L and
// d std / d x_j = (x_j - mean) / ((L - 1) std), so
//   dx_j = dy_j - sum(dy) / L - sum_k(dy_k n_k) (x_j - mean) / ((L - 1) std).
void pgqa_noise_backward(float* dx, const float* dy, const float* x, const float* stats,
                         const float* noise, int B, int T, int H, int G, int d) {
  const int64_t row_stride = static_cast<int64_t>(H) * d;
  const int64_t L = static_cast<int64_t>(T) * d;
#pragma omp parallel for collapse(2)
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h) {
      const int64_t offset = static_cast<int64_t>(b) * T * row_stride + h * d;
      const float* x_row = x + offset;
      const float* dy_row = dy + offset;
      float* dx_row = dx + offset;
      const float* noise_row = noise + h * L;
      const float mean = stats[(static_cast<int64_t>(b) * H + h) * 2];
      const float std_dev = stats[(static_cast<int64_t>(b) * H + h) * 2 + 1];
      double dy_sum, dy_noise_sum;
      row_gradient_sums(dy_row, noise_row, T, d, row_stride, &dy_sum, &dy_noise_sum);
      const float dmean = static_cast<float>(dy_sum / L);
      // A constant row (std 0) gets no gradient through its std.
      const float dstd_factor =
          std_dev == 0.f
              ? 0.f
              : static_cast<float>(dy_noise_sum / ((L - 1) * static_cast<double>(std_dev)));
      row_input_gradient(dx_row, dy_row, x_row, T, d, row_stride, dmean, dstd_factor, mean);
    }
  }
}

}  // namespace dgqa::cpu
