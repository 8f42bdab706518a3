// The model's floating-point operations, counted analytically (the figure benchmarks divide by
// time). A multiply-add is 2 operations; element-wise work (LayerNorm, GELU, softmax, AdamW)
// is left out, as is customary, so the count is a floor on the work done.
#pragma once

#include "model/model_config.h"

namespace dgqa {

// One image through the model, forward:
//   patch embedding   2 N (C p^2) D
//   per block         2 T D (D + 2 G d)   query, key and value projections
//                     2 T D D             output projection
//                     2 T D F * 2         MLP (D -> F -> D)
//                     2 T T D * 2         scores Q K^T and probabilities x V over all heads
//   head              2 D K               (class token only)
// with T tokens, N patches, D width, F = 4 D, G K/V heads of width d, K classes.
// This is the model's count, what a plain implementation computes; VisionTransformer does less:
// its last block's projection and MLP run on the class token only (13% of this count at
// bench/tiny_fmnist.pbtxt, 6.5% at vit_s_cifar, 3.4% at vit_l_224 are skipped).
double forward_flops_per_image(const ModelConfig& config);

// Forward plus backward: backward computes two products for each forward one (the input's and
// the weight's gradient), so training is 3x forward.
double training_flops_per_image(const ModelConfig& config);

}  // namespace dgqa
