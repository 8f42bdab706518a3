#include "kernels/cpu/patch_embed.h"

#include <cstdint>
#include <cstring>

namespace dgqa::cpu {

void im2col_patches(float* cols, const float* img, int B, int C, int S, int p) {
  const int patches_per_side = S / p;
  const int row_length = C * p * p;
#pragma omp parallel for collapse(2)
  for (int b = 0; b < B; ++b) {
    for (int py = 0; py < patches_per_side; ++py) {
      for (int px = 0; px < patches_per_side; ++px) {
        const int64_t row =
            (static_cast<int64_t>(b) * patches_per_side + py) * patches_per_side + px;
        float* col = cols + row * row_length;
        // One image row of the patch (p contiguous pixels) per (c, ky).
        for (int c = 0; c < C; ++c) {
          for (int ky = 0; ky < p; ++ky) {
            const float* pixels =
                img + ((static_cast<int64_t>(b) * C + c) * S + py * p + ky) * S + px * p;
            std::memcpy(col + (c * p + ky) * p, pixels, sizeof(float) * p);
          }
        }
      }
    }
  }
}

}  // namespace dgqa::cpu
