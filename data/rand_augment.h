// torchvision's RandAugment (0.14) on 8-bit images: its fourteen operations with their
// magnitudes, each as torchvision applies it to a PIL image (nearest interpolation, fill 0),
// and the draw of num_ops of them per image from the example's random stream.
#pragma once

#include <vector>

#include "data/image.h"
#include "data/random_streams.h"

namespace dgqa {

enum class AugmentOp {
  kIdentity,
  kShearX,
  kShearY,
  kTranslateX,
  kTranslateY,
  kRotate,
  kBrightness,
  kColor,
  kContrast,
  kSharpness,
  kPosterize,
  kSolarize,
  kAutoContrast,
  kEqualize,
};

// One operation with the signed magnitude torchvision passes to it.
struct AugmentOpDraw {
  AugmentOp op;
  float magnitude;
};

// RandAugment(num_ops, magnitude, num_magnitude_bins) for a width x height image: num_ops
// operations drawn uniformly with replacement, each signed operation negated with probability
// 1/2.
std::vector<AugmentOpDraw> draw_rand_augment(int num_ops, int magnitude, int num_magnitude_bins,
                                             int width, int height, UniformStream* stream);

// Applies `draw` to *image as torchvision's RandAugment._apply_op does to a PIL image.
void apply_augment_op(const AugmentOpDraw& draw, Image* image);

}  // namespace dgqa
