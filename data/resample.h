// Geometry of 8-bit images as PIL does it, bit for bit: resize with antialiasing (the filters
// of Image.resize, with its box argument), crop, and the horizontal mirror.
#pragma once

#include "data/image.h"

namespace dgqa {

enum class Interpolation { kNearest, kBilinear, kBicubic };

// A region of an image in pixel coordinates (PIL's box: left, upper, right, lower), possibly
// fractional.
struct Box {
  double left, top, right, bottom;
};

// PIL's image.resize((out_width, out_height), filter, box): a separable convolution whose
// support widens with the downscale factor (antialiasing), with PIL's fixed-point weights,
// pass order and rounding, so the result equals PIL's exactly. Sizes are positive; the box
// lies inside the image and is not empty.
Image resize(const Image& in, int out_width, int out_height, Interpolation interpolation,
             const Box& box);
Image resize(const Image& in, int out_width, int out_height, Interpolation interpolation);

// PIL's image.crop((left, top, left + width, top + height)): pixels outside the image are 0.
Image crop(const Image& in, int left, int top, int width, int height);

// PIL's transpose(FLIP_LEFT_RIGHT), in place.
void mirror_horizontally(Image* image);

}  // namespace dgqa
