// Produces this rank's batches of model-ready images, epoch by epoch, preparing the next
// ones on a background thread while the trainer computes.
#pragma once

#include <cstdint>

#include "data/augmentation.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/prefetcher.h"
#include "data/sampler.h"
#include "data/transforms.h"

namespace dgqa {

struct LoaderOptions {
  SamplerOptions sampler;  // sampler.train also turns augmentation on, keyed by sampler.seed
  TransformOptions transform;
  AugmentOptions augment;    // applies in training only
  int prefetch_batches = 2;  // batches prepared ahead on a background thread; 0 = no thread
};

class BatchLoader {
 public:
  // Keeps a reference to `dataset`, which must outlive the loader. Throws InputError for
  // options that do not fit the dataset (see DistributedSampler, ImageTransform,
  // RandomAugmentation) and for a negative prefetch_batches.
  BatchLoader(const Dataset& dataset, const LoaderOptions& options);

  int64_t batches_per_epoch() const { return sampler_.batches_per_epoch(); }

  // Begins `epoch` at global batch `first_batch` (a resumed run continues mid-epoch),
  // abandoning whatever was prepared before.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);

  // Moves the next batch of the epoch into *out; false when the epoch is over. Rethrows an
  // exception raised while preparing that batch. The batches are the same with or without
  // prefetching.
  bool next(Batch* out);

 private:
  Batch make_batch(int64_t index_in_epoch) const;

  const Dataset& dataset_;
  bool train_;
  DistributedSampler sampler_;
  ImageTransform transform_;
  RandomAugmentation augmentation_;
  bool epoch_started_ = false;
  int64_t epoch_ = 0;
  Prefetcher prefetcher_;  // last: its thread stops before the members it reads go away
};

}  // namespace dgqa
