// Image transforms: bilinear resize, normalisation, and the random crop and flip.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "data/augmentation.h"
#include "data/transforms.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::expect_contains;
using tests::input_error_of;

void expect_floats_near(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 1e-6f) << i;
}

TEST(BilinearResizeTest, UpsamplesTwoByTwoToFourByFour) {
  // Scale 2/4: output d samples max(0, (d + 0.5) / 2 - 0.5) = 0, 0.25, 0.75, 1.25, and the
  // last one clamps to source pixel 1. So rows and columns weigh the second source pixel by
  // 0, 0.25, 0.75, 1 and out(y, x) = 2 * w[y] + w[x] for in = [[0, 1], [2, 3]].
  const std::vector<float> in = {0, 1, 2, 3};
  std::vector<float> out(16);
  bilinear_resize(in.data(), 1, 2, 2, 4, 4, out.data());
  expect_floats_near(out, {0.0f, 0.25f, 0.75f, 1.0f,    //
                           0.5f, 0.75f, 1.25f, 1.5f,    //
                           1.5f, 1.75f, 2.25f, 2.5f,    //
                           2.0f, 2.25f, 2.75f, 3.0f});  //
}

TEST(BilinearResizeTest, DownsamplesWithoutAntialias) {
  // Scale 4/2: output d samples (d + 0.5) * 2 - 0.5 = 0.5, 2.5: the mean of two neighbours.
  std::vector<float> in(16);
  for (int i = 0; i < 16; ++i) in[i] = static_cast<float>(i);  // in(y, x) = 4y + x
  std::vector<float> out(4);
  bilinear_resize(in.data(), 1, 4, 4, 2, 2, out.data());
  expect_floats_near(out, {2.5f, 4.5f, 10.5f, 12.5f});
}

TEST(BilinearResizeTest, ResizesEachChannelAndNonSquareShapes) {
  // Two channels of 1x2 -> 1x4: every output row samples source row 0.
  const std::vector<float> in = {0, 4, 10, 10};
  std::vector<float> out(8);
  bilinear_resize(in.data(), 2, 1, 2, 1, 4, out.data());
  expect_floats_near(out, {0, 1, 3, 4, 10, 10, 10, 10});
}

TEST(BilinearResizeTest, SameSizeIsIdentity) {
  std::vector<float> in(28 * 28);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 97) / 7.f;
  std::vector<float> out(in.size());
  bilinear_resize(in.data(), 1, 28, 28, 28, 28, out.data());
  EXPECT_EQ(out, in);
}

TEST(ImageTransformTest, ScalesAndNormalisesPerChannel) {
  TransformOptions options;
  options.image_size = 1;
  options.mean = {0.f, 0.5f, 1.f};
  options.stddev = {1.f, 0.5f, 0.25f};
  ImageTransform transform(options, 3, 1, 1);
  ASSERT_EQ(transform.output_floats(), 3);
  const uint8_t image[3] = {51, 255, 0};
  std::vector<float> out(3);
  transform.apply(image, Augmentation{}, out.data());
  expect_floats_near(out, {0.2f, 1.f, -4.f});
}

TEST(ImageTransformTest, OneMeanAndStdApplyToEveryChannel) {
  TransformOptions options;
  options.image_size = 1;
  options.mean = {0.5f};
  options.stddev = {0.5f};
  ImageTransform transform(options, 2, 1, 1);
  const uint8_t image[2] = {0, 255};
  std::vector<float> out(2);
  transform.apply(image, Augmentation{}, out.data());
  expect_floats_near(out, {-1.f, 1.f});
}

TEST(ImageTransformTest, DefaultsScaleToUnitRangeAndResize) {
  TransformOptions options;
  options.image_size = 4;
  ImageTransform transform(options, 1, 2, 2);
  const uint8_t image[4] = {0, 51, 102, 153};  // 0, 0.2, 0.4, 0.6 after scaling
  std::vector<float> out(16);
  transform.apply(image, Augmentation{}, out.data());
  std::vector<float> expected = {0.0f, 0.25f, 0.75f, 1.0f, 0.5f, 0.75f, 1.25f, 1.5f,
                                 1.5f, 1.75f, 2.25f, 2.5f, 2.0f, 2.25f, 2.75f, 3.0f};
  for (float& value : expected) value *= 0.2f;
  expect_floats_near(out, expected);
}

TEST(ImageTransformTest, RejectsMeanAndStdOfWrongSize) {
  TransformOptions options;
  options.image_size = 32;
  options.mean = {0.1f, 0.2f};
  expect_contains(input_error_of([&] { ImageTransform(options, 3, 32, 32); }),
                  "data.mean: 2 values for images of 3 channels");
  options.mean = {0.1f, 0.2f, 0.3f};
  options.stddev = {1.f, 1.f, 1.f, 1.f};
  expect_contains(input_error_of([&] { ImageTransform(options, 3, 32, 32); }),
                  "data.std: 4 values");
  options.stddev = {0.f};
  expect_contains(input_error_of([&] { ImageTransform(options, 3, 32, 32); }),
                  "data.std: 0.000000 must be positive");
  options.stddev = {};
  options.image_size = 0;
  expect_contains(input_error_of([&] { ImageTransform(options, 3, 32, 32); }), "model.image_size");
}

