// bf16 on the host: the rounding that the CUDA backend's bf16 casts perform on the device
// (__float2bfloat16_rn), as plain C++ with no CUDA header, so that host code and tests (in any
// build) can compute exactly what a bf16 operand holds.
//
// bf16 is the upper half of an IEEE float: sign, the same 8 exponent bits, 7 fraction bits. A
// float rounds to it by dropping its lower 16 bits, to nearest, ties to even: the same range as
// float, 8 significant bits (a relative rounding error of at most 2^-8, about 3.9e-3).
#pragma once

#include <cstdint>
#include <cstring>

namespace dgqa {

// The bits of the bf16 nearest to x: round to nearest, ties to the even bf16. Every NaN becomes
// the canonical bf16 NaN 0x7FFF, as the CUDA conversion gives; infinities stay infinite, and a
// finite float beyond the largest bf16 (0x7F7F, about 3.39e38) by half a bf16 step or more
// rounds to infinity.
inline uint16_t bf16_bits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFFu;  // NaN (adding below could make it inf)
  // Adding 0x7FFF rounds the upper half up when the lower half is above one half (0x8000) of
  // its last bit; adding one more when the upper half is odd makes exactly one half round up
  // only from odd, i.e. to even. A carry out of the fraction correctly increments the exponent.
  const uint32_t upper_is_odd = (bits >> 16) & 1u;
  bits += 0x7FFFu + upper_is_odd;
  return static_cast<uint16_t>(bits >> 16);
}

// The float whose bits are those of the bf16 (exact: every bf16 is a float).
inline float bf16_bits_to_float(uint16_t bf16) {
  const uint32_t bits = static_cast<uint32_t>(bf16) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

// x rounded to bf16 and back: the value a bf16 operand made from x holds.
inline float round_to_bf16(float x) {
  return bf16_bits_to_float(bf16_bits(x));
}

}  // namespace dgqa
