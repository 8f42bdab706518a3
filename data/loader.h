// Produces this rank's batches of model-ready images, epoch by epoch, preparing the next
// ones on worker threads while the trainer computes.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "data/batch.h"
#include "data/example_source.h"
#include "data/prefetcher.h"
#include "data/sampler.h"

namespace dgqa {

struct LoaderOptions {
  SamplerOptions sampler;
  int prefetch_batches = 2;  // batches prepared ahead (data.prefetch_batches)
  int workers = 1;           // threads preparing them (data.workers); 0 = on the caller's thread
};

class BatchLoader {
 public:
  // Keeps a reference to `source`, which must outlive the loader. Throws InputError for
  // options that do not fit the source (see DistributedSampler) and for negative counts.
  BatchLoader(const ExampleSource& source, const LoaderOptions& options);

  int64_t batches_per_epoch() const { return sampler_.batches_per_epoch(); }

  // Begins `epoch` at global batch `first_batch` (a resumed run continues mid-epoch),
  // abandoning whatever was prepared before.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);

  // Moves the next batch of the epoch into *out; false when the epoch is over. Rethrows an
  // exception raised while preparing that batch. The batches are the same whatever the
  // number of workers and the prefetch depth.
  bool next(Batch* out);

 private:
  Batch plan_batch(int64_t index_in_epoch) const;
  void fill_slot(Batch* batch, int slot) const;

  // The image buffers of batches the consumer has finished with, for the next batches: a
  // batch of ViT-L inputs is tens of MiB, and fresh memory costs page faults and clearing.
  static constexpr size_t kMaxSpareBuffers = 2;
  mutable std::mutex spare_mutex_;
  mutable std::vector<std::vector<float>> spare_images_;

  const ExampleSource& source_;
  DistributedSampler sampler_;
  bool epoch_started_ = false;
  int64_t epoch_ = 0;
  Prefetcher prefetcher_;  // last: its threads stop before the members they read go away
};

}  // namespace dgqa
