// data/crop_geometry.h: Resize's output size and CenterCrop against torchvision's own functions
// (the crop compared pixel for pixel, padding included), RandomResizedCrop's rectangles by their
// properties and its central fallbacks against torchvision's get_params.
#include "data/crop_geometry.h"

#include <array>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "data/resample.h"
#include "tests/pil_oracle.h"

namespace dgqa::tests {
namespace {

TEST(CropGeometry, ShorterSideSizeMatchesTorchvision) {
  if (!have_pil_oracle()) GTEST_SKIP() << "/usr/bin/python3 lacks PIL or torchvision";
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> side(1, 4000), target(1, 600);
  std::vector<std::array<int, 3>> cases = {{500, 375, 256}, {375, 500, 256}, {256, 256, 256},
                                           {1, 4000, 224},  {4000, 1, 224},  {3, 7, 5},
                                           {640, 427, 256}, {427, 640, 224}, {999, 1000, 1000}};
  for (int i = 0; i < 300; ++i) cases.push_back({side(rng), side(rng), target(rng)});
  OracleBatch batch;
  for (const auto& c : cases) {
    batch.add_text_job("shorter_side", std::to_string(c[0]) + " " + std::to_string(c[1]) + " " +
                                           std::to_string(c[2]));
  }
  if (!batch.run()) return;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Size2 ours = shorter_side_size(cases[i][0], cases[i][1], cases[i][2]);
    std::istringstream theirs(batch.text(static_cast<int>(i)));
    int w = 0, h = 0;
    theirs >> w >> h;
    EXPECT_EQ(ours.width, w) << cases[i][0] << "x" << cases[i][1] << " to " << cases[i][2];
    EXPECT_EQ(ours.height, h) << cases[i][0] << "x" << cases[i][1] << " to " << cases[i][2];
  }
}

// F.center_crop on a PIL image, padding included, equals crop() of our rectangle.
TEST(CropGeometry, CenterCropMatchesTorchvision) {
  if (!have_pil_oracle()) GTEST_SKIP() << "/usr/bin/python3 lacks PIL or torchvision";
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> side(1, 40);
  struct Case {
    Image image;
    int crop_width, crop_height;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 200; ++i) {
    const int w = side(rng), h = side(rng);
    // Crops smaller and larger than the image, in either or both directions.
    cases.push_back({oracle_test_image(w, h, i % 2 ? 1 : 3, i), side(rng), side(rng)});
  }
  cases.push_back({oracle_test_image(256, 341, 3, 1), 224, 224});
  cases.push_back({oracle_test_image(341, 256, 1, 2), 224, 224});
  OracleBatch batch;
  for (const Case& c : cases) {
    batch.add_image_job("center_crop", c.image,
                        std::to_string(c.crop_width) + " " + std::to_string(c.crop_height));
  }
  if (!batch.run()) return;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const CropRect rect =
        center_crop_rect(c.image.width, c.image.height, c.crop_width, c.crop_height);
    ASSERT_EQ(rect.width, c.crop_width);
    ASSERT_EQ(rect.height, c.crop_height);
    const Image ours = crop(c.image, rect.left, rect.top, rect.width, rect.height);
    const Image theirs =
        batch.image(static_cast<int>(i), c.crop_width, c.crop_height, c.image.channels);
    char what[128];
    std::snprintf(what, sizeof what, "%dx%d crop %dx%d", c.image.width, c.image.height,
                  c.crop_width, c.crop_height);
    EXPECT_EQ(count_differences(ours, theirs, what), 0);
  }
}

TEST(CropGeometry, CenterCropRoundsHalvesToEven) {
  // (5 - 2) / 2 = 1.5 -> 2; (7 - 2) / 2 = 2.5 -> 2; (3 - 2) / 2 = 0.5 -> 0.
  EXPECT_EQ(center_crop_rect(5, 7, 2, 2).left, 2);
  EXPECT_EQ(center_crop_rect(5, 7, 2, 2).top, 2);
  EXPECT_EQ(center_crop_rect(3, 3, 2, 2).left, 0);
  // Larger than the image: the padding before is floor(excess / 2).
  EXPECT_EQ(center_crop_rect(4, 4, 7, 4).left, -1);
}

