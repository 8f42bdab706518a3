// Philox4x32-10 against the known-answer vectors of Random123 (kat_vectors, philox4x32_10).
#include "common/philox.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace dgqa {
namespace {

void expect_block(const Philox4x32& actual, const Philox4x32& expected) {
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(actual.v[i], expected.v[i])
        << "word " << i << ": 0x" << std::hex << actual.v[i] << " instead of 0x" << expected.v[i];
  }
}

TEST(PhiloxTest, ZeroCounterZeroKey) {
  expect_block(philox4x32_10({{0, 0, 0, 0}}, 0),
               {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
}

TEST(PhiloxTest, AllOnesCounterAllOnesKey) {
  expect_block(
      philox4x32_10({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffffffffffull),
      {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
}

// The digits of pi as counter and key; key word 0 is the low half of the 64-bit key.
TEST(PhiloxTest, PiDigits) {
  const uint64_t key = 0xa4093822ull | (0x299f31d0ull << 32);
  expect_block(philox4x32_10({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, key),
               {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST(PhiloxTest, UniformIsTheTop24BitsScaledIntoTheUnitInterval) {
  EXPECT_EQ(philox_uniform(0u), 0.f);
  EXPECT_EQ(philox_uniform(0xffu), 0.f);  // the low 8 bits are dropped
  EXPECT_EQ(philox_uniform(0x80000000u), 0.5f);
  EXPECT_EQ(philox_uniform(0xffffffffu), 1.f - 1.f / 16777216.f);  // below 1
}

// Element `index` of a stream is word index % 4 of the block whose counter word 0 is index / 4.
TEST(PhiloxTest, UniformAtWalksTheBlocksOfTheStream) {
  const uint64_t key = 0x0123456789abcdefull;
  for (uint64_t index : {0ull, 1ull, 3ull, 4ull, 5ull, 1002ull}) {
    const Philox4x32 block = philox4x32_10({{static_cast<uint32_t>(index / 4), 7u, 8u, 9u}}, key);
    EXPECT_EQ(philox_uniform_at(key, 7, 8, 9, index), philox_uniform(block.v[index % 4]))
        << "index " << index;
  }
  // Each of c1, c2, c3 names a different stream.
  const float base = philox_uniform_at(key, 7, 8, 9, 0);
  EXPECT_NE(philox_uniform_at(key, 6, 8, 9, 0), base);
  EXPECT_NE(philox_uniform_at(key, 7, 6, 9, 0), base);
  EXPECT_NE(philox_uniform_at(key, 7, 8, 6, 0), base);
  EXPECT_NE(philox_uniform_at(key + 1, 7, 8, 9, 0), base);
}

}  // namespace
}  // namespace dgqa
