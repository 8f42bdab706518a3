// The model's Reducer (model/reducer.h) for a data-parallel job: how each layer's key norms are
// summed over the ranks (docs/design.md §5.3).
//
// Two paths, chosen from the config by key_norm_path:
//   - device: on the cuda backend with dist.backend NCCL, the norms are summed in device memory
//     by NCCL, on the NCCL communicator and stream that carry the gradient buckets, ordered after
//     the kernel that computed them by an event, then copied to the host once;
//   - host: everywhere else the norms are copied to the host and summed by the Communicator
//     (MPI; nothing with one rank).
// Either way every rank ends with the same sums, so the same allocation and, for DGQA, the same
// cache: the cache is computed from the sums and needs no collective of its own.
#pragma once

#include <cstdint>
#include <memory>

#include "comm/buffer_all_reduce.h"
#include "comm/communicator.h"
#include "kernels/backend.h"
#include "model/reducer.h"
#include "trainer/gradient_sync.h"

namespace dgqa {

enum class KeyNormPath { kHost, kDevice };

// The device path exactly when the gradients go through NCCL (GradientSyncOptions::nccl).
KeyNormPath key_norm_path(const GradientSyncOptions& options);

class KeyNormReducer : public Reducer {
 public:
  // Sums on the path of `options` (key_norm_path). On the device path the sums go through
  // `shared_nccl_sum` (the gradients' NCCL all-reduce, GradientSync::nccl_sum) when given, else
  // through an NCCL communicator of the reducer's own (dgqa eval, which sums no gradients).
  // `what` names the collective in errors and timeouts.
  KeyNormReducer(Communicator& comm, const GradientSyncOptions& options,
                 BufferAllReduce* shared_nccl_sum, const char* what);

  void sum_to_host(Backend& backend, float* values, int count, float* host_sum) override;

  KeyNormPath path() const { return device_sum_ ? KeyNormPath::kDevice : KeyNormPath::kHost; }
  // "NCCL", "MPI", or "none" (one rank on the host path), for the log.
  const char* method() const;

  // The sums since construction or reset_totals(), and the seconds spent in them (the copy to
  // the host included): `dgqa bench --profile` prints them per step.
  struct Totals {
    int64_t calls = 0;
    double seconds = 0;
  };
  const Totals& totals() const { return totals_; }
  void reset_totals() { totals_ = Totals(); }

 private:
  Communicator& comm_;
  std::unique_ptr<BufferAllReduce> owned_sum_;  // when no NCCL sum was shared
  BufferAllReduce* device_sum_ = nullptr;       // null on the host path
  const char* what_;
  Totals totals_;
};

}  // namespace dgqa