// When no try can succeed, get_params' central fallback is deterministic: torchvision's own
// answer must be ours, whatever our stream draws.
TEST(CropGeometry, RandomResizedCropFallbackMatchesTorchvision) {
  if (!have_pil_oracle()) GTEST_SKIP() << "/usr/bin/python3 lacks PIL or torchvision";
  struct Case {
    int width, height;
    double scale_low, scale_high, ratio_low, ratio_high;
  };
  const std::vector<Case> cases = {
      {1000, 10, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0},  // too wide: height kept, width from 4/3
      {10, 1000, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0},  // too tall
      {1000, 10, 0.5, 1.0, 0.8, 1.25},              // width 12.5 rounds to even 12
      {3, 1000, 0.5, 1.0, 0.5, 2.0},
      {100, 100, 1.5, 2.0, 1.0, 1.0},  // area above the image: the whole image
      {101, 37, 1.2, 1.5, 3.0 / 4.0, 4.0 / 3.0},
  };
  OracleBatch batch;
  for (const Case& c : cases) {
    char args[160];
    std::snprintf(args, sizeof args, "%d %d %.17g %.17g %.17g %.17g", c.width, c.height,
                  c.scale_low, c.scale_high, c.ratio_low, c.ratio_high);
    batch.add_text_job("rrc", args);
  }
  if (!batch.run()) return;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::istringstream theirs(batch.text(static_cast<int>(i)));
    CropRect expected{};
    theirs >> expected.top >> expected.left >> expected.height >> expected.width;
    for (int example = 0; example < 20; ++example) {
      UniformStream stream(11, 0, example, kImageAugmentStreamTag);
      const CropRect r = random_resized_crop_rect(c.width, c.height, c.scale_low, c.scale_high,
                                                  c.ratio_low, c.ratio_high, &stream);
      EXPECT_EQ(r.top, expected.top) << "case " << i;
      EXPECT_EQ(r.left, expected.left) << "case " << i;
      EXPECT_EQ(r.height, expected.height) << "case " << i;
      EXPECT_EQ(r.width, expected.width) << "case " << i;
    }
  }
}

// A rectangle from a successful try lies inside the image and has, up to the rounding of its
// sides, an area fraction and aspect ratio within bounds; the same stream gives the same one.
TEST(CropGeometry, RandomResizedCropRectanglesAreWithinBounds) {
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> side(1, 1200);
  int tries_succeeded = 0;
  for (int example = 0; example < 20000; ++example) {
    const int width = side(rng), height = side(rng);
    const double scale_low = 0.08, scale_high = 1.0, ratio_low = 0.75, ratio_high = 4.0 / 3.0;
    UniformStream stream(1, 2, example, kImageAugmentStreamTag);
    const CropRect r = random_resized_crop_rect(width, height, scale_low, scale_high, ratio_low,
                                                ratio_high, &stream);
    UniformStream again(1, 2, example, kImageAugmentStreamTag);
    const CropRect r2 = random_resized_crop_rect(width, height, scale_low, scale_high, ratio_low,
                                                 ratio_high, &again);
    ASSERT_TRUE(r.top == r2.top && r.left == r2.left && r.width == r2.width &&
                r.height == r2.height);
    ASSERT_GE(r.top, 0);
    ASSERT_GE(r.left, 0);
    ASSERT_GT(r.width, 0);
    ASSERT_GT(r.height, 0);
    ASSERT_LE(r.top + r.height, height);
    ASSERT_LE(r.left + r.width, width);
    const double area = double{1} * width * height;
    const double w = r.width, h = r.height;
    const bool within = w * h <= scale_high * area + 0.5 * (w + h) + 0.25 &&
                        w * h >= scale_low * area - 0.5 * (w + h) - 0.25 &&
                        (w + 0.5) / (h - 0.5 > 0 ? h - 0.5 : 1e-9) >= ratio_low &&
                        (w - 0.5) / (h + 0.5) <= ratio_high;
    const double in_ratio = double{1} * width / height;
    const bool fallback = r.top == (height - r.height) / 2 && r.left == (width - r.width) / 2 &&
                          (r.width == width || r.height == height);
    ASSERT_TRUE(within || fallback) << width << "x" << height << ": " << r.left << "," << r.top
                                    << " " << r.width << "x" << r.height;
    if (within && !(fallback && (in_ratio < ratio_low || in_ratio > ratio_high))) {
      ++tries_succeeded;
    }
  }
  EXPECT_GT(tries_succeeded, 15000);
}

TEST(CropGeometry, ShorterSideSizeByHand) {
  EXPECT_EQ(shorter_side_size(500, 375, 256).width, 341);  // int(256 * 500 / 375) = int(341.33)
  EXPECT_EQ(shorter_side_size(500, 375, 256).height, 256);
  EXPECT_EQ(shorter_side_size(375, 500, 256).height, 341);
  EXPECT_EQ(shorter_side_size(7, 7, 3).width, 3);
}

}  // namespace
}  // namespace dgqa::tests
