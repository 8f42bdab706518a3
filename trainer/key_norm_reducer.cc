#include "trainer/key_norm_reducer.h"

#include "common/stopwatch.h"

namespace dgqa {

KeyNormPath key_norm_path(const GradientSyncOptions& options) {
  return options.nccl ? KeyNormPath::kDevice : KeyNormPath::kHost;
}

KeyNormReducer::KeyNormReducer(Communicator& comm, const GradientSyncOptions& options,
                               BufferAllReduce* shared_nccl_sum, const char* what)
    : comm_(comm), what_(what) {
  if (key_norm_path(options) == KeyNormPath::kHost) return;
  if (shared_nccl_sum == nullptr) owned_sum_ = make_nccl_sum(comm, options.timeout_s);
  device_sum_ = shared_nccl_sum != nullptr ? shared_nccl_sum : owned_sum_.get();
}

const char* KeyNormReducer::method() const {
  if (device_sum_ != nullptr) return "NCCL";
  return comm_.world_size() > 1 ? "MPI" : "none";
}

void KeyNormReducer::sum_to_host(Backend& backend, float* values, int count, float* host_sum) {
  const Stopwatch watch;
  const size_t bytes = static_cast<size_t>(count) * sizeof(float);
  if (device_sum_ != nullptr) {
    // The sum is queued after the kernel that wrote values; the copy waits for the sum.
    const std::unique_ptr<PendingCollective> pending = device_sum_->start(values, count, what_);
    device_sum_->wait(*pending);
    backend.copy_to_host(host_sum, values, bytes);
  } else {
    backend.copy_to_host(host_sum, values, bytes);
    comm_.all_reduce_sum(host_sum, count, what_);
  }
  ++totals_.calls;
  totals_.seconds += watch.seconds();
}

}  // namespace dgqa
