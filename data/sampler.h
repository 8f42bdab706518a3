// Which examples each rank takes in each batch (docs/design.md §5): a deterministic
// per-epoch order shared by all ranks, cut into global batches, each dealt out across ranks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dgqa {

struct SamplerOptions {
  // Training shuffles each epoch and drops an incomplete last batch; evaluation keeps the
  // dataset order and a partial last batch.
  bool train = true;
  uint64_t seed = 0;
  int global_batch_size = 128;
  std::string batch_size_field = "train.global_batch_size";  // names the size in errors
  int rank = 0;
  int world_size = 1;
};

// A permutation of [0, num_examples) that depends only on (seed, epoch): a Fisher-Yates
// shuffle whose draws come from Philox.
std::vector<int64_t> epoch_permutation(int64_t num_examples, uint64_t seed, int64_t epoch);

// The positions rank, rank + world_size, rank + 2 * world_size, ... of `global_batch`.
std::vector<int64_t> rank_share(const std::vector<int64_t>& global_batch, int rank, int world_size);

class DistributedSampler {
 public:
  // Throws InputError naming options.batch_size_field when the batch size is not positive
  // or, in training, is not divisible by the world size or exceeds the dataset.
  DistributedSampler(int64_t num_examples, const SamplerOptions& options);

  // Training: num_examples / global_batch_size; evaluation: rounded up.
  int64_t batches_per_epoch() const;

  // Fixes the order of the examples for `epoch`; call before the batch functions.
  void set_epoch(int64_t epoch);

  // The example indices of global batch `batch` (0 <= batch < batches_per_epoch()).
  std::vector<int64_t> global_batch(int64_t batch) const;

  // This rank's share of global batch `batch`. In evaluation a rank may get fewer examples
  // than others (or none) in the last batch, or whenever the batch size is not divisible by
  // the world size; every rank still sees the same number of batches.
  std::vector<int64_t> rank_batch(int64_t batch) const;

 private:
  int64_t num_examples_;
  SamplerOptions options_;
  std::vector<int64_t> order_;  // the examples of the current epoch, in order
};

}  // namespace dgqa
