#include "data/mixup.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/philox.h"

namespace dgqa {
namespace {

// Counter word c2 of the streams (docs/design.md §3.6): a draw's uniforms (prob, switch, box),
// and its Beta sample's.
constexpr uint32_t kMixupTag = 0x4D495855u;      // "MIXU"
constexpr uint32_t kMixupBetaTag = 0x4D495842u;  // "MIXB"
// Places of a draw's uniforms in its stream.
enum UniformSlot : uint64_t { kProb, kSwitch, kBoxY, kBoxX, kCornerY, kCornerX };
constexpr double kTwoPi = 6.283185307179586;

// Doubles in [0, 1) with 53 random bits, two per Philox block: number i of the stream
// (key, c1, c2, c3) is made of words 2 (i % 2) and 2 (i % 2) + 1 of block i / 2.
class UniformStream {
 public:
  UniformStream(uint64_t key, uint32_t c1, uint32_t c2, uint32_t c3)
      : key_(key), c1_(c1), c2_(c2), c3_(c3) {}

  double at(uint64_t index) const {
    const Philox4x32 block =
        philox4x32_10(Philox4x32{{static_cast<uint32_t>(index / 2), c1_, c2_, c3_}}, key_);
    const uint32_t high = block.v[2 * (index % 2)], low = block.v[2 * (index % 2) + 1];
    return ((high >> 5) * 67108864.0 + (low >> 6)) * (1.0 / 9007199254740992.0);
  }
  double next() { return at(next_++); }

