// Image files written by the tests: a deterministic pixel pattern and a libjpeg encoder with
// every option the decoder must handle (colour spaces PIL cannot write, such as YCCK).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

// After <cstdio>: jpeglib.h needs FILE and size_t.
#include <jpeglib.h>

namespace dgqa::tests {

// A small deterministic generator (tests must not depend on libc's rand).
struct Lcg {
  uint64_t state;
  explicit Lcg(uint64_t seed) : state(seed * 6364136223846793005ULL + 1442695040888963407ULL) {}
  uint32_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<uint32_t>(n)); }
};

// Smooth gradients plus noise, `components` bytes per pixel.
std::vector<uint8_t> test_pixels(int width, int height, int components, uint64_t seed);

struct JpegOptions {
  J_COLOR_SPACE input = JCS_RGB;
  J_COLOR_SPACE stored = JCS_YCbCr;
  int quality = 90;
  bool progressive = false;
  int h_samp = 2, v_samp = 2;  // of the first component (luma)
};

// test_pixels(width, height, ., seed) encoded with libjpeg.
std::string encode_jpeg(int width, int height, uint64_t seed, const JpegOptions& options = {});

}  // namespace dgqa::tests
