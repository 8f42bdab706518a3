// Products of one attention head's small matrices (tokens x head_dim, tokens x tokens). At
// ViT sizes (50-200 tokens, head_dim 32-64) OpenBLAS spends as long packing its operands for
// each call as it does multiplying, so attention runs these register-tiled loops instead.
#pragma once

namespace dgqa::cpu {

// C (M, N) = alpha A B, or C += alpha A B when `accumulate`, with
//   A (M, K): element (i, k) at A[i * a_row_stride + k * a_col_stride] (so A or a transposed
//             matrix: a_row_stride 1 and a_col_stride its leading dimension),
//   B (K, N): row-major with leading dimension ldb, C (M, N): row-major with ldc.
// Each C(i, j) is the sum over k in increasing order (products rounded, then added: no fused
// multiply-add), so its bits do not depend on the tiling or the vector width.
void head_matmul(float* C, int ldc, const float* A, int a_row_stride, int a_col_stride,
                 const float* B, int ldb, int M, int N, int K, float alpha, bool accumulate);

}  // namespace dgqa::cpu
