// The examples of a dataset held whole in memory (IDX, CIFAR) as the loader reads them:
// through the stored formats' own transform (random crop with padding, flip, bilinear
// resize), or, when asked for, through the JPEG/PNG image pipeline.
#pragma once

#include <memory>
#include <optional>

#include "data/augmentation.h"
#include "data/dataset.h"
#include "data/example_source.h"
#include "data/image_pipeline.h"
#include "data/transforms.h"

namespace dgqa {

struct StoredSourceOptions {
  bool train = false;  // augment, keyed by seed
  uint64_t seed = 0;
  TransformOptions transform;
  AugmentOptions augment;  // applies in training only
  // Given: the image pipeline replaces transform and augment.
  std::optional<ImagePipelineOptions> pipeline;
};

class StoredImageSource : public ExampleSource {
 public:
  // Throws InputError for options that do not fit the dataset.
  StoredImageSource(Dataset dataset, const StoredSourceOptions& options);

  int64_t num_examples() const override { return dataset_.num_examples; }
  int64_t input_floats() const override;
  std::string description() const override;
  LoadedExample load(int64_t example, int64_t epoch, float* out) const override;

  const Dataset& dataset() const { return dataset_; }

 private:
  Dataset dataset_;
  bool train_;
  ImageTransform transform_;
  RandomAugmentation augmentation_;
  std::unique_ptr<ImagePipeline> pipeline_;
};

// Example `example` of a stored dataset as an 8-bit HWC image.
Image stored_image(const Dataset& dataset, int64_t example);

}  // namespace dgqa
