// head_matmul against the plain loop its contract describes: each C(i, j) the float sum over k in
// increasing order of rounded products, bit for bit, for every tile and tail the shapes reach,
// with A read directly or transposed, overwriting or accumulating; and nothing outside C's
// M x N block written, nothing past B's N columns read.
#include "kernels/cpu/head_matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <vector>

#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

using tests::random_vector;

struct Shape {
  int M, N, K;
};

void PrintTo(const Shape& s, std::ostream* os) {
  *os << s.M << "x" << s.N << "x" << s.K;
}

class HeadMatmulTest : public ::testing::TestWithParam<Shape> {};

TEST_P(HeadMatmulTest, EqualsTheSequentialSumBitForBit) {
  const auto [M, N, K] = GetParam();
  const float alpha = 0.37f;
  for (bool transposed : {false, true}) {
    for (bool accumulate : {false, true}) {
      // A is stored (M, K) with leading dimension K + 3, or (K, M) with M + 2 when transposed.
      const int lda = transposed ? M + 2 : K + 3;
      const int a_row_stride = transposed ? 1 : lda, a_col_stride = transposed ? lda : 1;
      const std::vector<float> A = random_vector((transposed ? K : M) * lda, 11);
      // B's columns past N hold NaN: a read of them would show in C.
      const int ldb = N + 5;
      std::vector<float> B = random_vector(K * ldb, 12);
      for (int k = 0; k < K; ++k) {
        for (int j = N; j < ldb; ++j) B[k * ldb + j] = std::numeric_limits<float>::quiet_NaN();
      }
      // C's columns past N are guards that must keep their values.
      const int ldc = N + 4;
      const std::vector<float> C_before = random_vector(M * ldc, 13);
      std::vector<float> C = C_before;
      head_matmul(C.data(), ldc, A.data(), a_row_stride, a_col_stride, B.data(), ldb, M, N, K,
                  alpha, accumulate);
      for (int i = 0; i < M; ++i) {
        for (int j = 0; j < ldc; ++j) {
          const float got = C[i * ldc + j];
          if (j >= N) {
            ASSERT_EQ(got, C_before[i * ldc + j]) << "guard column " << j << " of row " << i;
            continue;
          }
          float sum = 0.f;
          for (int k = 0; k < K; ++k) {
            const float product = A[i * a_row_stride + k * a_col_stride] * B[k * ldb + j];
            sum += product;
          }
          const float expected = accumulate ? C_before[i * ldc + j] + sum * alpha : sum * alpha;
          ASSERT_EQ(got, expected) << "C(" << i << ", " << j << "), transposed " << transposed
                                   << ", accumulate " << accumulate;
        }
      }
    }
  }
}

// Rows: whole 4-row tiles and a remainder; columns: 16- and 8-wide tiles and a remainder; the
// attention shapes of tiny-fmnist (50 tokens, head_dim 32) and ViT at 224 (197, 64).
INSTANTIATE_TEST_SUITE_P(Shapes, HeadMatmulTest,
                         ::testing::Values(Shape{1, 1, 1}, Shape{3, 5, 2}, Shape{4, 8, 7},
                                           Shape{5, 16, 3}, Shape{9, 25, 4}, Shape{50, 50, 32},
                                           Shape{50, 32, 50}, Shape{197, 64, 197}, Shape{6, 7, 0}));

}  // namespace
}  // namespace dgqa::cpu
