// Philox4x32-10, the counter-based random number generator of Salmon et al. (SC'11).
// Header-only and free of device APIs, so the CPU and CUDA backends draw the same numbers.
#pragma once

#include <cstdint>

// Callable from CUDA kernels too when compiled by nvcc; empty in the CPU build.
#ifdef __CUDACC__
#define DGQA_HOST_DEVICE __host__ __device__
#else
#define DGQA_HOST_DEVICE
#endif

namespace dgqa {

struct Philox4x32 {
  uint32_t v[4];
};

// Ten rounds of Philox4x32 on `counter` under the 64-bit `key`.
DGQA_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 counter, uint64_t key) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  Philox4x32 c = counter;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kMul0) * c.v[0];
    uint64_t p1 = static_cast<uint64_t>(kMul1) * c.v[2];
    Philox4x32 next;
    next.v[0] = static_cast<uint32_t>(p1 >> 32) ^ c.v[1] ^ k0;
    next.v[1] = static_cast<uint32_t>(p1);
    next.v[2] = static_cast<uint32_t>(p0 >> 32) ^ c.v[3] ^ k1;
    next.v[3] = static_cast<uint32_t>(p0);
    c = next;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return c;
}

// A uniform float in [0, 1) from the top 24 bits of a 32-bit word.
DGQA_HOST_DEVICE inline float philox_uniform(uint32_t word) {
  return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

// Element `index` (0, 1, 2, ...) of the uniform stream named by (key, c1, c2, c3):
// block index / 4 is counter word 0, and word index % 4 of that block is the number.
DGQA_HOST_DEVICE inline float philox_uniform_at(uint64_t key, uint32_t c1, uint32_t c2, uint32_t c3,
                                                uint64_t index) {
  Philox4x32 counter{{static_cast<uint32_t>(index / 4), c1, c2, c3}};
  return philox_uniform(philox4x32_10(counter, key).v[index % 4]);
}

}  // namespace dgqa
