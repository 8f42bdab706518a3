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

// A rectangle of a resize's output: [left, left + width) x [top, top + height).
struct ResizeWindow {
  int left, top, width, height;
};

// A rectangle of pixels: [left, right) x [top, bottom).
struct PixelRect {
  int left, top, right, bottom;
};

// The pixels [left, left + image.width) x [top, top + image.height) of a source image of
// source_width x source_height (the whole source when left = top = 0 and the sizes agree).
struct ImagePart {
  const Image& image;
  int left, top;
  int source_width, source_height;
};

// `window` of resize(source, full_width, full_height, interpolation), with the same pixels,
// computing only those: torchvision's Resize then CenterCrop at the cost of the crop. `part`
// must hold resize_window_source(...) of the source; throws std::logic_error otherwise.
Image resize_window(const ImagePart& part, int full_width, int full_height,
                    Interpolation interpolation, const ResizeWindow& window);

// The source pixels resize_window reads for `window`: all of them unless the window lies
// inside the output and the resize changes the size with a filter (not NEAREST).
PixelRect resize_window_source(int source_width, int source_height, int full_width, int full_height,
                               Interpolation interpolation, const ResizeWindow& window);

// PIL's image.crop((left, top, left + width, top + height)): pixels outside the image are 0.
Image crop(const Image& in, int left, int top, int width, int height);

// PIL's transpose(FLIP_LEFT_RIGHT), in place.
void mirror_horizontally(Image* image);

}  // namespace dgqa
