// Turns a stored uint8 image into the float input of the model: scale to [0, 1], augment
// (when given an augmentation), resize to the model's image size, normalise per channel.
#pragma once

#include <cstdint>
#include <vector>

#include "data/augmentation.h"

namespace dgqa {

struct TransformOptions {
  int image_size = 0;         // side of the square output (model.image_size)
  std::vector<float> mean;    // data.mean: empty (all 0), 1 value (every channel) or 1 per channel
  std::vector<float> stddev;  // data.std: empty (all 1), 1 value or 1 per channel; positive
};

// A per-channel vector from a config field (named `field` in errors) holding 0 values (all
// `default_value`), 1 (every channel) or `channels`. Throws InputError for any other count.
std::vector<float> per_channel_values(const std::vector<float>& values, float default_value,
                                      int channels, const char* field);

// data.std per channel (default 1), each positive; throws InputError otherwise.
std::vector<float> stddev_values(const std::vector<float>& values, int channels);

// Bilinear resize as torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
// antialias=False): output pixel d samples source coordinate (d + 0.5) * in / out - 0.5,
// clamped below at 0, from the two nearest source pixels (the last one repeats at the edge).
void bilinear_resize(const float* in, int channels, int in_height, int in_width, int out_height,
                     int out_width, float* out);

// The pipeline for the images of one dataset (channels x height x width bytes each).
class ImageTransform {
 public:
  // Throws InputError for a mean or std with neither 1 nor `channels` values, a std that is
  // not positive, or an image size that is not positive.
  ImageTransform(const TransformOptions& options, int channels, int height, int width);

  int64_t output_floats() const { return int64_t{channels_} * image_size_ * image_size_; }

  // Writes output_floats() floats (CHW) for `image`. The augmentation applies at the stored
  // resolution, before the resize (as torchvision's RandomCrop(32, padding=4) on CIFAR
  // followed by Resize), so its padding counts stored pixels.
  void apply(const uint8_t* image, const Augmentation& augmentation, float* out) const;

 private:
  int channels_, height_, width_;
  int image_size_;
  std::vector<float> mean_, stddev_;  // one value per channel
};

}  // namespace dgqa
