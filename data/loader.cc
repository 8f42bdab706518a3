#include "data/loader.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"

namespace dgqa {

BatchLoader::BatchLoader(const Dataset& dataset, const LoaderOptions& options)
    : dataset_(dataset),
      train_(options.sampler.train),
      sampler_(dataset.num_examples, options.sampler),
      transform_(options.transform, dataset.channels, dataset.height, dataset.width),
      augmentation_(options.augment, options.sampler.seed),
      prefetcher_([this](int64_t index) { return make_batch(index); }, options.prefetch_batches) {
  if (options.prefetch_batches < 0) {
    throw InputError("data.prefetch_batches: " + std::to_string(options.prefetch_batches) +
                     " must not be negative");
  }
}

void BatchLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  if (first_batch < 0 || first_batch > batches_per_epoch()) {
    throw std::out_of_range("BatchLoader: first batch " + std::to_string(first_batch) +
                            " is outside the epoch's " + std::to_string(batches_per_epoch()));
  }
  prefetcher_.stop();  // the previous epoch's thread reads the sampler and epoch_ changed below
  sampler_.set_epoch(epoch);
  epoch_ = epoch;
  epoch_started_ = true;
  prefetcher_.start(first_batch, batches_per_epoch());
}

bool BatchLoader::next(Batch* out) {
  if (!epoch_started_) throw std::logic_error("BatchLoader: next() before start_epoch()");
  if (prefetcher_.finished()) return false;
  *out = prefetcher_.take();
  return true;
}

Batch BatchLoader::make_batch(int64_t index_in_epoch) const {
  const std::vector<int64_t> examples = sampler_.rank_batch(index_in_epoch);
  const int64_t image_floats = transform_.output_floats();
  Batch batch;
  batch.size = static_cast<int>(examples.size());
  batch.epoch = epoch_;
  batch.index_in_epoch = index_in_epoch;
  batch.images.resize(examples.size() * image_floats);
  batch.labels.resize(examples.size());
  batch.examples = examples;
  for (size_t i = 0; i < examples.size(); ++i) {
    const int64_t example = examples[i];
    const Augmentation augmentation = train_ ? augmentation_.draw(epoch_, example) : Augmentation{};
    transform_.apply(dataset_.image(example), augmentation, batch.images.data() + i * image_floats);
    batch.labels[i] = dataset_.labels[example];
  }
  return batch;
}

}  // namespace dgqa