// A 1x3x3 image with pixels 1..9.
std::vector<float> counting_image() {
  return {1, 2, 3, 4, 5, 6, 7, 8, 9};
}

TEST(AugmentationTest, CropAtCentreOffsetIsIdentity) {
  std::vector<float> in = counting_image(), out(9);
  pad_and_crop(in.data(), 1, 3, 3, 2, 2, 2, out.data());
  EXPECT_EQ(out, in);
}

TEST(AugmentationTest, CropShiftsInZeros) {
  std::vector<float> in = counting_image(), out(9);
  // Offset (0, 1) of padding 1: the window starts one row above the image, at column 0.
  pad_and_crop(in.data(), 1, 3, 3, 1, 0, 1, out.data());
  EXPECT_EQ(out, (std::vector<float>{0, 0, 0, 1, 2, 3, 4, 5, 6}));
  // Offset (2, 0): one row below and one column left.
  pad_and_crop(in.data(), 1, 3, 3, 1, 2, 0, out.data());
  EXPECT_EQ(out, (std::vector<float>{0, 4, 5, 0, 7, 8, 0, 0, 0}));
}

TEST(AugmentationTest, FlipReversesEveryRowOfEveryChannel) {
  std::vector<float> image = {1, 2, 3, 4, 5, 6};  // 2 channels of 1x3
  flip_horizontal(image.data(), 2, 1, 3);
  EXPECT_EQ(image, (std::vector<float>{3, 2, 1, 6, 5, 4}));
}

TEST(AugmentationTest, ApplyCropsThenFlips) {
  std::vector<float> image = counting_image();
  Augmentation augmentation;
  augmentation.crop_padding = 1;
  augmentation.offset_y = 1;
  augmentation.offset_x = 0;
  augmentation.flip = true;
  apply_augmentation(augmentation, 1, 3, 3, image.data());
  EXPECT_EQ(image, (std::vector<float>{2, 1, 0, 5, 4, 0, 8, 7, 0}));
}

TEST(AugmentationTest, DrawsAreDeterministicPerSeedEpochAndExample) {
  RandomAugmentation random({/*crop_padding=*/3, /*hflip=*/true}, /*seed=*/11);
  std::set<int> offsets_x, offsets_y;
  int flips = 0, epoch_changes = 0, seed_changes = 0;
  RandomAugmentation other_seed({3, true}, /*seed=*/12);
  for (int example = 0; example < 400; ++example) {
    Augmentation a = random.draw(5, example), again = random.draw(5, example);
    EXPECT_EQ(a.offset_x, again.offset_x);
    EXPECT_EQ(a.offset_y, again.offset_y);
    EXPECT_EQ(a.flip, again.flip);
    EXPECT_EQ(a.crop_padding, 3);
    offsets_x.insert(a.offset_x);
    offsets_y.insert(a.offset_y);
    flips += a.flip;
    Augmentation next_epoch = random.draw(6, example);
    epoch_changes += next_epoch.offset_x != a.offset_x || next_epoch.flip != a.flip;
    Augmentation reseeded = other_seed.draw(5, example);
    seed_changes += reseeded.offset_x != a.offset_x || reseeded.flip != a.flip;
  }
  // Every offset in [0, 2 * padding] occurs, nothing outside, and about half the images flip.
  EXPECT_EQ(offsets_x, (std::set<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(offsets_y, (std::set<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_GT(flips, 150);
  EXPECT_LT(flips, 250);
  EXPECT_GT(epoch_changes, 300);
  EXPECT_GT(seed_changes, 300);
}

TEST(AugmentationTest, DisabledOptionsDrawNothing) {
  RandomAugmentation random({/*crop_padding=*/0, /*hflip=*/false}, 1);
  for (int example = 0; example < 20; ++example) {
    Augmentation a = random.draw(0, example);
    EXPECT_EQ(a.crop_padding, 0);
    EXPECT_EQ(a.offset_x, 0);
    EXPECT_EQ(a.offset_y, 0);
    EXPECT_FALSE(a.flip);
  }
}

TEST(AugmentationTest, RejectsNegativePadding) {
  expect_contains(input_error_of([] {
                    RandomAugmentation({-1, false}, 0);
                  }),
                  "data.random_crop_padding: -1");
}

TEST(ImageTransformTest, AugmentsBeforeResizing) {
  // A 1x2x2 image flipped, then resized to 4x4: the resize of the flipped image.
  TransformOptions options;
  options.image_size = 4;
  ImageTransform transform(options, 1, 2, 2);
  const uint8_t image[4] = {0, 51, 102, 153};
  const uint8_t flipped[4] = {51, 0, 153, 102};
  Augmentation flip;
  flip.flip = true;
  std::vector<float> out(16), expected(16);
  transform.apply(image, flip, out.data());
  transform.apply(flipped, Augmentation{}, expected.data());
  EXPECT_EQ(out, expected);
}

}  // namespace
}  // namespace dgqa
