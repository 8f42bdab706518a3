// Where torchvision's transforms cut and how large they resize (torchvision 0.14, PIL
// inputs): RandomResizedCrop's rectangle, Resize with one size, CenterCrop.
#pragma once

#include "data/random_streams.h"

namespace dgqa {

// A rectangle of an image; it may extend past the image (CenterCrop pads with 0 then).
struct CropRect {
  int top, left, height, width;
};

struct Size2 {
  int width, height;
};

// RandomResizedCrop.get_params(img, scale, ratio) for a width x height image: up to ten tries
// of an area fraction uniform in [scale_low, scale_high] and a log-uniform aspect ratio in
// [ratio_low, ratio_high], then the central fallback; the draws come from `stream`.
CropRect random_resized_crop_rect(int width, int height, double scale_low, double scale_high,
                                  double ratio_low, double ratio_high, UniformStream* stream);

// The output size of Resize(size) with one int: the shorter side becomes `size`, the longer
// int(size * long / short) (truncated), as torchvision computes it.
Size2 shorter_side_size(int width, int height, int size);

// CenterCrop((crop_height, crop_width)): offsets int(round((side - crop) / 2.0)) with Python's
// round (halves to even); a crop larger than the image extends past it symmetrically as
// torchvision pads.
CropRect center_crop_rect(int width, int height, int crop_width, int crop_height);

}  // namespace dgqa
