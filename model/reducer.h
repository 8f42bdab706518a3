// How the model sums statistics over data-parallel ranks without knowing MPI or NCCL: the
// trainer passes a Reducer in; the model calls it on each layer's key norms, which its backend
// has just computed in its own memory (docs/design.md §3.1, §5.2). The Reducer decides where the
// sum happens: on the host after a copy (MPI), or in device memory before it (NCCL).
#pragma once

#include "kernels/backend.h"

namespace dgqa {

class Reducer {
 public:
  virtual ~Reducer() = default;
  // Sums values[0..count), which live in `backend`'s memory (device memory on a GPU), over all
  // ranks, and writes the sum to host_sum[0..count) (host memory). values may be overwritten.
  virtual void sum_to_host(Backend& backend, float* values, int count, float* host_sum) = 0;
};

// A single process: the sum over one rank is the values themselves.
class LocalReducer : public Reducer {
 public:
  void sum_to_host(Backend& backend, float* values, int count, float* host_sum) override {
    backend.copy_to_host(host_sum, values, static_cast<size_t>(count) * sizeof(float));
  }
};

}  // namespace dgqa
