#include "trainer/gradient_sync.h"

#include <algorithm>
#include <chrono>

namespace dgqa {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

GradientSync::GradientSync(Communicator& comm, float* grads, int64_t size, double bucket_mb)
    : comm_(comm), grads_(grads), size_(size) {
  const int64_t bucket = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * (1 << 20) / 4));
  for (int64_t end = size; end > 0; end -= bucket)
    bucket_begin_.push_back(std::max<int64_t>(0, end - bucket));
}

void GradientSync::ready(int64_t first_ready) {
  if (comm_.world_size() == 1 || (!overlap_ && first_ready > 0)) return;
  for (auto& pending : pending_) comm_.test(*pending);  // progress the buckets in flight
  while (started_ < num_buckets() && bucket_begin_[started_] >= first_ready) {
    const int64_t begin = bucket_begin_[started_];
    const int64_t end = started_ == 0 ? size_ : bucket_begin_[started_ - 1];
    pending_.push_back(
        comm_.all_reduce_sum_async(grads_ + begin, end - begin, "gradient all-reduce"));
    ++started_;
  }
}

double GradientSync::finish() {
  if (comm_.world_size() == 1) return 0;
  ready(0);
  const double start = now_seconds();
  for (auto& pending : pending_) comm_.wait(*pending);
  pending_.clear();
  started_ = 0;
  return now_seconds() - start;
}

}  // namespace dgqa
