#include "data/augmentation.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/philox.h"
#include "data/random_streams.h"

namespace dgqa {
namespace {

// Positions of the draws within an example's Philox stream.
constexpr uint64_t kCropXDraw = 0, kCropYDraw = 1, kFlipDraw = 2;

// An integer in [0, count) from a uniform draw in [0, 1); the min guards float rounding.
int scale_draw(float uniform, int count) {
  return std::min(static_cast<int>(uniform * static_cast<float>(count)), count - 1);
}

}  // namespace

RandomAugmentation::RandomAugmentation(const AugmentOptions& options, uint64_t seed)
    : options_(options), seed_(seed) {
  if (options.crop_padding < 0) {
    throw InputError("data.random_crop_padding: " + std::to_string(options.crop_padding) +
                     " must not be negative");
  }
}

Augmentation RandomAugmentation::draw(int64_t epoch, int64_t example) const {
  auto uniform = [&](uint64_t position) {
    return philox_uniform_at(seed_, static_cast<uint32_t>(epoch), static_cast<uint32_t>(example),
                             kAugmentStreamTag, position);
  };
  Augmentation augmentation;
  if (options_.crop_padding > 0) {
    const int offsets = 2 * options_.crop_padding + 1;
    augmentation.crop_padding = options_.crop_padding;
    augmentation.offset_x = scale_draw(uniform(kCropXDraw), offsets);
    augmentation.offset_y = scale_draw(uniform(kCropYDraw), offsets);
  }
  augmentation.flip = options_.hflip && uniform(kFlipDraw) < 0.5f;
  return augmentation;
}

void apply_augmentation(const Augmentation& augmentation, int channels, int height, int width,
                        float* image) {
  if (augmentation.crop_padding > 0) {
    std::vector<float> original(image, image + int64_t{channels} * height * width);
    pad_and_crop(original.data(), channels, height, width, augmentation.crop_padding,
                 augmentation.offset_y, augmentation.offset_x, image);
  }
  if (augmentation.flip) flip_horizontal(image, channels, height, width);
}

void pad_and_crop(const float* in, int channels, int height, int width, int padding, int offset_y,
                  int offset_x, float* out) {
  for (int c = 0; c < channels; ++c) {
    const float* plane = in + int64_t{c} * height * width;
    for (int y = 0; y < height; ++y) {
      const int source_y = y + offset_y - padding;
      for (int x = 0; x < width; ++x) {
        const int source_x = x + offset_x - padding;
        const bool inside = source_y >= 0 && source_y < height && source_x >= 0 && source_x < width;
        *out++ = inside ? plane[int64_t{source_y} * width + source_x] : 0.f;
      }
    }
  }
}

void flip_horizontal(float* image, int channels, int height, int width) {
  for (int64_t row = 0; row < int64_t{channels} * height; ++row) {
    std::reverse(image + row * width, image + (row + 1) * width);
  }
}

}  // namespace dgqa
