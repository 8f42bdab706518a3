// Tags for the third Philox counter word, one per random stream of the data pipeline, so the
// shuffle and the augmentation never draw the same numbers under the same seed.
#pragma once

#include <cstdint>

namespace dgqa {

constexpr uint32_t kShuffleStreamTag = 0x53485546;  // "SHUF"
constexpr uint32_t kAugmentStreamTag = 0x41554754;  // "AUGT"

}  // namespace dgqa
