#include "data/transforms.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace dgqa {
namespace {

// One output row (or column) of a bilinear resize: its two source rows and the weight of
// the second.
struct BilinearTap {
  int low, high;
  float high_weight;
};

std::vector<BilinearTap> bilinear_taps(int in_size, int out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  std::vector<BilinearTap> taps(out_size);
  for (int d = 0; d < out_size; ++d) {
    float source = std::max(0.f, (static_cast<float>(d) + 0.5f) * scale - 0.5f);
    int low = static_cast<int>(source);  // floor, as source >= 0
    taps[d] = {low, std::min(low + 1, in_size - 1), source - static_cast<float>(low)};
  }
  return taps;
}

}  // namespace

std::vector<float> per_channel_values(const std::vector<float>& values, float default_value,
                                      int channels, const char* field) {
  if (values.empty()) return std::vector<float>(channels, default_value);
  if (values.size() == 1) return std::vector<float>(channels, values[0]);
  if (static_cast<int>(values.size()) == channels) return values;
  throw InputError(std::string(field) + ": " + std::to_string(values.size()) +
                   " values for images of " + std::to_string(channels) +
                   " channels (give 1 value or " + std::to_string(channels) + ")");
}

std::vector<float> stddev_values(const std::vector<float>& values, int channels) {
  std::vector<float> stddev = per_channel_values(values, 1.f, channels, "data.std");
  for (float value : stddev) {
    if (!(value > 0.f))
      throw InputError("data.std: " + std::to_string(value) + " must be positive");
  }
  return stddev;
}

void bilinear_resize(const float* in, int channels, int in_height, int in_width, int out_height,
                     int out_width, float* out) {
  const std::vector<BilinearTap> rows = bilinear_taps(in_height, out_height);
  const std::vector<BilinearTap> cols = bilinear_taps(in_width, out_width);
  for (int c = 0; c < channels; ++c) {
    const float* plane = in + int64_t{c} * in_height * in_width;
    for (const BilinearTap& row : rows) {
      const float* row_low = plane + int64_t{row.low} * in_width;
      const float* row_high = plane + int64_t{row.high} * in_width;
      for (const BilinearTap& col : cols) {
        float top = (1 - col.high_weight) * row_low[col.low] + col.high_weight * row_low[col.high];
        float bottom =
            (1 - col.high_weight) * row_high[col.low] + col.high_weight * row_high[col.high];
        *out++ = (1 - row.high_weight) * top + row.high_weight * bottom;
      }
    }
  }
}

ImageTransform::ImageTransform(const TransformOptions& options, int channels, int height, int width)
    : channels_(channels), height_(height), width_(width), image_size_(options.image_size) {
  if (image_size_ <= 0) {
    throw InputError("model.image_size: " + std::to_string(image_size_) + " must be positive");
  }
  mean_ = per_channel_values(options.mean, 0.f, channels, "data.mean");
  stddev_ = stddev_values(options.stddev, channels);
}

void ImageTransform::apply(const uint8_t* image, const Augmentation& augmentation,
                           float* out) const {
  std::vector<float> scaled(int64_t{channels_} * height_ * width_);
  for (size_t i = 0; i < scaled.size(); ++i) scaled[i] = static_cast<float>(image[i]) / 255.f;
  apply_augmentation(augmentation, channels_, height_, width_, scaled.data());

  if (height_ == image_size_ && width_ == image_size_) {  // the resize would be the identity
    std::copy(scaled.begin(), scaled.end(), out);
  } else {
    bilinear_resize(scaled.data(), channels_, height_, width_, image_size_, image_size_, out);
  }

  const int64_t plane = int64_t{image_size_} * image_size_;
  for (int c = 0; c < channels_; ++c) {
    float* channel = out + c * plane;
    for (int64_t i = 0; i < plane; ++i) channel[i] = (channel[i] - mean_[c]) / stddev_[c];
  }
}

}  // namespace dgqa
