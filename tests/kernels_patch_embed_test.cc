// im2col_patches against plain loops, and im2col + matmul against a strided convolution.
#include "kernels/cpu/patch_embed.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

using tests::random_vector;

struct Shape {
  int B, C, S, p;
  int per_side() const { return S / p; }
  int num_patches() const { return per_side() * per_side(); }
  int row_length() const { return C * p * p; }
};

class PatchEmbedTest : public ::testing::TestWithParam<Shape> {};

TEST_P(PatchEmbedTest, Im2colMatchesReference) {
  const Shape s = GetParam();
  const auto img = random_vector(s.B * s.C * s.S * s.S, 1);
  std::vector<float> cols(s.B * s.num_patches() * s.row_length(), -9.f);
  im2col_patches(cols.data(), img.data(), s.B, s.C, s.S, s.p);
  for (int b = 0; b < s.B; ++b) {
    for (int py = 0; py < s.per_side(); ++py) {
      for (int px = 0; px < s.per_side(); ++px) {
        const int row = b * s.num_patches() + py * s.per_side() + px;
        for (int c = 0; c < s.C; ++c) {
          for (int ky = 0; ky < s.p; ++ky) {
            for (int kx = 0; kx < s.p; ++kx) {
              const float pixel = img[((b * s.C + c) * s.S + py * s.p + ky) * s.S + px * s.p + kx];
              EXPECT_EQ(cols[row * s.row_length() + (c * s.p + ky) * s.p + kx], pixel)
                  << "b " << b << " patch (" << py << ", " << px << ") c " << c << " ky " << ky
                  << " kx " << kx;
            }
          }
        }
      }
    }
  }
}

// With the conv weight (D, C, p, p) viewed as (D, C*p*p), matmul of the columns is the
// convolution with kernel = stride = p.
TEST_P(PatchEmbedTest, Im2colThenMatmulIsTheConvolution) {
  const Shape s = GetParam();
  const int D = 3;
  const auto img = random_vector(s.B * s.C * s.S * s.S, 2);
  const auto weight = random_vector(D * s.row_length(), 3);
  const auto bias = random_vector(D, 4);
  std::vector<float> cols(s.B * s.num_patches() * s.row_length());
  std::vector<float> out(s.B * s.num_patches() * D);
  im2col_patches(cols.data(), img.data(), s.B, s.C, s.S, s.p);
  matmul_forward(out.data(), cols.data(), weight.data(), bias.data(), s.B * s.num_patches(),
                 s.row_length(), D);
  for (int b = 0; b < s.B; ++b) {
    for (int py = 0; py < s.per_side(); ++py) {
      for (int px = 0; px < s.per_side(); ++px) {
        for (int o = 0; o < D; ++o) {
          double sum = bias[o];
          for (int c = 0; c < s.C; ++c) {
            for (int ky = 0; ky < s.p; ++ky) {
              for (int kx = 0; kx < s.p; ++kx) {
                sum += double{weight[((o * s.C + c) * s.p + ky) * s.p + kx]} *
                       img[((b * s.C + c) * s.S + py * s.p + ky) * s.S + px * s.p + kx];
              }
            }
          }
          const int token = b * s.num_patches() + py * s.per_side() + px;
          EXPECT_NEAR(out[token * D + o], sum, 1e-5 * (1 + std::fabs(sum)));
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PatchEmbedTest,
                         ::testing::Values(Shape{2, 3, 6, 2}, Shape{1, 1, 5, 5}, Shape{3, 2, 9, 3},
                                           Shape{1, 3, 8, 1}));

}  // namespace
}  // namespace dgqa::cpu
