// Sums gradient buckets over the ranks, asynchronously, wherever the compute backend keeps
// them: GradientSync (trainer/gradient_sync.h) starts one per bucket and waits for them all.
// Under ZeRO-1 (docs/design.md §5.11) it sums each piece of a bucket to the rank that owns it
// instead, and gathers the parameters' shards after the optimizer.
//
// Three implementations, chosen by the trainer (dist.backend):
//   - HostAllReduce: host memory (the CPU backend), straight through the Communicator;
//   - StagedAllReduce (comm/staged_all_reduce.h): device memory over MPI, copied through a
//     host buffer; this is what lets several ranks share one GPU;
//   - NcclAllReduce (comm/cuda/nccl_all_reduce.h): device memory over NCCL, one rank per GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/communicator.h"

namespace dgqa {

class BufferAllReduce {
 public:
  virtual ~BufferAllReduce() = default;

  // Starts replacing data[0..count) by its sum over the ranks. `what` names it in errors.
  virtual std::unique_ptr<PendingCollective> start(float* data, int64_t count,
                                                   const char* what) = 0;
  // Lets a started sum progress without blocking; true once it has completed.
  virtual bool test(PendingCollective& pending) = 0;
  // Returns when the sum is in data (for a device, when work queued after it will see it).
  virtual void wait(PendingCollective& pending) = 0;

  // Starts summing data[0..count) into rank `root`'s data only; test() and wait() as for start().
  virtual std::unique_ptr<PendingCollective> start_reduce(float* data, int64_t count, int root,
                                                          const char* what) = 0;
  // Communicator::all_gather_ranges on this memory; returns when work queued after it sees it.
  virtual void all_gather_ranges(float* data, const std::vector<int64_t>& bounds,
                                 const char* what) = 0;
};

// Host memory: the Communicator's own non-blocking all-reduce.
class HostAllReduce : public BufferAllReduce {
 public:
  explicit HostAllReduce(Communicator& comm) : comm_(comm) {}
  std::unique_ptr<PendingCollective> start(float* data, int64_t count, const char* what) override {
    return comm_.all_reduce_sum_async(data, count, what);
  }
  bool test(PendingCollective& pending) override { return comm_.test(pending); }
  void wait(PendingCollective& pending) override { comm_.wait(pending); }
  std::unique_ptr<PendingCollective> start_reduce(float* data, int64_t count, int root,
                                                  const char* what) override {
    return comm_.reduce_sum_async(data, count, root, what);
  }
  void all_gather_ranges(float* data, const std::vector<int64_t>& bounds,
                         const char* what) override {
    comm_.all_gather_ranges(data, bounds, what);
  }

 private:
  Communicator& comm_;
};

}  // namespace dgqa
