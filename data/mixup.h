// Mixup and CutMix with the semantics of timm's Mixup (docs/design.md §3.6), as pure functions:
// the parameters of a training step drawn from the run's seed, and the mixing of a rank's share
// of the global batch with its partner images. Every draw is keyed by (seed, step, the draw's
// unit), so any number of ranks, and a resumed run, draw the same.
#pragma once

#include <cstdint>
#include <vector>

namespace dgqa {

enum class MixupMode {
  kBatch,  // one draw for the global batch
  kPair,   // one per pair (g, B - 1 - g), keyed by g < B / 2
  kElem,   // one per image g
};

struct MixupSettings {
  double mixup_alpha = 0, cutmix_alpha = 0;  // Beta(alpha, alpha); 0 = that kind is off
  // CutMix boxes of sides drawn from [int(cutmix_min * S), int(cutmix_max * S)) instead of
  // from lam; then cutmix_alpha counts as 1 (timm).
  bool cutmix_minmax = false;
  double cutmix_min = 0, cutmix_max = 0;
  double prob = 1, switch_prob = 0.5;
  MixupMode mode = MixupMode::kBatch;

  bool enabled() const { return mixup_alpha > 0 || cutmix_alpha > 0 || cutmix_minmax; }
};

// What one draw gives (timm's _params_per_batch / _params_per_elem, then cutmix_bbox_and_lam).
struct MixDraw {
  bool mixed = false;   // the draw of prob mixed (else the images stay as they are)
  bool cutmix = false;  // CutMix, else Mixup
  double beta = 1;      // the Beta draw: Mixup's lam; CutMix's lam before the box
  // CutMix: the box rows [y0, y1) and columns [x0, x1) taken from the partner. From beta: the
  // centre (cy, cx) uniform over the image and the half side cut / 2, cut = int(S *
  // sqrt(1 - beta)), clipped to the image. From cutmix_minmax: the sides and the corner drawn.
  int cy = 0, cx = 0;
  int y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  // The weight of the image's own label: beta for Mixup, 1 - box area / S^2 for CutMix
  // (timm's correct_lam), 1 when not mixed.
  double lam = 1;
};

// The draws of step `step` for a global batch of `global_batch` images of side `image_size`:
// one (kBatch), global_batch / 2 (kPair: draw i for images i and B - 1 - i) or global_batch
// (kElem). Needs settings.enabled() and an even global_batch.
std::vector<MixDraw> mixup_draws(const MixupSettings& settings, uint64_t seed, int64_t step,
                                 int global_batch, int image_size);

// The draw that applies to image g of the global batch.
const MixDraw& draw_of_image(const std::vector<MixDraw>& draws, MixupMode mode, int global_batch,
                             int g);

// A Beta(alpha, alpha) sample as mixup_draws makes it: X / (X + Y) of two Gamma(alpha) samples
// by Marsaglia and Tsang's method (for alpha < 1, Gamma(alpha + 1) * U^(1/alpha)), their
// normal and uniform numbers taken in order from the Philox stream (seed, step, tag, unit) as
// 53-bit doubles. Exposed for the tests of its distribution.
double beta_sample(double alpha, uint64_t seed, uint32_t step, uint32_t tag, uint32_t unit);

// Where a rank's share sits in the global batch, and the images' shape.
struct MixupShare {
  int rank = 0, world = 1, global_batch = 0, channels = 0, image_size = 0;
};

// Mixes a rank's share of the global batch in place. Its image k is global image g = rank +
// k * world (docs/design.md §5.5) and is mixed with partner_images[n - 1 - k] (global image
// B - 1 - g), whose label is partner_labels[n - 1 - k], under the draw of image g; n =
// global_batch / world images of channels x image_size^2 floats, the partner's as they were
// before mixing.
// Writes each image's second label and its own label's weight (the soft target of
// kernels/cpu/cross_entropy.h).
void mix_share(const std::vector<MixDraw>& draws, MixupMode mode, const MixupShare& share,
               float* images, const float* partner_images, const int32_t* partner_labels,
               int32_t* mix_labels, float* mix_weights);

}  // namespace dgqa
