// How the model sums statistics over data-parallel ranks without knowing MPI or NCCL: the
// trainer passes a Reducer in; the model calls it on the key norms (docs/design.md §3.1, §5).
#pragma once

namespace dgqa {

class Reducer {
 public:
  virtual ~Reducer() = default;
  // Replaces values[0..count) by their sum over all ranks (host memory).
  virtual void sum(float* values, int count) = 0;
};

// A single process: the sum over one rank is the value itself.
class LocalReducer : public Reducer {
 public:
  void sum(float* /*values*/, int /*count*/) override {}
};

}  // namespace dgqa
