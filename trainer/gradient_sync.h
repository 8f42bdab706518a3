// Sums the gradients of all ranks while backward is still running (design.md section 5).
//
// The flat gradient buffer is cut into buckets from its end, the order in which backward
// finishes gradients. As soon as backward reports that a bucket is complete, its all-reduce
// starts; the optimizer waits for all of them in finish(). With a single rank nothing happens.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/communicator.h"

namespace dgqa {

class GradientSync {
 public:
  GradientSync(Communicator& comm, float* grads, int64_t size, double bucket_mb);

  // Call from the model's GradientsReady callback: starts every bucket inside [first_ready, end).
  void ready(int64_t first_ready);

  // Starts what is left and waits for every bucket. Returns the seconds spent waiting here:
  // the communication that backward did not hide.
  double finish();

  // With overlap off, ready() starts nothing and every bucket starts in finish(): the
  // trainer does this on a few steps to measure how much waiting the overlap saves.
  void set_overlap(bool overlap) { overlap_ = overlap; }

  int num_buckets() const { return static_cast<int>(bucket_begin_.size()); }

 private:
  Communicator& comm_;
  float* grads_;
  int64_t size_;
  std::vector<int64_t> bucket_begin_;  // bucket i covers [begin[i], begin[i-1]) (i=0: to size)
  std::vector<std::unique_ptr<PendingCollective>> pending_;
  int started_ = 0;  // buckets started in this step, from the end of the buffer
  bool overlap_ = true;
};

}  // namespace dgqa
