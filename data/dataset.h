// A labelled image dataset held in memory as the files store it: uint8 pixels, CHW per image.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dgqa {

struct Dataset {
  int num_examples = 0;
  int channels = 0;
  int height = 0;
  int width = 0;
  int num_classes_seen = 0;     // the largest label + 1
  std::vector<uint8_t> pixels;  // num_examples * channels * height * width, CHW per image
  std::vector<int32_t> labels;  // num_examples
  // Where the labels came from, as error messages name it: "data.train_labels: /path".
  std::string label_source;

  int64_t image_bytes() const { return static_cast<int64_t>(channels) * height * width; }
  const uint8_t* image(int64_t example) const { return pixels.data() + example * image_bytes(); }
};

}  // namespace dgqa
