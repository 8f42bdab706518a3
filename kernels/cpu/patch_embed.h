// Patch embedding = im2col + matmul_forward (a conv with kernel = stride = p).
#pragma once

namespace dgqa::cpu {

// img (B, C, S, S) -> cols (B * (S/p)^2, C*p*p): row b*N + (py*(S/p) + px) holds patch
// (py, px) of image b, flattened in the conv weight's order (c, ky, kx). The patch
// embedding is then matmul_forward(out, cols, weight viewed as (D, C*p*p), bias).
void im2col_patches(float* cols, const float* img, int B, int C, int S, int p);

}  // namespace dgqa::cpu
