// The host bf16 rounding (kernels/cuda/bf16.h) that the CUDA bf16 tests use to emulate the
// device's casts: hand-derived cases, then a property check against the definition (the nearer of
// the two neighbouring bf16 values, the even one on a tie) over many bit patterns. Plain C++: it
// builds and runs in every build, with or without CUDA.
#include "kernels/cuda/bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace dgqa {
namespace {

float from_bits(uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

uint32_t to_bits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits;
}

struct Case {
  uint32_t input;     // float bits
  uint16_t expected;  // bf16 bits
  const char* what;
};

// Each expected value worked out by hand from the bits: the upper 16 bits are kept, plus one when
// the lower 16 are above 0x8000, or exactly 0x8000 with the upper half odd.
const Case kCases[] = {
    {0x3F800000u, 0x3F80u, "1 is exact"},
    {0x40490000u, 0x4049u, "3.140625 is exact"},
    {0x40490FDBu, 0x4049u, "pi (lower half 0x0FDB < 0x8000) rounds down to 3.140625"},
    {0x3DCCCCCDu, 0x3DCDu, "0.1 (lower half 0xCCCD > 0x8000) rounds up to 0.10009765625"},
    {0x3F807FFFu, 0x3F80u, "just below the half-way point rounds down"},
    {0x3F808001u, 0x3F81u, "just above the half-way point rounds up"},
    {0x3F808000u, 0x3F80u, "1 + 2^-8: a tie between 0x3F80 (even) and 0x3F81 goes to 1"},
    {0x3F818000u, 0x3F82u, "1 + 3*2^-8: a tie between 0x3F81 and 0x3F82 (even) goes up"},
    {0xBF808000u, 0xBF80u, "-(1 + 2^-8): ties to even on the magnitude, sign kept"},
    {0xBF818000u, 0xBF82u, "-(1 + 3*2^-8) rounds away from zero to the even -1.015625"},
    {0xBDCCCCCDu, 0xBDCDu, "-0.1"},
    {0x3FFFFFFFu, 0x4000u, "just below 2 rounds up to 2 (the carry increments the exponent)"},
    {0x00000000u, 0x0000u, "+0"},
    {0x80000000u, 0x8000u, "-0 keeps its sign"},
    {0x00008000u, 0x0000u, "a subnormal tie between 0 (even) and the smallest bf16 goes to 0"},
    {0x00008001u, 0x0001u, "just above it: the smallest bf16 subnormal, 2^-133"},
    {0x00018000u, 0x0002u, "a subnormal tie between 0x0001 and 0x0002 (even) goes up"},
    {0x7F7F0000u, 0x7F7Fu, "the largest finite bf16, (2 - 2^-7) * 2^127, is exact"},
    {0x7F7F7FFFu, 0x7F7Fu, "just below the half-way point to 2^128 stays finite"},
    {0x7F7F8000u, 0x7F80u, "the tie between 0x7F7F (odd) and 0x7F80 (inf) overflows to inf"},
    {0x7F7FFFFFu, 0x7F80u, "the largest float rounds to +inf"},
    {0xFF7FFFFFu, 0xFF80u, "the most negative float rounds to -inf"},
    {0x7F800000u, 0x7F80u, "+inf"},
    {0xFF800000u, 0xFF80u, "-inf"},
    {0x7FC00000u, 0x7FFFu, "a quiet NaN becomes the canonical bf16 NaN"},
    {0x7F800001u, 0x7FFFu, "a signalling NaN stays NaN (adding 0x7FFF must not make it inf)"},
    {0xFFC00001u, 0x7FFFu, "a negative NaN becomes the canonical NaN"},
};

TEST(Bf16Test, HandDerivedCases) {
  for (const Case& c : kCases) {
    EXPECT_EQ(bf16_bits(from_bits(c.input)), c.expected)
        << c.what << " (input 0x" << std::hex << c.input << ")";
    const float rounded = round_to_bf16(from_bits(c.input));
    if (c.expected == 0x7FFFu) {
      EXPECT_TRUE(std::isnan(rounded)) << c.what;
    } else {
      EXPECT_EQ(to_bits(rounded), static_cast<uint32_t>(c.expected) << 16) << c.what;
    }
  }
  // The same cases as values, for a reader who thinks in decimals.
  EXPECT_EQ(round_to_bf16(1.01171875f), 1.015625f);  // 1 + 3*2^-8, a tie, to even
  EXPECT_EQ(round_to_bf16(1.00390625f), 1.f);        // 1 + 2^-8, a tie, to even
  EXPECT_EQ(round_to_bf16(-1.01171875f), -1.015625f);
  EXPECT_EQ(round_to_bf16(0.1f), 0.10009765625f);
  EXPECT_EQ(round_to_bf16(3.3895313892515355e38f), 3.3895313892515355e38f);
  EXPECT_EQ(round_to_bf16(std::numeric_limits<float>::max()),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(round_to_bf16(-std::numeric_limits<float>::infinity()),
            -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::signbit(round_to_bf16(-0.f)));
}

// For every finite float, from its definition: the result is one of the two bf16 values around x
// (x truncated to bf16, and the next bf16 away from zero), the nearer one, and the even one when
// both are equally near. The distances are exact in double. The bf16 after the largest finite one
// is infinity, which counts as 2^128 (IEEE's rule for overflow under rounding to nearest).
TEST(Bf16Test, NearestEvenOverManyBitPatterns) {
  uint32_t state = 12345u;
  int checked = 0;
  for (int i = 0; i < 2000000; ++i) {
    state = state * 1664525u + 1013904223u;  // an LCG over every bit pattern
    // Every other draw sets the lower 16 bits to 0x7FFE ... 0x8002, so that ties (0x8000) and
    // near-ties are common.
    const uint32_t near_half = 0x8000u + static_cast<uint32_t>((i / 2) % 5) - 2u;
    const uint32_t bits = (i % 2 == 0) ? state : (state & 0xFFFF0000u) | near_half;
    const float x = from_bits(bits);
    if (!std::isfinite(x)) continue;
    const uint32_t low_bits = bits & 0xFFFF0000u;
    const uint32_t high_bits = low_bits + 0x10000u;  // one bf16 step away from zero
    const double low = from_bits(low_bits);
    const bool high_overflows = (high_bits & 0x7FFFFFFFu) == 0x7F800000u;
    const double high =
        high_overflows ? std::copysign(std::ldexp(1.0, 128), x) : from_bits(high_bits);
    const double to_low = std::fabs(x - low), to_high = std::fabs(high - x);
    uint16_t expected;
    if (to_low < to_high) {
      expected = static_cast<uint16_t>(low_bits >> 16);
    } else if (to_high < to_low) {
      expected = static_cast<uint16_t>(high_bits >> 16);
    } else {
      expected =
          static_cast<uint16_t>(((low_bits >> 16) & 1u) == 0 ? low_bits >> 16 : high_bits >> 16);
    }
    ASSERT_EQ(bf16_bits(x), expected) << "input 0x" << std::hex << bits;
    ASSERT_EQ(bf16_bits(round_to_bf16(x)), expected)
        << "rounding twice changes 0x" << std::hex << bits;
    ++checked;
  }
  EXPECT_GT(checked, 1900000);  // all but the NaN and inf patterns
}

}  // namespace
}  // namespace dgqa
