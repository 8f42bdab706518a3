// One rank's share of a global batch, ready for the model.
#pragma once

#include <cstdint>
#include <vector>

namespace dgqa {

struct Batch {
  std::vector<float> images;      // size x channels x image_size x image_size, normalised
  std::vector<int32_t> labels;    // size
  std::vector<int64_t> examples;  // size: each example's index in the dataset
  // size: 1 where the example's image was unreadable and another stood in (data.bad_image).
  std::vector<uint8_t> replaced;
  int size = 0;  // examples on this rank (fewer than its share in a last eval batch)
  int64_t epoch = 0;
  int64_t index_in_epoch = 0;  // which global batch of the epoch
};

}  // namespace dgqa
