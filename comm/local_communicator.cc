#include "comm/local_communicator.h"

#include <cstring>

#include "comm/collective_args.h"

namespace dgqa {
namespace {

class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(const RankInfo& info) : info_(info) {}

  const RankInfo& info() const override { return info_; }

  // The sum over one rank is the data itself.
  void all_reduce_sum(float* data, int64_t count, const char* what) override {
    check_collective_count(count, data, what);
  }
  std::unique_ptr<PendingCollective> all_reduce_sum_async(float* data, int64_t count,
                                                          const char* what) override {
    check_collective_count(count, data, what);
    return std::make_unique<PendingCollective>();
  }
  std::unique_ptr<PendingCollective> reduce_sum_async(float* data, int64_t count, int root,
                                                      const char* what) override {
    check_collective_count(count, data, what);
    check_collective_root(root, 1, what);
    return std::make_unique<PendingCollective>();
  }
  void all_gather_ranges(float* data, const std::vector<int64_t>& bounds,
                         const char* what) override {
    check_collective_ranges(bounds, 1, data, what);
  }
  void wait(PendingCollective& pending) override {}
  bool test(PendingCollective& pending) override { return true; }

  void broadcast(void* data, int64_t bytes, int root, const char* what) override {
    check_collective_count(bytes, data, what);
    check_collective_root(root, 1, what);
  }
  void barrier(const char* what) override {}
  void send_receive(const void* send, void* receive, int64_t bytes, int peer,
                    const char* what) override {
    check_collective_count(bytes, send, what);
    check_collective_count(bytes, receive, what);
    check_collective_root(peer, 1, what);
    if (bytes > 0) std::memcpy(receive, send, bytes);
  }
  std::vector<uint64_t> all_gather(uint64_t value, const char* what) override { return {value}; }

 private:
  RankInfo info_;
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator(const RankInfo& info) {
  return std::make_unique<LocalCommunicator>(info);
}

}  // namespace dgqa
