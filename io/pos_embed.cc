#include "io/pos_embed.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/error.h"

namespace dgqa {
namespace {

// One output row (or column) of an antialiased bicubic resize: the source rows first ..
// first + weights.size() - 1 and their weights (summing to 1).
struct BicubicTaps {
  int first = 0;
  std::vector<double> weights;
};

// Keys' cubic convolution kernel with a = -0.5 (PyTorch's antialiased bicubic, as PIL's).
double cubic_weight(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

// Output o is centred at source coordinate (o + 0.5) * scale (scale = in / out); the kernel
// spans 2 source pixels each side, stretched by the scale when shrinking (so that every source
// pixel counts), is cut at the image's edges, and its weights are divided by their sum.
std::vector<BicubicTaps> bicubic_taps(int in_size, int out_size) {
  std::vector<BicubicTaps> taps(out_size);
  const double scale = static_cast<double>(in_size) / out_size;
  const double stretch = std::max(scale, 1.0);
  const double support = 2 * stretch;
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    // Truncation toward zero, then clamped, as PyTorch does.
    const int first = std::max(static_cast<int>(center - support + 0.5), 0);
    const int end = std::min(static_cast<int>(center + support + 0.5), in_size);
    double total = 0;
    for (int i = first; i < end; ++i) {
      taps[o].weights.push_back(cubic_weight((i - center + 0.5) / stretch));
      total += taps[o].weights.back();
    }
    if (total != 0) {
      for (double& weight : taps[o].weights) weight /= total;
    }
    taps[o].first = first;
  }
  return taps;
}

}  // namespace

void bicubic_resize(const float* in, int channels, int in_height, int in_width, int out_height,
                    int out_width, float* out) {
  const std::vector<BicubicTaps> rows = bicubic_taps(in_height, out_height);
  const std::vector<BicubicTaps> cols = bicubic_taps(in_width, out_width);
  std::vector<double> wide(static_cast<size_t>(in_height) * out_width);  // one plane, cols done
  for (int c = 0; c < channels; ++c) {
    const float* plane = in + static_cast<int64_t>(c) * in_height * in_width;
    for (int y = 0; y < in_height; ++y) {
      for (int x = 0; x < out_width; ++x) {
        double sum = 0;
        const BicubicTaps& tap = cols[x];
        for (size_t k = 0; k < tap.weights.size(); ++k)
          sum += tap.weights[k] * plane[y * in_width + tap.first + k];
        wide[static_cast<size_t>(y) * out_width + x] = sum;
      }
    }
    float* out_plane = out + static_cast<int64_t>(c) * out_height * out_width;
    for (int y = 0; y < out_height; ++y) {
      const BicubicTaps& tap = rows[y];
      for (int x = 0; x < out_width; ++x) {
        double sum = 0;
        for (size_t k = 0; k < tap.weights.size(); ++k)
          sum += tap.weights[k] * wide[(tap.first + k) * out_width + x];
        out_plane[y * out_width + x] = static_cast<float>(sum);
      }
    }
  }
}

FloatTensor resample_pos_embed(const FloatTensor& pos_embed, const std::vector<int64_t>& shape,
                               const std::string& path) {
  const std::vector<int64_t>& from = pos_embed.shape;
  const int64_t patches = from.size() == 3 ? from[1] - 1 : 0;
  const int64_t old_side =
      std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(patches, 0))));
  if (from.size() != 3 || from[0] != 1 || patches < 1 || old_side * old_side != patches) {
    throw InputError(path + ": tensor pos_embed has shape " + shape_text(from) +
                     ", not (1, 1 + a square number of patches, D): it cannot be resampled to " +
                     shape_text(shape));
  }
  if (from[2] != shape[2]) {
    throw InputError(path + ": tensor pos_embed has shape " + shape_text(from) +
                     ", the model needs " + shape_text(shape) + ": another embed_dim (" +
                     std::to_string(from[2]) + ", the model's " + std::to_string(shape[2]) + ")");
  }
  const int D = static_cast<int>(shape[2]);
  const int old_grid = static_cast<int>(old_side);
  const int new_grid = static_cast<int>(std::llround(std::sqrt(static_cast<double>(shape[1] - 1))));
  // The grid as D planes (CHW), resized, then back to one row of D per patch.
  const int64_t old_patches = patches, new_patches = int64_t{new_grid} * new_grid;
  std::vector<float> planes(old_patches * D), resized(new_patches * D);
  for (int64_t p = 0; p < old_patches; ++p) {
    for (int d = 0; d < D; ++d) planes[d * old_patches + p] = pos_embed.values[(1 + p) * D + d];
  }
  bicubic_resize(planes.data(), D, old_grid, old_grid, new_grid, new_grid, resized.data());
  FloatTensor result{shape, std::vector<float>((1 + new_patches) * D)};
  std::copy(pos_embed.values.begin(), pos_embed.values.begin() + D, result.values.begin());
  for (int64_t p = 0; p < new_patches; ++p) {
    for (int d = 0; d < D; ++d) result.values[(1 + p) * D + d] = resized[d * new_patches + p];
  }
  return result;
}

}  // namespace dgqa
