// data/rand_augment.h against torchvision 0.14 on PIL 9.4: every operation over random image
// sizes, magnitudes of both signs and both channel counts, compared byte for byte with what
// RandAugment._apply_op makes of the same PIL image; the magnitude table against
// RandAugment._augmentation_space; and the draw's distribution.
#include "data/rand_augment.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/pil_oracle.h"

namespace dgqa::tests {
namespace {

const char* const kOpNames[] = {
    "Identity", "ShearX",   "ShearY",    "TranslateX", "TranslateY", "Rotate",       "Brightness",
    "Color",    "Contrast", "Sharpness", "Posterize",  "Solarize",   "AutoContrast", "Equalize"};

struct OpCase {
  Image image;
  AugmentOpDraw draw;
};

// Magnitudes as RandAugment gives them (any bin of 31, either sign) plus a few off-table ones
// that reach PIL's edge cases (wide shears, translations past the image).
std::vector<OpCase> random_op_cases(int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> side(1, 90), bin(0, 30), op_index(0, 13);
  std::vector<OpCase> cases;
  for (int i = 0; i < count; ++i) {
    const int w = i % 17 == 0 ? 1 : side(rng), h = i % 13 == 0 ? 2 : side(rng);
    const int channels = i % 2 ? 1 : 3;
    const auto op = static_cast<AugmentOp>(i < 14 * 20 ? i % 14 : op_index(rng));
    float magnitude = 0;
    {
      // Draw until the op comes up (14 ops: a few dozen draws at most).
      UniformStream s(seed + 1, 0, i, kImageAugmentStreamTag);
      const int m = bin(rng);
      for (int k = 0; k < 1000; ++k) {
        const AugmentOpDraw d = draw_rand_augment(1, m, 31, w, h, &s)[0];
        if (d.op == op) {
          magnitude = d.magnitude;
          break;
        }
      }
    }
    if (i % 29 == 5 && op == AugmentOp::kShearX) magnitude = 3.5f;  // ~74 degrees
    if (i % 23 == 3 && op == AugmentOp::kTranslateY) magnitude = -static_cast<float>(h + 3);
    cases.push_back({oracle_test_image(w, h, channels, seed + i), AugmentOpDraw{op, magnitude}});
  }
  return cases;
}

void expect_ops_match_torchvision(const std::vector<OpCase>& cases) {
  OracleBatch batch;
  for (const OpCase& c : cases) {
    char args[96];
    std::snprintf(args, sizeof args, "%s %.17g", kOpNames[static_cast<int>(c.draw.op)],
                  static_cast<double>(c.draw.magnitude));
    batch.add_image_job("op", c.image, args);
  }
  if (!batch.run()) return;
  int mismatched = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const OpCase& c = cases[i];
    Image ours = c.image;
    apply_augment_op(c.draw, &ours);
    const Image theirs =
        batch.image(static_cast<int>(i), c.image.width, c.image.height, c.image.channels);
    char what[128];
    std::snprintf(what, sizeof what, "%s %.9g on %dx%dx%d", kOpNames[static_cast<int>(c.draw.op)],
                  c.draw.magnitude, c.image.width, c.image.height, c.image.channels);
    if (count_differences(ours, theirs, what) != 0) ++mismatched;
  }
  EXPECT_EQ(mismatched, 0);
}

TEST(RandAugment, EveryOpMatchesTorchvision) {
  if (!have_pil_oracle()) GTEST_SKIP() << "/usr/bin/python3 lacks PIL or torchvision";
  expect_ops_match_torchvision(random_op_cases(700, 17));
}

// The pipeline's size, where the fixed-point affine path covers a whole 224 x 224 image.
TEST(RandAugment, OpsAt224MatchTorchvision) {
  if (!have_pil_oracle()) GTEST_SKIP() << "/usr/bin/python3 lacks PIL or torchvision";
  std::vector<OpCase> cases;
  const float magnitudes[] = {0.3f,  -0.21f, 30.0f,  -17.0f, 0.9f,
                              -0.9f, 101.0f, -57.9f, 4.0f,   128.0f};
  int seed = 0;
  for (int op = 0; op < 14; ++op) {
    for (float m : magnitudes) {
      // Posterize takes 0 to 8 bits: its own values, the ones RandAugment uses.
      if (op == 10) m = static_cast<float>(seed % 9);
      if (seed % 2 == 0 || op == 5 || op == 1) {
        cases.push_back({oracle_test_image(224, 224, seed % 4 ? 3 : 1, seed),
                         AugmentOpDraw{static_cast<AugmentOp>(op), m}});
      }
      ++seed;
    }
  }
  expect_ops_match_torchvision(cases);
}

// Every table value for several bin counts and sizes. torch's linspace differs by an ulp at a
// few indices once the kernel vectorises (16 bins or more); those are allowed one ulp.
TEST(RandAugment, MagnitudeTableMatchesTorchvision) {
  if (!have_pil_oracle()) GTEST_SKIP() << "/usr/bin/python3 lacks PIL or torchvision";
  struct Table {
    int bins, width, height;
  };
  std::vector<Table> tables;
  for (int bins : {2, 3, 5, 10, 11, 15, 31, 40}) tables.push_back({bins, 224, 224});
  tables.push_back({31, 500, 37});
  tables.push_back({7, 91, 333});
  OracleBatch batch;
  for (const Table& t : tables) {
    batch.add_text_job("space", std::to_string(t.bins) + " " + std::to_string(t.width) + " " +
                                    std::to_string(t.height));
  }
  if (!batch.run()) return;
  int ulp_differences = 0;
  for (size_t k = 0; k < tables.size(); ++k) {
    const Table& t = tables[k];
    std::istringstream text(batch.text(static_cast<int>(k)));
    std::string line;
    int op = 0;
    while (std::getline(text, line)) {
      std::istringstream fields(line);
      std::string name;
      int is_signed = 0;
      fields >> name >> is_signed;
      ASSERT_EQ(name, kOpNames[op]);
      std::vector<double> values;
      for (double v; fields >> v;) values.push_back(v);
      for (int m = 0; m < t.bins; ++m) {
        // The op's value at bin m: drawn until that op comes up with a positive sign.
        UniformStream stream(5, 0, m, kImageAugmentStreamTag);
        float ours = 0;
        for (int tries = 0; tries < 10000; ++tries) {
          const AugmentOpDraw d = draw_rand_augment(1, m, t.bins, t.width, t.height, &stream)[0];
          if (static_cast<int>(d.op) == op && !std::signbit(d.magnitude)) {
            ours = d.magnitude;
            break;
          }
        }
        const double theirs = values.size() == 1 ? 0.0 : values[m];
        if (ours == theirs) continue;
        const float next = std::nextafter(static_cast<float>(theirs), ours);
        EXPECT_TRUE(t.bins >= 16 && next == ours)
            << name << " bins " << t.bins << " [" << m << "]: " << ours << " vs " << theirs;
        ++ulp_differences;
      }
      ++op;
    }
    EXPECT_EQ(op, 14);
  }
  std::printf("magnitude table entries one ulp off torch.linspace: %d\n", ulp_differences);
}

TEST(RandAugment, DrawsOpsUniformlyAndSignsHalfTheTime) {
  std::vector<int> counts(14, 0);
  int negative = 0, signed_draws = 0;
  for (int example = 0; example < 20000; ++example) {
    UniformStream stream(3, 1, example, kImageAugmentStreamTag);
    const auto draws = draw_rand_augment(2, 9, 31, 224, 224, &stream);
    ASSERT_EQ(draws.size(), 2u);
    for (const AugmentOpDraw& d : draws) {
      ++counts[static_cast<int>(d.op)];
      const int op = static_cast<int>(d.op);
      if (op >= 1 && op <= 9) {
        ++signed_draws;
        if (d.magnitude < 0) ++negative;
      } else {
        EXPECT_FALSE(std::signbit(d.magnitude));
      }
    }
  }
  for (int c : counts) EXPECT_NEAR(c, 40000 / 14.0, 200);
  EXPECT_NEAR(static_cast<double>(negative) / signed_draws, 0.5, 0.02);
}

}  // namespace
}  // namespace dgqa::tests
