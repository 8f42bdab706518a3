// An 8-bit image as PIL holds one in mode "L" or "RGB": rows top to bottom, the channels of a
// pixel next to each other (HWC). The image pipeline decodes into it, resizes and augments
// it, and only then turns it into the model's float CHW input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dgqa {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;             // 1 ("L") or 3 ("RGB")
  std::vector<uint8_t> pixels;  // height * width * channels

  Image() = default;
  Image(int width_, int height_, int channels_)
      : width(width_),
        height(height_),
        channels(channels_),
        pixels(static_cast<size_t>(width_) * height_ * channels_) {}

  int64_t row_bytes() const { return int64_t{width} * channels; }
  uint8_t* row(int y) { return pixels.data() + y * row_bytes(); }
  const uint8_t* row(int y) const { return pixels.data() + y * row_bytes(); }
  uint8_t& at(int y, int x, int c) { return pixels[(y * row_bytes()) + int64_t{x} * channels + c]; }
  uint8_t at(int y, int x, int c) const {
    return pixels[(y * row_bytes()) + int64_t{x} * channels + c];
  }
};

}  // namespace dgqa
