// key_norms (docs/design.md §3.1) against a plain loop.
#include "kernels/cpu/key_norms.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/test_util.h"

namespace dgqa::cpu {
namespace {

TEST(KeyNormsTest, SumOverBatchOfFrobeniusNormsPerHead) {
  const int B = 3, T = 5, G = 3, d = 4;
  const auto k = tests::random_vector(B * T * G * d, 1);
  std::vector<float> norms(G, 99.f);  // overwritten, not accumulated
  key_norms(norms.data(), k.data(), B, T, G, d);
  for (int g = 0; g < G; ++g) {
    double expected = 0.0;
    for (int b = 0; b < B; ++b) {
      double squares = 0.0;
      for (int p = 0; p < T; ++p) {
        for (int e = 0; e < d; ++e) {
          const double value = k[((b * T + p) * G + g) * d + e];
          squares += value * value;
        }
      }
      expected += std::sqrt(squares);
    }
    EXPECT_NEAR(norms[g], expected, 1e-5 * expected) << "head " << g;
  }
}

// The norm of each sample is taken before summing over the batch: not the norm of the batch.
TEST(KeyNormsTest, KnownValues) {
  // B = 2, T = 1, G = 2, d = 2: sample 0 head 0 = (3, 4), head 1 = (0, 1);
  //                             sample 1 head 0 = (6, 8), head 1 = (0, 0).
  const std::vector<float> k = {3, 4, 0, 1, 6, 8, 0, 0};
  std::vector<float> norms(2);
  key_norms(norms.data(), k.data(), 2, 1, 2, 2);
  EXPECT_FLOAT_EQ(norms[0], 15.f);
  EXPECT_FLOAT_EQ(norms[1], 1.f);
}

}  // namespace
}  // namespace dgqa::cpu
