// Patch embedding's im2col (semantics: kernels/cpu/patch_embed.h).
#include <cstdint>

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"

namespace dgqa::cuda {

namespace {

constexpr int kThreads = 256;

// One thread per element of cols (B * (S/p)^2, C*p*p), grid-stride: consecutive threads write
// consecutive elements of a row, and read runs of p consecutive pixels.
__global__ void im2col_kernel(float* cols, const float* img, int B, int C, int S, int p) {
  const int patches_per_side = S / p;
  const int64_t row_length = static_cast<int64_t>(C) * p * p;
  const int64_t total = static_cast<int64_t>(B) * patches_per_side * patches_per_side * row_length;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / row_length, in_row = i % row_length;
    // The row is patch (py, px) of image b; the element is pixel (ky, kx) of its channel c.
    const int64_t b = row / (patches_per_side * patches_per_side);
    const int py = static_cast<int>(row / patches_per_side % patches_per_side);
    const int px = static_cast<int>(row % patches_per_side);
    const int c = static_cast<int>(in_row / (p * p));
    const int ky = static_cast<int>(in_row / p % p);
    const int kx = static_cast<int>(in_row % p);
    cols[i] = img[((b * C + c) * S + py * p + ky) * S + px * p + kx];
  }
}

}  // namespace

void im2col_patches(float* cols, const float* img, int B, int C, int S, int p) {
  const int patches_per_side = S / p;
  const int64_t total = static_cast<int64_t>(B) * patches_per_side * patches_per_side * C * p * p;
  if (total == 0) return;
  im2col_kernel<<<grid_stride_blocks(total, kThreads), kThreads, 0, context().stream>>>(cols, img,
                                                                                        B, C, S, p);
  DGQA_CUDA_CHECK_LAUNCH();
}

}  // namespace dgqa::cuda
