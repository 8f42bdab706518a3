#include "data/loader.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"

namespace dgqa {

BatchLoader::BatchLoader(const ExampleSource& source, const LoaderOptions& options)
    : source_(source),
      sampler_(source.num_examples(), options.sampler),
      prefetcher_([this](int64_t index) { return plan_batch(index); },
                  [this](Batch* batch, int slot) { fill_slot(batch, slot); },
                  options.prefetch_batches, options.workers) {
  if (options.prefetch_batches < 0) {
    throw InputError("data.prefetch_batches: " + std::to_string(options.prefetch_batches) +
                     " must not be negative");
  }
  if (options.workers < 0) {
    throw InputError("data.workers: " + std::to_string(options.workers) + " must not be negative");
  }
}

void BatchLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  if (first_batch < 0 || first_batch > batches_per_epoch()) {
    throw std::out_of_range("BatchLoader: first batch " + std::to_string(first_batch) +
                            " is outside the epoch's " + std::to_string(batches_per_epoch()));
  }
  prefetcher_.stop();  // the previous epoch's workers read the sampler and epoch_ changed below
  sampler_.set_epoch(epoch);
  epoch_ = epoch;
  epoch_started_ = true;
  prefetcher_.start(first_batch, batches_per_epoch());
}

bool BatchLoader::next(Batch* out) {
  if (!epoch_started_) throw std::logic_error("BatchLoader: next() before start_epoch()");
  if (prefetcher_.finished()) return false;
  if (out->images.capacity() > 0) {  // the consumer is done with it: reuse its buffer
    std::lock_guard<std::mutex> lock(spare_mutex_);
    if (spare_images_.size() < kMaxSpareBuffers) spare_images_.push_back(std::move(out->images));
  }
  *out = prefetcher_.take();
  return true;
}

Batch BatchLoader::plan_batch(int64_t index_in_epoch) const {
  Batch batch;
  batch.examples = sampler_.rank_batch(index_in_epoch);
  batch.size = static_cast<int>(batch.examples.size());
  batch.epoch = epoch_;
  batch.index_in_epoch = index_in_epoch;
  {
    // A recycled buffer of the same size is not cleared again: every slot is overwritten.
    std::lock_guard<std::mutex> lock(spare_mutex_);
    if (!spare_images_.empty()) {
      batch.images = std::move(spare_images_.back());
      spare_images_.pop_back();
    }
  }
  batch.images.resize(batch.examples.size() * source_.input_floats());
  batch.labels.resize(batch.examples.size());
  batch.replaced.assign(batch.examples.size(), 0);
  return batch;
}

void BatchLoader::fill_slot(Batch* batch, int slot) const {
  const LoadedExample loaded = source_.load(batch->examples[slot], batch->epoch,
                                            batch->images.data() + slot * source_.input_floats());
  batch->labels[slot] = loaded.label;
  batch->replaced[slot] = loaded.replaced;
}

}  // namespace dgqa
