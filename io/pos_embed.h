// Position embeddings for another patch grid (docs/design.md §4): timm's resample_abs_pos_embed,
// so that weights pretrained at one image size start a model at another.
#pragma once

#include <string>
#include <vector>

#include "io/timm_import.h"

namespace dgqa {

// Bicubic resize of `channels` planes (in_height x in_width each, row-major) to out_height x
// out_width, as torch.nn.functional.interpolate(mode="bicubic", align_corners=False,
// antialias=False): output pixel o samples source coordinate (o + 0.5) * in / out - 0.5 with
// the cubic convolution kernel of A = -0.75 over its four nearest source pixels, source indices
// clamped to the image. Computed in double.
void bicubic_resize(const float* in, int channels, int in_height, int in_width, int out_height,
                    int out_width, float* out);

// `pos_embed` (1, 1 + g*g, D) resampled to `shape` (1, 1 + n*n, D): the class-token row kept,
// the g x g grid of D-channel rows resized bicubically (above) to n x n. InputError naming
// `path` when pos_embed is not (1, 1 + a square, D) or its D is not the model's.
FloatTensor resample_pos_embed(const FloatTensor& pos_embed, const std::vector<int64_t>& shape,
                               const std::string& path);

}  // namespace dgqa
