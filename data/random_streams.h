// The data pipeline's random numbers: Philox streams keyed by (seed, epoch, example, tag), so
// a draw depends on none of rank, thread or batch order. The tags, one per stream, keep the
// shuffle and the augmentations from drawing the same numbers under the same seed.
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/philox.h"

namespace dgqa {

constexpr uint32_t kShuffleStreamTag = 0x53485546;       // "SHUF"
constexpr uint32_t kAugmentStreamTag = 0x41554754;       // "AUGT": crop and flip of stored images
constexpr uint32_t kImageAugmentStreamTag = 0x494d4147;  // "IMAG": the encoded-image pipeline

// Successive uniform draws of one example's stream: element 0, 1, 2, ... of
// philox_uniform_at(seed, epoch, example, tag, .).
class UniformStream {
 public:
  UniformStream(uint64_t seed, int64_t epoch, int64_t example, uint32_t tag)
      : seed_(seed),
        epoch_(static_cast<uint32_t>(epoch)),
        example_(static_cast<uint32_t>(example)),
        tag_(tag) {}

  // A float in [0, 1) with 24 random bits.
  float uniform() { return philox_uniform_at(seed_, epoch_, example_, tag_, position_++); }
  // A float in [low, high).
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // An integer in [0, count), count > 0.
  int below(int count) {
    return std::min(static_cast<int>(uniform() * static_cast<float>(count)), count - 1);
  }

 private:
  uint64_t seed_;
  uint32_t epoch_, example_, tag_;
  uint64_t position_ = 0;
};

}  // namespace dgqa
