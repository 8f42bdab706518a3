// Sums the gradients of all ranks while backward is still running (docs/design.md §5).
//
// The flat gradient buffer is cut into buckets from its end, the order in which backward
// finishes gradients. As soon as backward reports that a bucket is complete, its all-reduce
// starts; the optimizer waits for all of them in finish(). The sums go through a
// BufferAllReduce (comm/buffer_all_reduce.h) that suits where the backend keeps the gradients:
// the Communicator itself for host memory, NCCL or host-staged MPI for a GPU. With a single
// rank nothing happens, unless NCCL was asked for by name (then its path runs, as a check of it).
//
// Under ZeRO-1 (dist.zero_stage 1, docs/design.md §5.11) a bucket is not all-reduced: each of its
// pieces inside one rank's shard (trainer/zero_shards.h) is summed to that rank only, and after
// the optimizer gather_parameters() copies every rank's updated shard to all ranks.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/buffer_all_reduce.h"
#include "comm/communicator.h"
#include "kernels/backend.h"
#include "trainer/config.h"

namespace dgqa {

struct GradientSyncOptions {
  double bucket_mb = 1;    // dist.bucket_mb
  bool nccl = false;       // dist.backend resolved: NCCL (cuda only) or MPI
  double timeout_s = 120;  // dist.timeout_s, for NCCL's waits (MPI's own come with comm)
  bool zero = false;       // dist.zero_stage 1
};

// The options of the config's dist section for a job of world_size ranks.
GradientSyncOptions gradient_sync_options(const config::Config& config, int world_size);

// An NCCL all-reduce over the ranks of `comm` (comm/cuda/nccl_all_reduce.h). Throws
// std::logic_error in a build without CUDA, where the config refuses NCCL before this.
std::unique_ptr<BufferAllReduce> make_nccl_sum(Communicator& comm, double timeout_s);

class GradientSync {
 public:
  // grads: the backend's flat gradient buffer of `size` floats.
  GradientSync(Communicator& comm, Backend& backend, float* grads, int64_t size,
               const GradientSyncOptions& options);

  // Call from the model's GradientsReady callback: starts every bucket inside [first_ready, end).
  void ready(int64_t first_ready);

  // Starts what is left and waits for every bucket. Returns the seconds spent waiting here:
  // the communication that backward did not hide.
  double finish();

  // ZeRO-1: the shards of the buffer, rank r's being [bounds[r], bounds[r + 1]); one shard of the
  // whole buffer without ZeRO.
  const std::vector<int64_t>& shard_bounds() const { return shard_bounds_; }
  // ZeRO-1: after each rank updated its shard of params (a buffer of the gradients' size), gives
  // every rank the others'. Does nothing without ZeRO or with one rank.
  void gather_parameters(float* params);

  // With overlap off, ready() starts nothing and every bucket starts in finish(): the
  // trainer does this on a few steps to measure how much waiting the overlap saves.
  void set_overlap(bool overlap) { overlap_ = overlap; }

  int num_buckets() const { return static_cast<int>(bucket_begin_.size()); }
  // "none" (one rank), "MPI", "MPI through host memory" or "NCCL", for the log.
  const char* method() const { return method_; }
  // The NCCL all-reduce of the gradients, for the key norms to share; null on other paths.
  BufferAllReduce* nccl_sum() { return nccl_ ? all_reduce_.get() : nullptr; }

 private:
  // Starts the sums of grads_[begin, end): one all-reduce, or under ZeRO one reduce per shard.
  void start_bucket(int64_t begin, int64_t end);

  Backend& backend_;
  std::unique_ptr<BufferAllReduce> all_reduce_;  // null: nothing to sum
  const char* method_ = "none";
  bool nccl_ = false;
  float* grads_;
  int64_t size_;
  bool zero_;
  std::vector<int64_t> shard_bounds_;
  std::vector<int64_t> bucket_begin_;  // bucket i covers [begin[i], begin[i-1]) (i=0: to size)
  std::vector<std::unique_ptr<PendingCollective>> pending_;
  int started_ = 0;  // buckets started in this step, from the end of the buffer
  bool overlap_ = true;
};

}  // namespace dgqa
