#include "data/stored_source.h"

#include <string>
#include <utility>

namespace dgqa {

StoredImageSource::StoredImageSource(Dataset dataset, const StoredSourceOptions& options)
    : dataset_(std::move(dataset)),
      train_(options.train),
      transform_(options.transform, dataset_.channels, dataset_.height, dataset_.width),
      augmentation_(options.augment, options.seed) {
  if (options.pipeline) pipeline_ = std::make_unique<ImagePipeline>(*options.pipeline);
}

int64_t StoredImageSource::input_floats() const {
  return pipeline_ ? pipeline_->output_floats() : transform_.output_floats();
}

std::string StoredImageSource::description() const {
  return dataset_.label_source + ": " + std::to_string(dataset_.num_examples) + " images of " +
         std::to_string(dataset_.channels) + "x" + std::to_string(dataset_.height) + "x" +
         std::to_string(dataset_.width);
}

LoadedExample StoredImageSource::load(int64_t example, int64_t epoch, float* out) const {
  if (pipeline_) {
    pipeline_->apply_decoded(stored_image(dataset_, example), epoch, example, out);
  } else {
    const Augmentation augmentation = train_ ? augmentation_.draw(epoch, example) : Augmentation{};
    transform_.apply(dataset_.image(example), augmentation, out);
  }
  return {dataset_.labels[example], false};
}

Image stored_image(const Dataset& dataset, int64_t example) {
  Image image(dataset.width, dataset.height, dataset.channels);
  const uint8_t* chw = dataset.image(example);
  const int64_t plane = int64_t{dataset.width} * dataset.height;
  for (int64_t i = 0; i < plane; ++i) {
    for (int c = 0; c < dataset.channels; ++c) {
      image.pixels[i * dataset.channels + c] = chw[c * plane + i];
    }
  }
  return image;
}

}  // namespace dgqa
