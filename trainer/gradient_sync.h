// Sums the gradients of all ranks while backward is still running (docs/design.md §5).
//
// The flat gradient buffer is cut into buckets from its end, the order in which backward
// finishes gradients. As soon as backward reports that a bucket is complete, its all-reduce
// starts; the optimizer waits for all of them in finish(). The sums go through a
// BufferAllReduce (comm/buffer_all_reduce.h) that suits where the backend keeps the gradients:
// the Communicator itself for host memory, NCCL or host-staged MPI for a GPU. With a single
// rank nothing happens, unless NCCL was asked for by name (then its path runs, as a check of it).
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

  // With overlap off, ready() starts nothing and every bucket starts in finish(): the
  // trainer does this on a few steps to measure how much waiting the overlap saves.
  void set_overlap(bool overlap) { overlap_ = overlap; }

  int num_buckets() const { return static_cast<int>(bucket_begin_.size()); }
  // "none" (one rank), "MPI", "MPI through host memory" or "NCCL", for the log.
  const char* method() const { return method_; }
  // The NCCL all-reduce of the gradients, for the key norms to share; null on other paths.
  BufferAllReduce* nccl_sum() { return nccl_ ? all_reduce_.get() : nullptr; }

 private:
  std::unique_ptr<BufferAllReduce> all_reduce_;  // null: nothing to sum
  const char* method_ = "none";
  bool nccl_ = false;
  float* grads_;
  int64_t size_;
  std::vector<int64_t> bucket_begin_;  // bucket i covers [begin[i], begin[i-1]) (i=0: to size)
  std::vector<std::unique_ptr<PendingCollective>> pending_;
  int started_ = 0;  // buckets started in this step, from the end of the buffer
  bool overlap_ = true;
};

}  // namespace dgqa
