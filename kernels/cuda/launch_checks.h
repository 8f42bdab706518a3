// Host-side checks of the CUDA kernels' launch configurations, made before each launch so that a
// shape no kernel can run ends with a message naming the kernel and the limit instead of CUDA's
// "invalid configuration argument". Plain C++ (no CUDA header): CPU tests check them against
// the presets' shapes (tests/kernels_launch_checks_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace dgqa::cuda {

// CUDA's limits for every device of compute capability 3.0 and later (CUDA C++ Programming
// Guide, "Features and Technical Specifications"): grid x up to 2^31 - 1 blocks, y and z up to
// 65535; 48 KiB of shared memory per block unless a kernel opts in to more (ours do not).
constexpr int64_t kMaxGridX = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxGridYZ = 65535;
constexpr size_t kMaxSharedBytes = 48 * 1024;

inline void check_grid(const char* kernel, int64_t x, int64_t y = 1, int64_t z = 1) {
  if (x > kMaxGridX || y > kMaxGridYZ || z > kMaxGridYZ) {
    throw std::invalid_argument(std::string(kernel) + ": a grid of (" + std::to_string(x) + ", " +
                                std::to_string(y) + ", " + std::to_string(z) +
                                ") blocks exceeds CUDA's limits (2^31-1, 65535, 65535)");
  }
}

inline void check_shared_bytes(const char* kernel, size_t bytes) {
  if (bytes > kMaxSharedBytes) {
    throw std::invalid_argument(std::string(kernel) + ": needs " + std::to_string(bytes) +
                                " bytes of shared memory per block, more than the 48 KiB limit");
  }
}

// The dynamic shared memory of the attention kernels (attention.cu): a query or key row of
// d floats plus score rows of T floats.
inline size_t attention_forward_shared_bytes(int T, int d) {
  return sizeof(float) * (static_cast<size_t>(d) + T);
}
inline size_t attention_backward_key_value_shared_bytes(int T, int d) {
  return sizeof(float) * (3 * static_cast<size_t>(d) + 2 * static_cast<size_t>(T));
}

}  // namespace dgqa::cuda
