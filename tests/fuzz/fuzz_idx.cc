// Fuzz target: the IDX reader of (Fashion-)MNIST (data/idx_reader.h).
//
// Input: a 4-byte big-endian length L, then an IDX image file of L bytes (or what is left),
// then an IDX label file (the rest); either may be gzipped. Both are written to scratch files
// and read with read_idx_dataset.
// Asserts: the read ends with a dataset or an InputError naming one of the two fields; a
// dataset has one gray image of height x width pixels and one label (below 256, the largest
// + 1 in num_classes_seen) per example.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/idx_reader.h"
#include "tests/fuzz/fuzz_support.h"

namespace dgqa::fuzz {
namespace {

void check_dataset(const Dataset& dataset) {
  const size_t examples = static_cast<size_t>(dataset.num_examples);
  if (dataset.channels != 1 || dataset.height <= 0 || dataset.width <= 0 ||
      dataset.labels.size() != examples ||
      dataset.pixels.size() != examples * static_cast<size_t>(dataset.image_bytes())) {
    finding("inconsistent IDX dataset: " + std::to_string(examples) + " examples, " +
            std::to_string(dataset.labels.size()) + " labels, " +
            std::to_string(dataset.pixels.size()) + " pixel bytes");
  }
  int32_t largest = -1;
  for (int32_t label : dataset.labels) largest = std::max(largest, label);
  if (largest > 255 || dataset.num_classes_seen != largest + 1) {
    finding("IDX labels up to " + std::to_string(largest) + ", num_classes_seen " +
            std::to_string(dataset.num_classes_seen));
  }
}

}  // namespace
}  // namespace dgqa::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dgqa::fuzz;
  if (size < 4) return 0;
  const size_t declared =
      size_t{data[0]} << 24 | size_t{data[1]} << 16 | size_t{data[2]} << 8 | size_t{data[3]};
  const size_t images_size = std::min(declared, size - 4);
  const std::string images = write_scratch_file("images-idx3-ubyte", data + 4, images_size);
  const std::string labels =
      write_scratch_file("labels-idx1-ubyte", data + 4 + images_size, size - 4 - images_size);
  // Every message names the field, then the path; the path is the scratch directory's.
  reads_or_refuses(scratch_dir(), [&] {
    check_dataset(dgqa::read_idx_dataset(images, labels, "data.train_images", "data.train_labels"));
  });
  return 0;
}
