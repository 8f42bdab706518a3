// data/resample.h against PIL 9.4's Image.resize, byte for byte: random sizes (1 x N, very
// wide, up- and down-scaling), fractional boxes, the crop and copy shortcuts, both channel
// counts and all three filters; and crop / mirror by hand.
#include "data/resample.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/pil_oracle.h"

namespace dgqa::tests {
namespace {

const char* filter_name(Interpolation interpolation) {
  switch (interpolation) {
    case Interpolation::kNearest:
      return "nearest";
    case Interpolation::kBilinear:
      return "bilinear";
    case Interpolation::kBicubic:
      return "bicubic";
  }
  return "";
}

struct ResizeCase {
  Image input;
  int out_width, out_height;
  Interpolation interpolation;
  Box box;
};

std::string describe(const ResizeCase& c) {
  char text[256];
  std::snprintf(text, sizeof text, "%dx%dx%d -> %dx%d %s box (%.17g %.17g %.17g %.17g)",
                c.input.width, c.input.height, c.input.channels, c.out_width, c.out_height,
                filter_name(c.interpolation), c.box.left, c.box.top, c.box.right, c.box.bottom);
  return text;
}

// A box inside [0, size]: either the whole range, integral ends, or fractional ends.
void random_range(std::mt19937* rng, int size, double* lo, double* hi) {
  const int kind = std::uniform_int_distribution<int>(0, 3)(*rng);
  if (kind == 0 || size < 2) {
    *lo = 0;
    *hi = size;
    return;
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  double a = unit(*rng) * size, b = unit(*rng) * size;
  if (kind == 1) {
    a = std::floor(a);
    b = std::floor(b);
  } else if (kind == 2) {
    a = std::round(a * 4) / 4;  // quarters: exact in float
    b = std::round(b * 4) / 4;
  }
  if (a > b) std::swap(a, b);
  if (b - a < 0.5) {
    a = std::max(0.0, a - 0.5);
    b = std::min(static_cast<double>(size), a + 1.0);
  }
  *lo = a;
  *hi = b;
}

int random_side(std::mt19937* rng) {
  const int kind = std::uniform_int_distribution<int>(0, 9)(*rng);
  if (kind == 0) return 1;
  if (kind == 1) return std::uniform_int_distribution<int>(2, 4)(*rng);
  if (kind == 2) return std::uniform_int_distribution<int>(600, 1500)(*rng);  // very wide
  return std::uniform_int_distribution<int>(5, 260)(*rng);
}

std::vector<ResizeCase> random_cases(int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<ResizeCase> cases;
  for (int i = 0; i < count; ++i) {
    ResizeCase c;
    const int channels = (i % 2 == 0) ? 3 : 1;
    int w = random_side(&rng), h = random_side(&rng);
    if (w > 500 && h > 500) h = 3;  // keep images small; wide or tall, not both
    c.input = oracle_test_image(w, h, channels, seed + i);
    c.interpolation = static_cast<Interpolation>(i % 3);
    random_range(&rng, w, &c.box.left, &c.box.right);
    random_range(&rng, h, &c.box.top, &c.box.bottom);
    c.out_width = random_side(&rng);
    c.out_height = random_side(&rng);
    if (c.out_width > 500 && c.out_height > 500) c.out_width = 2;
    const int special = std::uniform_int_distribution<int>(0, 5)(rng);
    if (special == 0) {  // output width equal to the box or input: crop shortcut, skipped passes
      c.out_width = std::max(1, static_cast<int>(c.box.right - c.box.left));
    } else if (special == 1) {
      c.out_height = h;
    } else if (special == 2) {
      c.out_width = w;
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

void expect_cases_match_pil(const std::vector<ResizeCase>& cases) {
  OracleBatch batch;
  for (const ResizeCase& c : cases) {
    char args[256];
    std::snprintf(args, sizeof args, "%d %d %s %.17g %.17g %.17g %.17g", c.out_width, c.out_height,
                  filter_name(c.interpolation), c.box.left, c.box.top, c.box.right, c.box.bottom);
    batch.add_image_job("resize", c.input, args);
  }
  if (!batch.run()) return;
  int64_t mismatched_cases = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const ResizeCase& c = cases[i];
    const Image ours = resize(c.input, c.out_width, c.out_height, c.interpolation, c.box);
    const Image pil = batch.image(static_cast<int>(i), c.out_width, c.out_height, c.input.channels);
    if (count_differences(ours, pil, describe(c)) != 0) ++mismatched_cases;
  }
  EXPECT_EQ(mismatched_cases, 0);
}

TEST(Resample, RandomCasesMatchPil) {
  if (!have_pil_oracle()) GTEST_SKIP() << "/usr/bin/python3 lacks PIL or torchvision";
  expect_cases_match_pil(random_cases(420, 7));
}

// The pipeline's own sizes: ImageNet-like photos to 224 and the eval resize to 256.
TEST(Resample, PipelineSizesMatchPil) {
  if (!have_pil_oracle()) GTEST_SKIP() << "/usr/bin/python3 lacks PIL or torchvision";
  std::vector<ResizeCase> cases;
  const int sizes[][4] = {{500, 375, 224, 224}, {500, 375, 341, 256}, {375, 500, 256, 341},
                          {333, 500, 224, 224}, {120, 90, 224, 224},  {224, 224, 224, 224}};
  int seed = 100;
  for (const auto& s : sizes) {
    for (int channels : {1, 3}) {
      for (Interpolation f :
           {Interpolation::kNearest, Interpolation::kBilinear, Interpolation::kBicubic}) {
        ResizeCase c{oracle_test_image(s[0], s[1], channels, seed++), s[2], s[3], f,
                     Box{0, 0, static_cast<double>(s[0]), static_cast<double>(s[1])}};
        cases.push_back(c);
        // A RandomResizedCrop-like fractional region of the same image.
        c.box = Box{s[0] * 0.137, s[1] * 0.291, s[0] * 0.853, s[1] * 0.902};
        cases.push_back(c);
      }
    }
  }
  expect_cases_match_pil(cases);
}

// resize_window is the crop of the whole resize, pixel for pixel (it computes only the
// window), from the whole image and from the part resize_window_source names: random sizes,
// windows and filters, windows past the edge included.
TEST(Resample, WindowIsTheCropOfTheWholeResize) {
  std::mt19937 rng(11);
  const auto draw = [&](int low, int high) {
    return std::uniform_int_distribution<int>(low, high)(rng);
  };
  for (int trial = 0; trial < 300; ++trial) {
    Image in(draw(1, 90), draw(1, 90), trial % 2 == 0 ? 3 : 1);
    for (uint8_t& p : in.pixels) p = static_cast<uint8_t>(draw(0, 255));
    const int full_width = draw(1, 120), full_height = draw(1, 120);
    const int width = draw(1, full_width), height = draw(1, full_height);
    const int left = draw(-2, full_width - width + 2), top = draw(-2, full_height - height + 2);
    const Interpolation interpolation = static_cast<Interpolation>(trial % 3);
    const Image whole = resize(in, full_width, full_height, interpolation);
    const ResizeWindow window{left, top, width, height};
    const std::string label = std::to_string(in.width) + "x" + std::to_string(in.height) + " -> " +
                              std::to_string(full_width) + "x" + std::to_string(full_height) +
                              ", window " + std::to_string(left) + "," + std::to_string(top) + " " +
                              std::to_string(width) + "x" + std::to_string(height);
    const std::vector<uint8_t> expected = crop(whole, left, top, width, height).pixels;
    EXPECT_EQ(resize_window({in, 0, 0, in.width, in.height}, full_width, full_height, interpolation,
                            window)
                  .pixels,
              expected)
        << label;
    // From only the pixels it reads.
    const PixelRect r =
        resize_window_source(in.width, in.height, full_width, full_height, interpolation, window);
    const Image part = crop(in, r.left, r.top, r.right - r.left, r.bottom - r.top);
    EXPECT_EQ(resize_window({part, r.left, r.top, in.width, in.height}, full_width, full_height,
                            interpolation, window)
                  .pixels,
              expected)
        << label << " from its source part";
  }
}

TEST(Resample, CropPadsWithZerosOutside) {
  Image in(3, 2, 1);
  for (int i = 0; i < 6; ++i) in.pixels[i] = static_cast<uint8_t>(i + 1);
  const Image out = crop(in, -1, 1, 5, 2);
  const std::vector<uint8_t> expected = {0, 4, 5, 6, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(out.pixels, expected);
  const Image far = crop(in, 10, 10, 2, 2);
  EXPECT_EQ(far.pixels, std::vector<uint8_t>(4, 0));
}

TEST(Resample, MirrorReversesPixelsNotChannels) {
  Image in(3, 1, 3);
  for (int i = 0; i < 9; ++i) in.pixels[i] = static_cast<uint8_t>(i);
  mirror_horizontally(&in);
  const std::vector<uint8_t> expected = {6, 7, 8, 3, 4, 5, 0, 1, 2};
  EXPECT_EQ(in.pixels, expected);
}

}  // namespace
}  // namespace dgqa::tests
