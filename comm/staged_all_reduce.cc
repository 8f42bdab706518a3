#include "comm/staged_all_reduce.h"

#include <stdexcept>
#include <string>

namespace dgqa {
namespace {

// The Communicator's collective on the host copy, and where its result goes back to.
struct StagedPending : public PendingCollective {
  std::unique_ptr<PendingCollective> host_pending;
  float* device = nullptr;
  const float* host_data = nullptr;
  int64_t count = 0;
};

StagedPending& staged(PendingCollective& pending) {
  auto* result = dynamic_cast<StagedPending*>(&pending);
  if (result == nullptr) throw std::logic_error("StagedAllReduce: a collective it did not start");
  return *result;
}

}  // namespace

StagedAllReduce::StagedAllReduce(Communicator& comm, Backend& backend, const float* base,
                                 int64_t size)
    : comm_(comm), backend_(backend), base_(base), host_(static_cast<size_t>(size)) {}

std::unique_ptr<PendingCollective> StagedAllReduce::start(float* data, int64_t count,
                                                          const char* what) {
  const int64_t offset = data - base_;
  if (offset < 0 || count < 0 || offset + count > static_cast<int64_t>(host_.size())) {
    throw std::logic_error(std::string(what) + ": the bucket lies outside the staged buffer");
  }
  float* host = host_.data() + offset;
  backend_.copy_to_host(host, data, count * sizeof(float));
  auto pending = std::make_unique<StagedPending>();
  pending->host_pending = comm_.all_reduce_sum_async(host, count, what);
  pending->device = data;
  pending->host_data = host;
  pending->count = count;
  return pending;
}

bool StagedAllReduce::test(PendingCollective& pending) {
  return comm_.test(*staged(pending).host_pending);
}

void StagedAllReduce::wait(PendingCollective& pending) {
  StagedPending& bucket = staged(pending);
  comm_.wait(*bucket.host_pending);
  backend_.copy_to_device(bucket.device, bucket.host_data, bucket.count * sizeof(float));
}

}  // namespace dgqa
