// torchvision 0.14's crop and resize arithmetic. torch draws the crop's area fraction and log
// aspect ratio as float32 tensors; they are rounded to float here as well, so the rectangles
// follow the same rounding even though the random numbers come from our own stream.
#include "data/crop_geometry.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace dgqa {
namespace {

// Python's round() to an int: halves go to the even neighbour (the default rounding mode).
int round_half_even(double v) {
  return static_cast<int>(std::nearbyint(v));
}

}  // namespace

CropRect random_resized_crop_rect(int width, int height, double scale_low, double scale_high,
                                  double ratio_low, double ratio_high, UniformStream* stream) {
  const double area = static_cast<double>(width) * height;
  // torch.log(torch.tensor(ratio)): float32.
  const float log_low = std::log(static_cast<float>(ratio_low));
  const float log_high = std::log(static_cast<float>(ratio_high));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const float fraction = static_cast<float>(stream->uniform(scale_low, scale_high));
    const double target_area = area * fraction;
    const float log_ratio = static_cast<float>(stream->uniform(log_low, log_high));
    const double aspect = std::exp(log_ratio);  // float32 exp, then .item() to double
    const int w = round_half_even(std::sqrt(target_area * aspect));
    const int h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int top = stream->below(height - h + 1);
      const int left = stream->below(width - w + 1);
      return CropRect{top, left, h, w};
    }
  }
  // Central fallback: the whole image, clamped to the nearest allowed aspect ratio.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  const double min_ratio = std::min(ratio_low, ratio_high);
  const double max_ratio = std::max(ratio_low, ratio_high);
  int w = width, h = height;
  if (in_ratio < min_ratio) {
    h = round_half_even(w / min_ratio);
  } else if (in_ratio > max_ratio) {
    w = round_half_even(h * max_ratio);
  }
  // Python's // on non-negative (or, for odd fallbacks, negative) ints floors.
  const auto floor_half = [](int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
  return CropRect{floor_half(height - h), floor_half(width - w), h, w};
}

Size2 shorter_side_size(int width, int height, int size) {
  const int short_side = std::min(width, height);
  const int long_side = std::max(width, height);
  // int(size * long / short): an exact integer product, a true division, a truncation.
  const int new_long = static_cast<int>(static_cast<double>(int64_t{size} * long_side) /
                                        static_cast<double>(short_side));
  return width <= height ? Size2{size, new_long} : Size2{new_long, size};
}

CropRect center_crop_rect(int width, int height, int crop_width, int crop_height) {
  // torchvision pads floor(excess / 2) before and the rest after; the crop then starts at the
  // padded origin, i.e. that far before the image.
  const auto offset = [](int side, int crop) {
    if (crop > side) return -((crop - side) / 2);
    return round_half_even((side - crop) / 2.0);
  };
  return CropRect{offset(height, crop_height), offset(width, crop_width), crop_height, crop_width};
}

}  // namespace dgqa
