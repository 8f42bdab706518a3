#include "io/pos_embed.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/error.h"

namespace dgqa {
namespace {

// One output row (or column) of a bicubic resize: its four source rows and their weights.
struct BicubicTap {
  int index[4];
  double weight[4];
};

// The cubic convolution kernel at distance x >= 0, with PyTorch's A = -0.75.
double cubic_weight(double x) {
  constexpr double A = -0.75;
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

std::vector<BicubicTap> bicubic_taps(int in_size, int out_size) {
  std::vector<BicubicTap> taps(out_size);
  const double scale = static_cast<double>(in_size) / out_size;
  for (int o = 0; o < out_size; ++o) {
    const double source = (o + 0.5) * scale - 0.5;
    const double first = std::floor(source);
    const double t = source - first;
    for (int k = 0; k < 4; ++k) {
      const int index = static_cast<int>(first) - 1 + k;
      taps[o].index[k] = std::clamp(index, 0, in_size - 1);
      taps[o].weight[k] = cubic_weight(std::fabs(t + 1 - k));
    }
  }
  return taps;
}

}  // namespace

void bicubic_resize(const float* in, int channels, int in_height, int in_width, int out_height,
                    int out_width, float* out) {
  const std::vector<BicubicTap> rows = bicubic_taps(in_height, out_height);
  const std::vector<BicubicTap> cols = bicubic_taps(in_width, out_width);
  std::vector<double> wide(static_cast<size_t>(in_height) * out_width);  // one plane, cols done
  for (int c = 0; c < channels; ++c) {
    const float* plane = in + static_cast<int64_t>(c) * in_height * in_width;
    for (int y = 0; y < in_height; ++y) {
      for (int x = 0; x < out_width; ++x) {
        double sum = 0;
        for (int k = 0; k < 4; ++k)
          sum += cols[x].weight[k] * plane[y * in_width + cols[x].index[k]];
        wide[static_cast<size_t>(y) * out_width + x] = sum;
      }
    }
    float* out_plane = out + static_cast<int64_t>(c) * out_height * out_width;
    for (int y = 0; y < out_height; ++y) {
      for (int x = 0; x < out_width; ++x) {
        double sum = 0;
        for (int k = 0; k < 4; ++k) {
          sum += rows[y].weight[k] * wide[static_cast<size_t>(rows[y].index[k]) * out_width + x];
        }
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
