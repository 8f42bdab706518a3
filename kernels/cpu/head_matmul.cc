#include "kernels/cpu/head_matmul.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/vector_math.h"

namespace dgqa::cpu {

namespace {

// Eight floats as one value: GCC compiles its arithmetic to one AVX instruction (two SSE ones in
// the plain x86-64 clone). Only kept in the locals of an inlined tile, never passed by value
// (that would change the calling convention with the target).
typedef float Floats8 __attribute__((vector_size(32)));

// How the product is laid out; see head_matmul.
struct Operands {
  float* C;
  int ldc;
  const float* A;
  int64_t a_row_stride, a_col_stride;
  int K;
  float alpha;
  bool accumulate;
};

// Rows i..i+ROWS of C, columns j..j+8*VECTORS, of which the first `width` are stored. B points
// at the tile's first column, with rows ldb apart. The accumulators stay in registers (the
// unrolled loops let GCC keep the arrays out of memory).
template <int ROWS, int VECTORS>
inline DGQA_ALWAYS_INLINE void tile(const Operands& op, const float* B, int64_t ldb, int i, int j,
                                    int width) {
  Floats8 sums[ROWS][VECTORS] = {};
  const float* a_rows = op.A + i * op.a_row_stride;
  for (int k = 0; k < op.K; ++k) {
    Floats8 b[VECTORS];
#pragma GCC unroll 4
    for (int v = 0; v < VECTORS; ++v) std::memcpy(&b[v], B + k * ldb + 8 * v, sizeof(Floats8));
#pragma GCC unroll 8
    for (int r = 0; r < ROWS; ++r) {
      const float a = a_rows[r * op.a_row_stride + k * op.a_col_stride];
#pragma GCC unroll 4
      for (int v = 0; v < VECTORS; ++v) sums[r][v] += b[v] * a;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < ROWS; ++r) {
    float* c = op.C + static_cast<int64_t>(i + r) * op.ldc + j;
#pragma GCC unroll 4
    for (int v = 0; v < VECTORS; ++v) {
      const int stored = width - 8 * v < 8 ? width - 8 * v : 8;
      Floats8 result = sums[r][v] * op.alpha;
      if (op.accumulate) {
        Floats8 old = {};
        std::memcpy(&old, c + 8 * v, sizeof(float) * stored);
        result = old + result;
      }
      std::memcpy(c + 8 * v, &result, sizeof(float) * stored);
    }
  }
}

// Columns j.. (8 * VECTORS of them, `width` stored) of every row of C.
template <int VECTORS>
inline DGQA_ALWAYS_INLINE void column_block(const Operands& op, const float* B, int64_t ldb, int M,
                                            int j, int width) {
  int i = 0;
  for (; i + 4 <= M; i += 4) tile<4, VECTORS>(op, B, ldb, i, j, width);
  for (; i < M; ++i) tile<1, VECTORS>(op, B, ldb, i, j, width);
}

}  // namespace

DGQA_SIMD_CLONES void head_matmul(float* C, int ldc, const float* A, int a_row_stride,
                                  int a_col_stride, const float* B, int ldb, int M, int N, int K,
                                  float alpha, bool accumulate) {
  const Operands op{C, ldc, A, a_row_stride, a_col_stride, K, alpha, accumulate};
  int j = 0;
  for (; j + 16 <= N; j += 16) column_block<2>(op, B + j, ldb, M, j, 16);
  for (; j + 8 <= N; j += 8) column_block<1>(op, B + j, ldb, M, j, 8);
  if (j < N) {
    // The last columns, fewer than 8: copied into a zero-padded panel 8 wide, so that the tile
    // never reads past B's columns.
    thread_local std::vector<float> panel;
    panel.assign(static_cast<size_t>(K) * 8, 0.f);
    for (int k = 0; k < K; ++k) {
      std::memcpy(&panel[static_cast<size_t>(k) * 8], B + static_cast<int64_t>(k) * ldb + j,
                  sizeof(float) * (N - j));
    }
    column_block<1>(op, panel.data(), 8, M, j, N - j);
  }
}

}  // namespace dgqa::cpu
