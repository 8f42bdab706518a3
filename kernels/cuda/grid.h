// Grid sizes of the CUDA kernels' launches, one formula for every kernel. Plain C++ (no CUDA
// header): CPU tests check them (tests/kernels_launch_checks_test.cc).
#pragma once

#include <cstdint>

namespace dgqa::cuda {

// The blocks that n items need at per_block items a block (threads, rows, ...):
// ceil(n / per_block), for n >= 0 and per_block > 0.
constexpr int64_t blocks_for(int64_t n, int per_block) {
  return (n + per_block - 1) / per_block;
}

// The most blocks grid_stride_blocks launches: beyond it, threads loop over several elements.
constexpr int64_t kMaxGridStrideBlocks = int64_t{1} << 16;

// The grid of a grid-stride kernel over n elements at one element per thread:
// blocks_for(n, threads_per_block), at most kMaxGridStrideBlocks (the kernel's threads loop over
// the elements beyond the grid).
constexpr int grid_stride_blocks(int64_t n, int threads_per_block) {
  const int64_t blocks = blocks_for(n, threads_per_block);
  return static_cast<int>(blocks < kMaxGridStrideBlocks ? blocks : kMaxGridStrideBlocks);
}

}  // namespace dgqa::cuda