 private:
  uint64_t key_;
  uint32_t c1_, c2_, c3_;
  uint64_t next_ = 0;
};

// A standard normal number by Box and Muller's formula, from two uniforms.
double normal(UniformStream& stream) {
  const double radius = std::sqrt(-2.0 * std::log(1.0 - stream.next()));
  return radius * std::cos(kTwoPi * stream.next());
}

// log of a Gamma(alpha) sample: Marsaglia and Tsang (2000) for alpha >= 1; below, their
// sample of Gamma(alpha + 1) times U^(1/alpha) (in logs, so that tiny values stay finite).
double log_gamma_sample(double alpha, UniformStream& stream) {
  if (alpha < 1) {
    const double boosted = log_gamma_sample(alpha + 1, stream);
    return boosted + std::log(1.0 - stream.next()) / alpha;
  }
  const double d = alpha - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  while (true) {
    double x = 0, v = 0;
    do {
      x = normal(stream);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    if (std::log(stream.next()) < 0.5 * x * x + d - d * v + d * std::log(v)) {
      return std::log(d * v);
    }
  }
}

// An integer uniform in [lo, hi) from a uniform u in [0, 1) (numpy's randint(lo, hi)).
int uniform_int(double u, int lo, int hi) {
  return lo + static_cast<int>(std::floor(u * (hi - lo)));
}

// The CutMix box of a draw and its label weight (timm's cutmix_bbox_and_lam, correct_lam on).
void place_box(const MixupSettings& settings, int size, const UniformStream& uniforms,
               MixDraw* draw) {
  if (settings.cutmix_minmax) {
    const int lo = static_cast<int>(size * settings.cutmix_min);
    const int hi = static_cast<int>(size * settings.cutmix_max);
    const int cut_h = uniform_int(uniforms.at(kBoxY), lo, hi);
    const int cut_w = uniform_int(uniforms.at(kBoxX), lo, hi);
    draw->y0 = uniform_int(uniforms.at(kCornerY), 0, size - cut_h);
    draw->x0 = uniform_int(uniforms.at(kCornerX), 0, size - cut_w);
    draw->y1 = draw->y0 + cut_h;
    draw->x1 = draw->x0 + cut_w;
  } else {
    const int half = static_cast<int>(size * std::sqrt(1 - draw->beta)) / 2;
    draw->cy = uniform_int(uniforms.at(kBoxY), 0, size);
    draw->cx = uniform_int(uniforms.at(kBoxX), 0, size);
    draw->y0 = std::clamp(draw->cy - half, 0, size);
    draw->y1 = std::clamp(draw->cy + half, 0, size);
    draw->x0 = std::clamp(draw->cx - half, 0, size);
    draw->x1 = std::clamp(draw->cx + half, 0, size);
  }
  const double area = static_cast<double>(draw->y1 - draw->y0) * (draw->x1 - draw->x0);
  draw->lam = 1 - area / (static_cast<double>(size) * size);
}

MixDraw draw_unit(const MixupSettings& settings, uint64_t seed, uint32_t step, uint32_t unit,
                  int size) {
  const UniformStream uniforms(seed, step, kMixupTag, unit);
  MixDraw draw;
  if (uniforms.at(kProb) >= settings.prob) return draw;
  draw.mixed = true;
  const double cutmix_alpha = settings.cutmix_minmax ? 1.0 : settings.cutmix_alpha;
  draw.cutmix = settings.mixup_alpha > 0 && cutmix_alpha > 0
                    ? uniforms.at(kSwitch) < settings.switch_prob
                    : cutmix_alpha > 0;
  draw.beta = beta_sample(draw.cutmix ? cutmix_alpha : settings.mixup_alpha, seed, step,
                          kMixupBetaTag, unit);
  draw.lam = draw.beta;
  if (draw.cutmix) place_box(settings, size, uniforms, &draw);
  return draw;
}

}  // namespace

double beta_sample(double alpha, uint64_t seed, uint32_t step, uint32_t tag, uint32_t unit) {
  UniformStream stream(seed, step, tag, unit);
  const double log_x = log_gamma_sample(alpha, stream);
  const double log_y = log_gamma_sample(alpha, stream);
  return 1 / (1 + std::exp(log_y - log_x));
}

std::vector<MixDraw> mixup_draws(const MixupSettings& settings, uint64_t seed, int64_t step,
                                 int global_batch, int image_size) {
  if (!settings.enabled() || global_batch <= 0 || global_batch % 2 != 0) {
    throw std::invalid_argument("mixup_draws: needs mixup on and an even batch, got " +
                                std::to_string(global_batch) + " images");
  }
  const int units = settings.mode == MixupMode::kBatch  ? 1
                    : settings.mode == MixupMode::kPair ? global_batch / 2
                                                        : global_batch;
  std::vector<MixDraw> draws;
  for (int unit = 0; unit < units; ++unit) {
    draws.push_back(draw_unit(settings, seed, static_cast<uint32_t>(step),
                              static_cast<uint32_t>(unit), image_size));
  }
  return draws;
}

const MixDraw& draw_of_image(const std::vector<MixDraw>& draws, MixupMode mode, int global_batch,
                             int g) {
  switch (mode) {
    case MixupMode::kBatch:
      return draws[0];
    case MixupMode::kPair:
      return draws[std::min(g, global_batch - 1 - g)];
    case MixupMode::kElem:
      break;
  }
  return draws[g];
}

void mix_share(const std::vector<MixDraw>& draws, MixupMode mode, const MixupShare& share,
               float* images, const float* partner_images, const int32_t* partner_labels,
               int32_t* mix_labels, float* mix_weights) {
  const int n = share.global_batch / share.world, S = share.image_size;
  const int64_t plane = int64_t{S} * S, image_floats = share.channels * plane;
  for (int k = 0; k < n; ++k) {
    const MixDraw& draw =
        draw_of_image(draws, mode, share.global_batch, share.rank + k * share.world);
    const int partner = n - 1 - k;
    mix_labels[k] = partner_labels[partner];
    mix_weights[k] = static_cast<float>(draw.lam);
    if (!draw.mixed) continue;
    float* x = images + k * image_floats;
    const float* other = partner_images + partner * image_floats;
    if (!draw.cutmix) {
      const float lam = static_cast<float>(draw.lam);
      for (int64_t i = 0; i < image_floats; ++i) x[i] = x[i] * lam + other[i] * (1 - lam);
      continue;
    }
    for (int c = 0; c < share.channels; ++c) {
      for (int y = draw.y0; y < draw.y1; ++y) {
        const int64_t row = c * plane + int64_t{y} * S + draw.x0;
        std::memcpy(x + row, other + row, sizeof(float) * (draw.x1 - draw.x0));
      }
    }
  }
}

}  // namespace dgqa
