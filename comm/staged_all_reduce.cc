#include "comm/staged_all_reduce.h"

#include <stdexcept>
#include <string>

#include "comm/collective_args.h"

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

float* StagedAllReduce::host_image(const float* data, int64_t count, const char* what) {
  const int64_t offset = data - base_;
  if (offset < 0 || count < 0 || offset + count > static_cast<int64_t>(host_.size())) {
    throw std::logic_error(std::string(what) + ": the bucket lies outside the staged buffer");
  }
  return host_.data() + offset;
}

template <typename Collective>
std::unique_ptr<PendingCollective> StagedAllReduce::start_staged(float* data, int64_t count,
                                                                 const char* what,
                                                                 const Collective& collective) {
  float* host = host_image(data, count, what);
  backend_.copy_to_host(host, data, count * sizeof(float));
  auto pending = std::make_unique<StagedPending>();
  pending->host_pending = collective(host);
  pending->device = data;
  pending->host_data = host;
  pending->count = count;
  return pending;
}

std::unique_ptr<PendingCollective> StagedAllReduce::start(float* data, int64_t count,
                                                          const char* what) {
  return start_staged(data, count, what,
                      [&](float* host) { return comm_.all_reduce_sum_async(host, count, what); });
}

std::unique_ptr<PendingCollective> StagedAllReduce::start_reduce(float* data, int64_t count,
                                                                 int root, const char* what) {
  return start_staged(data, count, what,
                      [&](float* host) { return comm_.reduce_sum_async(host, count, root, what); });
}

void StagedAllReduce::all_gather_ranges(float* data, const std::vector<int64_t>& bounds,
                                        const char* what) {
  check_collective_ranges(bounds, comm_.world_size(), data, what);
  if (bounds.back() > static_cast<int64_t>(host_.size())) {
    throw std::logic_error(std::string(what) + ": the ranges do not fit the staging buffer");
  }
  float* host = host_.data();
  const int64_t mine = bounds[comm_.rank()];
  const int64_t count = bounds[comm_.rank() + 1] - mine;
  backend_.copy_to_host(host + mine, data + mine, count * sizeof(float));
  comm_.all_gather_ranges(host, bounds, what);
  backend_.copy_to_device(data + bounds.front(), host + bounds.front(),
                          (bounds.back() - bounds.front()) * sizeof(float));
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
