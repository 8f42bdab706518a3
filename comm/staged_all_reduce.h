// Gradient sums over MPI for a backend whose memory the host cannot read (dist.backend: MPI
// with train.backend "cuda"): each bucket is copied to a host buffer, summed there by the
// Communicator, and copied back when waited for. The copies wait for the device's queued work,
// so backward and communication overlap less than with NCCL; this path exists so that several
// ranks can share one GPU (NCCL refuses two ranks on one device) and for machines without NCCL.
#pragma once

#include <vector>

#include "comm/buffer_all_reduce.h"
#include "kernels/backend.h"

namespace dgqa {

class StagedAllReduce : public BufferAllReduce {
 public:
  // Buckets must lie inside the device buffer [base, base + size); a gather's buffer (any, such
  // as the parameters) must hold at most size floats, staged through the same host image.
  StagedAllReduce(Communicator& comm, Backend& backend, const float* base, int64_t size);

  std::unique_ptr<PendingCollective> start(float* data, int64_t count, const char* what) override;
  bool test(PendingCollective& pending) override;
  void wait(PendingCollective& pending) override;
  std::unique_ptr<PendingCollective> start_reduce(float* data, int64_t count, int root,
                                                  const char* what) override;
  void all_gather_ranges(float* data, const std::vector<int64_t>& bounds,
                         const char* what) override;

 private:
  // Copies data[0..count) into the host image and starts `collective` on the copy.
  template <typename Collective>
  std::unique_ptr<PendingCollective> start_staged(float* data, int64_t count, const char* what,
                                                  const Collective& collective);
  float* host_image(const float* data, int64_t count, const char* what);

  Communicator& comm_;
  Backend& backend_;
  const float* base_;
  std::vector<float> host_;  // the host image of [base, base + size), allocated once
};

}  // namespace dgqa
