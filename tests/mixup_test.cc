// Mixup/CutMix draws and mixing (data/mixup.h): the Beta sampler's moments, the keying of the
// draws, the CutMix boxes and label weights against timm's formulas, the mixing of a small
// batch, and a batch split over ranks mixing as one rank mixes it.
#include "data/mixup.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "tests/test_util.h"

namespace dgqa {
namespace {

constexpr uint64_t kSeed = 17;

MixupSettings cutmix_only(MixupMode mode = MixupMode::kElem) {
  MixupSettings settings;
  settings.cutmix_alpha = 1.0;
  settings.mode = mode;
  return settings;
}

// The mean and variance of n Beta(alpha, alpha) samples of distinct units.
void beta_moments(double alpha, int n, double* mean, double* variance) {
  double sum = 0, sum_squares = 0;
  for (int unit = 0; unit < n; ++unit) {
    const double x = beta_sample(alpha, kSeed, 3, 0x1234, static_cast<uint32_t>(unit));
    ASSERT_TRUE(x >= 0 && x <= 1) << x;
    sum += x;
    sum_squares += x * x;
  }
  *mean = sum / n;
  *variance = sum_squares / n - *mean * *mean;
}

TEST(MixupTest, BetaSamplesHaveTheBetaMoments) {
  constexpr int kSamples = 20000;
  for (double alpha : {0.1, 0.2, 0.8, 1.0, 4.0}) {
    SCOPED_TRACE("alpha " + std::to_string(alpha));
    double mean = 0, variance = 0;
    beta_moments(alpha, kSamples, &mean, &variance);
    const double expected_variance = 1 / (4 * (2 * alpha + 1));  // Beta(a, a)
    EXPECT_NEAR(mean, 0.5, 4 * std::sqrt(expected_variance / kSamples));
    EXPECT_NEAR(variance, expected_variance, 0.05 * expected_variance);
  }
}

TEST(MixupTest, DrawsAreKeyedBySeedStepAndUnit) {
  MixupSettings settings;
  settings.mixup_alpha = 0.8;
  settings.cutmix_alpha = 1.0;
  settings.mode = MixupMode::kElem;
  const auto lams = [&](uint64_t seed, int64_t step) {
    std::vector<double> values;
    for (const MixDraw& draw : mixup_draws(settings, seed, step, 16, 32)) {
      values.push_back(draw.lam);
    }
    return values;
  };
  const std::vector<double> first = lams(kSeed, 5);
  EXPECT_EQ(lams(kSeed, 5), first);
  EXPECT_NE(lams(kSeed, 6), first);
  EXPECT_NE(lams(kSeed + 1, 5), first);
  // The units differ from each other.
  EXPECT_GT(std::set<double>(first.begin(), first.end()).size(), 12u);
}

TEST(MixupTest, DrawsFollowProbAndSwitchProb) {
  MixupSettings settings;
  settings.mixup_alpha = 0.8;
  settings.cutmix_alpha = 1.0;
  settings.prob = 0.6;
  settings.switch_prob = 0.3;
  settings.mode = MixupMode::kElem;
  constexpr int kImages = 4000;
  const std::vector<MixDraw> draws = mixup_draws(settings, kSeed, 0, kImages, 32);
  int mixed = 0, cutmix = 0;
  for (const MixDraw& draw : draws) {
    mixed += draw.mixed;
    cutmix += draw.cutmix;
    // Not mixed: weight 1; Mixup: the Beta draw.
    EXPECT_EQ(draw.lam, !draw.mixed ? 1.0 : draw.cutmix ? draw.lam : draw.beta);
  }
  EXPECT_NEAR(mixed, 0.6 * kImages, 4 * std::sqrt(0.24 * kImages));
  EXPECT_NEAR(cutmix, 0.3 * mixed, 4 * std::sqrt(0.21 * mixed));
}

// timm's rand_bbox and correct_lam: cut = int(S sqrt(1 - lam)), the box [c - cut // 2,
// c + cut // 2) clipped to the image around a centre in [0, S), lam = 1 - area / S^2.
TEST(MixupTest, CutMixBoxesFollowTheFormula) {
  constexpr int S = 32, kImages = 512;
  int clipped = 0;
  for (const MixDraw& d : mixup_draws(cutmix_only(), kSeed, 2, kImages, S)) {
    ASSERT_TRUE(d.mixed && d.cutmix);
    const int half = static_cast<int>(S * std::sqrt(1 - d.beta)) / 2;
    EXPECT_TRUE(d.cy >= 0 && d.cy < S && d.cx >= 0 && d.cx < S);
    EXPECT_EQ(d.y0, std::clamp(d.cy - half, 0, S));
    EXPECT_EQ(d.y1, std::clamp(d.cy + half, 0, S));
    EXPECT_EQ(d.x0, std::clamp(d.cx - half, 0, S));
    EXPECT_EQ(d.x1, std::clamp(d.cx + half, 0, S));
    EXPECT_DOUBLE_EQ(d.lam, 1 - (d.y1 - d.y0) * (d.x1 - d.x0) / double{S * S});
    clipped += d.y1 - d.y0 < 2 * half || d.x1 - d.x0 < 2 * half;
  }
  EXPECT_GT(clipped, kImages / 10);  // the correction matters
}

TEST(MixupTest, CutMixMinMaxBoxesHaveSidesInTheRange) {
  MixupSettings settings;
  settings.cutmix_minmax = true;
  settings.cutmix_min = 0.25;
  settings.cutmix_max = 0.75;
  settings.mode = MixupMode::kElem;
  constexpr int S = 32;
  std::set<int> sides;
  for (const MixDraw& d : mixup_draws(settings, kSeed, 1, 512, S)) {
    ASSERT_TRUE(d.mixed && d.cutmix);
    for (int side : {d.y1 - d.y0, d.x1 - d.x0}) {
      EXPECT_TRUE(side >= 8 && side < 24) << side;
      sides.insert(side);
    }
    EXPECT_TRUE(d.y0 >= 0 && d.y1 < S && d.x0 >= 0 && d.x1 < S);
    EXPECT_DOUBLE_EQ(d.lam, 1 - (d.y1 - d.y0) * (d.x1 - d.x0) / double{S * S});
  }
  EXPECT_EQ(sides.size(), 16u);
}

TEST(MixupTest, ModesShareTheirDraws) {
  constexpr int B = 8;
  MixupSettings settings;
  settings.mixup_alpha = 1.0;
  for (MixupMode mode : {MixupMode::kBatch, MixupMode::kPair, MixupMode::kElem}) {
    settings.mode = mode;
    const std::vector<MixDraw> draws = mixup_draws(settings, kSeed, 0, B, 8);
    EXPECT_EQ(draws.size(), mode == MixupMode::kBatch ? 1u : mode == MixupMode::kPair ? 4u : 8u);
    for (int g = 0; g < B; ++g) {
      const MixDraw* expected = mode == MixupMode::kBatch  ? &draws[0]
                                : mode == MixupMode::kPair ? &draws[std::min(g, B - 1 - g)]
                                                           : &draws[g];
      EXPECT_EQ(&draw_of_image(draws, mode, B, g), expected) << g;
    }
  }
}

TEST(MixupTest, MixesASmallBatchAsTheFormulaSays) {
  constexpr int B = 4, C = 2, S = 4, kFloats = C * S * S;
  const std::vector<float> original = tests::random_vector(B * kFloats, 3);
  const std::vector<int32_t> labels = {0, 1, 2, 3};
  std::vector<MixDraw> draws(B);
  draws[0].mixed = true;  // Mixup at 0.25
  draws[0].lam = 0.25;
  draws[1].mixed = draws[1].cutmix = true;  // CutMix of rows [1, 3), columns [2, 4)
  draws[1].y0 = 1, draws[1].y1 = 3, draws[1].x0 = 2, draws[1].x1 = 4;
  draws[1].lam = 0.75;  // draws[2], draws[3]: not mixed
  std::vector<float> images = original;
  std::vector<int32_t> mix_labels(B);
  std::vector<float> mix_weights(B);
  mix_share(draws, MixupMode::kElem, MixupShare{0, 1, B, C, S}, images.data(), original.data(),
            labels.data(), mix_labels.data(), mix_weights.data());
  EXPECT_EQ(mix_labels, (std::vector<int32_t>{3, 2, 1, 0}));
  EXPECT_EQ(mix_weights, (std::vector<float>{0.25f, 0.75f, 1.f, 1.f}));
  for (int i = 0; i < kFloats; ++i) {
    EXPECT_EQ(images[i], original[i] * 0.25f + original[3 * kFloats + i] * 0.75f) << i;
    const int y = i % (S * S) / S, x = i % S;
    const bool in_box = y >= 1 && y < 3 && x >= 2;
    EXPECT_EQ(images[kFloats + i], original[(in_box ? 2 : 1) * kFloats + i]) << i;
  }
  EXPECT_TRUE(
      std::equal(images.begin() + 2 * kFloats, images.end(), original.begin() + 2 * kFloats));
}

// Rank r of W holds global images r, r + W, ...; its partner images are rank W - 1 - r's.
TEST(MixupTest, SharesOfRanksMixAsOneRank) {
  constexpr int B = 12, C = 3, S = 8, kFloats = C * S * S;
  MixupSettings settings;
  settings.mixup_alpha = 0.5;
  settings.cutmix_alpha = 1.0;
  settings.mode = MixupMode::kElem;
  const std::vector<MixDraw> draws = mixup_draws(settings, kSeed, 4, B, S);
  const std::vector<float> images = tests::random_vector(B * kFloats, 5);
  std::vector<int32_t> labels(B);
  for (int g = 0; g < B; ++g) labels[g] = g;
  std::vector<float> whole = images;
  std::vector<int32_t> whole_labels(B);
  std::vector<float> whole_weights(B);
  mix_share(draws, settings.mode, MixupShare{0, 1, B, C, S}, whole.data(), images.data(),
            labels.data(), whole_labels.data(), whole_weights.data());
  for (int world : {2, 3, 4}) {
    const int n = B / world;
    // Each rank's share of the images and labels.
    std::vector<std::vector<float>> shares(world);
    std::vector<std::vector<int32_t>> share_labels(world);
    for (int g = 0; g < B; ++g) {
      shares[g % world].insert(shares[g % world].end(), images.begin() + g * kFloats,
                               images.begin() + (g + 1) * kFloats);
      share_labels[g % world].push_back(labels[g]);
    }
    for (int rank = 0; rank < world; ++rank) {
      std::vector<float> mixed = shares[rank];
      std::vector<int32_t> mix_labels(n);
      std::vector<float> mix_weights(n);
      const int partner = world - 1 - rank;
      mix_share(draws, settings.mode, MixupShare{rank, world, B, C, S}, mixed.data(),
                shares[partner].data(), share_labels[partner].data(), mix_labels.data(),
                mix_weights.data());
      for (int k = 0; k < n; ++k) {
        const int g = rank + k * world;
        EXPECT_TRUE(std::equal(mixed.begin() + k * kFloats, mixed.begin() + (k + 1) * kFloats,
                               whole.begin() + g * kFloats))
            << "world " << world << ", image " << g;
        EXPECT_EQ(mix_labels[k], whole_labels[g]);
        EXPECT_EQ(mix_weights[k], whole_weights[g]);
      }
    }
  }
}

}  // namespace
}  // namespace dgqa
