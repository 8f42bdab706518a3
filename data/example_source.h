// One split of a dataset as the loader sees it: a number of examples, each turned on demand
// into the model's float input and its label. Stored datasets (IDX, CIFAR: whole in memory)
// and encoded ones (JPEG/PNG files, tar shards: decoded per example) both implement it.
#pragma once

#include <cstdint>
#include <string>

namespace dgqa {

// What load() delivered: the label, and whether the example's own image was unreadable and
// another one stands in for it (data.bad_image: SKIP).
struct LoadedExample {
  int32_t label = 0;
  bool replaced = false;
};

class ExampleSource {
 public:
  virtual ~ExampleSource() = default;

  virtual int64_t num_examples() const = 0;
  // The floats of one model input: channels x image_size x image_size.
  virtual int64_t input_floats() const = 0;
  // One line on what the split holds, for reports ("IMAGE_FOLDER /data/train: 1000 images").
  virtual std::string description() const = 0;

  // Writes the model input of `example` (CHW, normalised) to `out`. A training split draws its
  // augmentation from the stream keyed by (seed, epoch, example), so the result depends on
  // nothing else. Safe to call from several threads at once. Throws InputError naming the
  // file at fault.
  virtual LoadedExample load(int64_t example, int64_t epoch, float* out) const = 0;
};

}  // namespace dgqa
