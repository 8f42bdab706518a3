// Position embeddings for another patch grid (docs/design.md §4): timm's resample_abs_pos_embed,
// so that weights pretrained at one image size start a model at another.
#pragma once

#include <string>
#include <vector>

#include "io/timm_import.h"

namespace dgqa {

// Antialiased bicubic resize of `channels` planes (in_height x in_width each, row-major) to
// out_height x out_width, as torch.nn.functional.interpolate(mode="bicubic",
// align_corners=False, antialias=True), the default of timm's resample_abs_pos_embed: output
// pixel o is centred at source coordinate (o + 0.5) * in / out; Keys' cubic kernel (a = -0.5)
// spans 2 source pixels each side, stretched by in / out when shrinking; the weights of the
// source pixels inside the image are divided by their sum. Columns first, then rows, in double.
void bicubic_resize(const float* in, int channels, int in_height, int in_width, int out_height,
                    int out_width, float* out);

// `pos_embed` (1, 1 + g*g, D) resampled to `shape` (1, 1 + n*n, D): the class-token row kept,
// the g x g grid of D-channel rows resized bicubically (above) to n x n. InputError naming
// `path` when pos_embed is not (1, 1 + a square, D) or its D is not the model's.
FloatTensor resample_pos_embed(const FloatTensor& pos_embed, const std::vector<int64_t>& shape,
                               const std::string& path);

}  // namespace dgqa
