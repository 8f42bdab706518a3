#include "kernels/cpu/key_norms.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace dgqa::cpu {

void key_norms(float* norms, const float* k, int B, int T, int G, int d) {
  const int64_t row_stride = static_cast<int64_t>(G) * d;
  // The norm of each (sample, head), from a sum of squares in double.
  std::vector<float> sample_norms(static_cast<size_t>(B) * G);
#pragma omp parallel for collapse(2)
  for (int b = 0; b < B; ++b) {
    for (int g = 0; g < G; ++g) {
      double squares = 0.0;
      for (int p = 0; p < T; ++p) {
        const float* key = k + (static_cast<int64_t>(b) * T + p) * row_stride + g * d;
        for (int e = 0; e < d; ++e) squares += static_cast<double>(key[e]) * key[e];
      }
      sample_norms[static_cast<size_t>(b) * G + g] = static_cast<float>(std::sqrt(squares));
    }
  }
  // Summed over the batch in fp32 (docs/design.md §3.1), in sample order so that every run and
  // every thread count gives the same bits: the allocation depends on them.
  for (int g = 0; g < G; ++g) {
    float sum = 0.f;
    for (int b = 0; b < B; ++b) sum += sample_norms[static_cast<size_t>(b) * G + g];
    norms[g] = sum;
  }
}

}  // namespace dgqa::cpu
