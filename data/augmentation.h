// Training-time augmentation: random crop with zero padding and random horizontal flip.
#pragma once

#include <cstdint>

namespace dgqa {

struct AugmentOptions {
  int crop_padding = 0;  // data.random_crop_padding: zero padding per side; 0 = no crop
  bool hflip = false;    // data.hflip: flip with probability 0.5
};

// What happens to one image: pad by crop_padding, take the original-size window at
// (offset_y, offset_x) of the padded image, then flip if asked. The default changes nothing.
struct Augmentation {
  int crop_padding = 0;
  int offset_y = 0;  // in [0, 2 * crop_padding]
  int offset_x = 0;
  bool flip = false;
};

// Draws the augmentation of each (epoch, example) from Philox keyed by the run's seed, so it
// does not depend on which rank or thread prepares the example, nor on batch order.
class RandomAugmentation {
 public:
  // Throws InputError for a negative crop padding.
  RandomAugmentation(const AugmentOptions& options, uint64_t seed);

  Augmentation draw(int64_t epoch, int64_t example) const;

 private:
  AugmentOptions options_;
  uint64_t seed_;
};

// Applies `augmentation` in place to a float CHW image.
void apply_augmentation(const Augmentation& augmentation, int channels, int height, int width,
                        float* image);

// out(y, x) = in(y + offset_y - padding, x + offset_x - padding), 0 outside the input: a
// window of the input's size from the input padded with zeros by `padding` on each side.
void pad_and_crop(const float* in, int channels, int height, int width, int padding, int offset_y,
                  int offset_x, float* out);

void flip_horizontal(float* image, int channels, int height, int width);

}  // namespace dgqa
