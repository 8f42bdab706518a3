// Mixup/CutMix of the training batches (docs/design.md §3.6): draws a step's parameters
// (data/mixup.h), swaps this rank's share with the rank holding its partner images, and mixes
// the share on the host before the forward passes. A run on W ranks mixes exactly what a run on
// one rank mixes.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.h"
#include "data/batch.h"
#include "data/mixup.h"
#include "trainer/config.h"

namespace dgqa {

// The config's mixup section.
MixupSettings mixup_settings_from(const config::Config& config);

class BatchMixer {
 public:
  BatchMixer(const config::Config& config, Communicator& comm);

  bool enabled() const { return settings_.enabled(); }

  // Mixes `batch`, this rank's share of the global batch of step `step`. Global image g = rank +
  // k * W is mixed with image B - 1 - g, which is image n - 1 - k of rank W - 1 - r: the two
  // ranks swap their shares (one send_receive per step; rank W - 1 - r = r keeps its own).
  // Every rank calls it at every step.
  void mix(const Batch& batch, int64_t step);

  // The mixed images (batch.size x C x S x S), each image's second label, and its own label's
  // weight; the dominant label (the one of weight >= 1/2), which training top-1 counts against.
  const float* images() const { return images_.data(); }
  const int32_t* mix_labels() const { return mix_labels_.data(); }
  const float* mix_weights() const { return mix_weights_.data(); }
  const int32_t* dominant_labels() const { return dominant_labels_.data(); }

 private:
  const MixupSettings settings_;
  Communicator& comm_;
  const uint64_t seed_;
  const int global_batch_, channels_, image_size_;
  std::vector<float> images_, partner_images_;
  std::vector<int32_t> partner_labels_, mix_labels_, dominant_labels_;
  std::vector<float> mix_weights_;
};

}  // namespace dgqa
