#include "comm/cuda/nccl_all_reduce.h"

#include <cuda_runtime.h>
#include <glog/logging.h>
#include <nccl.h>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "comm/wait_clock.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "kernels/cuda/cuda_context.h"

namespace dgqa {
namespace {

// Events for the ends of the sums, created once and reused: a step starts one sum per bucket,
// and creating events there would be work on every step.
class EventPool {
 public:
  EventPool() = default;
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;
  ~EventPool() {
    for (cudaEvent_t event : free_) cudaEventDestroy(event);
  }
  cudaEvent_t take() {
    if (free_.empty()) {
      cudaEvent_t event = nullptr;
      DGQA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
      return event;
    }
    const cudaEvent_t event = free_.back();
    free_.pop_back();
    return event;
  }
  void give_back(cudaEvent_t event) { free_.push_back(event); }

 private:
  std::vector<cudaEvent_t> free_;
};

// A started all-reduce: the event recorded on the NCCL stream after it (borrowed from the pool
// until the pending sum is destroyed), its number among the sums, and how long it was waited for.
class NcclPending : public PendingCollective {
 public:
  NcclPending(EventPool& pool, const char* operation, int64_t number)
      : what(operation), sequence(number), done(pool.take()), pool_(pool) {}
  ~NcclPending() override { pool_.give_back(done); }
  const char* what;
  const int64_t sequence;
  WaitClock waited;
  const cudaEvent_t done;
  bool complete = false;

 private:
  EventPool& pool_;
};

class NcclAllReduce : public BufferAllReduce {
 public:
  NcclAllReduce(Communicator& comm, double timeout_s) : comm_(comm), timeout_s_(timeout_s) {
    const int device = cuda::context().device;
    DGQA_CUDA_CHECK(cudaSetDevice(device));
    check_one_gpu_per_rank(device);
    // The stream and event first: from NCCL's initialisation on, every failure goes through
    // fail(), which aborts the communicator (the destructor does not run after a throw here).
    DGQA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    DGQA_CUDA_CHECK(cudaEventCreateWithFlags(&produced_, cudaEventDisableTiming));
    ncclUniqueId id{};
    if (comm.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    comm.broadcast(&id, sizeof(id), 0, "NCCL unique id broadcast");
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // every call returns at once; settle() bounds the wait
    const ncclResult_t init =
        ncclCommInitRankConfig(&nccl_, comm.world_size(), id, comm.rank(), &config);
    if (init != ncclSuccess && init != ncclInProgress) {
      fail("NCCL initialisation", ncclGetErrorString(init));
    }
    WaitClock initialising;
    settle("NCCL initialisation", 0, initialising);
    LOG(INFO) << "NCCL communicator: rank " << comm.rank() << " of " << comm.world_size()
              << " on GPU " << cuda::context().device;
  }

  ~NcclAllReduce() override {
    // Finalize flushes what is queued; a communicator that failed is aborted instead, and
    // during an exception the job is about to be aborted anyway.
    if (nccl_ != nullptr) {
      bool clean = !failed_ && std::uncaught_exceptions() == 0;
      if (clean) {
        const ncclResult_t finalize = ncclCommFinalize(nccl_);
        clean = finalize == ncclSuccess || finalize == ncclInProgress;
      }
      const Stopwatch finalizing;
      ncclResult_t state = ncclInProgress;
      while (clean && state == ncclInProgress) {
        if (ncclCommGetAsyncError(nccl_, &state) != ncclSuccess) clean = false;
        if (finalizing.seconds() > timeout_s_) clean = false;
        std::this_thread::yield();
      }
      if (clean && state == ncclSuccess) {
        ncclCommDestroy(nccl_);
      } else {
        ncclCommAbort(nccl_);
      }
    }
    if (produced_ != nullptr) cudaEventDestroy(produced_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  std::unique_ptr<PendingCollective> start(float* data, int64_t count, const char* what) override {
    return enqueue(what, [&] {
      return ncclAllReduce(data, data, static_cast<size_t>(count), ncclFloat, ncclSum, nccl_,
                           stream_);
    });
  }

  // In place: NCCL leaves the sum at the root and the other ranks' buffers as they were.
  std::unique_ptr<PendingCollective> start_reduce(float* data, int64_t count, int root,
                                                  const char* what) override {
    return enqueue(what, [&] {
      return ncclReduce(data, data, static_cast<size_t>(count), ncclFloat, ncclSum, root, nccl_,
                        stream_);
    });
  }

  // One in-place broadcast from each range's owner, in one group.
  void all_gather_ranges(float* data, const std::vector<int64_t>& bounds,
                         const char* what) override {
    if (bounds.size() != static_cast<size_t>(comm_.world_size()) + 1) {
      throw std::logic_error(std::string(what) + ": not one range per rank");
    }
    const std::unique_ptr<PendingCollective> pending = enqueue(what, [&] {
      const auto queued = [](ncclResult_t result) {
        return result == ncclSuccess || result == ncclInProgress;
      };
      ncclResult_t result = ncclGroupStart();
      for (int owner = 0; owner < comm_.world_size() && queued(result); ++owner) {
        float* first = data + bounds[owner];
        const auto count = static_cast<size_t>(bounds[owner + 1] - bounds[owner]);
        result = ncclBroadcast(first, first, count, ncclFloat, owner, nccl_, stream_);
      }
      const ncclResult_t ended = ncclGroupEnd();
      return queued(result) ? ended : result;
    });
    wait(*pending);
  }

  bool test(PendingCollective& pending) override {
    NcclPending& sum = nccl_pending(pending);
    if (!sum.complete) {
      const cudaError_t state = cudaEventQuery(sum.done);
      if (state == cudaSuccess) {
        sum.complete = true;
      } else if (state != cudaErrorNotReady) {
        fail(sum.what, cudaGetErrorString(state));
      } else {
        check_health(sum);
      }
    }
    return sum.complete;
  }

  void wait(PendingCollective& pending) override {
    NcclPending& sum = nccl_pending(pending);
    while (!test(sum)) std::this_thread::sleep_for(std::chrono::microseconds(50));
    // After an error on the communicator NCCL promises nothing about operations that completed.
    ncclResult_t state = ncclSuccess;
    const ncclResult_t polled = ncclCommGetAsyncError(nccl_, &state);
    if (polled != ncclSuccess) fail(sum.what, ncclGetErrorString(polled));
    if (state != ncclSuccess && state != ncclInProgress) fail(sum.what, ncclGetErrorString(state));
    // Kernels queued from now on (the optimizer) run after the sum on the device too.
    DGQA_CUDA_CHECK(cudaStreamWaitEvent(cuda::context().stream, sum.done, 0));
  }

 private:
  // Queues `call` (NCCL's calls on stream_) after the work queued so far on the compute stream,
  // and the event that marks its end.
  template <typename NcclCall>
  std::unique_ptr<NcclPending> enqueue(const char* what, const NcclCall& call) {
    auto pending = std::make_unique<NcclPending>(events_, what, ++sums_started_);
    // The collective starts after everything queued so far on the compute stream: its data is
    // ready.
    DGQA_CUDA_CHECK(cudaEventRecord(produced_, cuda::context().stream));
    DGQA_CUDA_CHECK(cudaStreamWaitEvent(stream_, produced_, 0));
    const ncclResult_t queued = call();
    if (queued != ncclSuccess && queued != ncclInProgress) fail(what, ncclGetErrorString(queued));
    // In non-blocking mode the call may still be being queued.
    settle(what, pending->sequence, pending->waited);
    DGQA_CUDA_CHECK(cudaEventRecord(pending->done, stream_));
    return pending;
  }

  // NCCL cannot put two ranks on one GPU: say so clearly instead of NCCL's own error.
  void check_one_gpu_per_rank(int device) const {
    char bus_id[64] = {};
    DGQA_CUDA_CHECK(cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), device));
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    const uint64_t gpu = std::hash<std::string>()(std::string(host) + "/" + bus_id);
    const std::vector<uint64_t> gpus = comm_.all_gather(gpu, "GPU placement all-gather");
    for (int other = 0; other < comm_.world_size(); ++other) {
      if (other != comm_.rank() && gpus[other] == gpu) {
        throw InputError("dist.backend: NCCL needs one GPU per rank, but ranks " +
                         std::to_string(comm_.rank()) + " and " + std::to_string(other) +
                         " share GPU " + bus_id + " on " + host +
                         " (start one rank per GPU, or use --set dist.backend=MPI)");
      }
    }
  }

  static NcclPending& nccl_pending(PendingCollective& pending) {
    auto* result = dynamic_cast<NcclPending*>(&pending);
    if (result == nullptr) throw std::logic_error("NcclAllReduce: a collective it did not start");
    return *result;
  }

  std::string where(const char* what) const {
    return "rank " + std::to_string(comm_.rank()) + ": " + what;
  }

  void check(ncclResult_t result, const char* call) const {
    if (result != ncclSuccess) {
      throw std::runtime_error(where(call) + " failed: " + ncclGetErrorString(result));
    }
  }

  // Polls the communicator until the last call has settled (no longer ncclInProgress).
  void settle(const char* what, int64_t sequence, WaitClock& waited) {
    ncclResult_t state = ncclInProgress;
    while (true) {
      const ncclResult_t polled = ncclCommGetAsyncError(nccl_, &state);
      if (polled != ncclSuccess) fail(what, ncclGetErrorString(polled));
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) fail(what, ncclGetErrorString(state));
      comm_.answer_peers(what, sequence);
      if (waited.poll() > timeout_s_) timed_out(what, sequence);
      std::this_thread::yield();
    }
  }

  // Between polls of a running sum: an asynchronous NCCL error or the timeout ends the job.
  void check_health(NcclPending& sum) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t polled = ncclCommGetAsyncError(nccl_, &state);
    if (polled != ncclSuccess) fail(sum.what, ncclGetErrorString(polled));
    if (state != ncclSuccess && state != ncclInProgress) fail(sum.what, ncclGetErrorString(state));
    comm_.answer_peers(sum.what, sum.sequence);
    if (sum.waited.poll() > timeout_s_) timed_out(sum.what, sum.sequence);
  }

  // Aborts the communicator (when there is one) and throws, with NCCL's own account of the
  // last error when it has one.
  [[noreturn]] void fail(const char* what, const std::string& error) {
    failed_ = true;
    std::string detail = error;
    if (nccl_ != nullptr) {
      const char* last = ncclGetLastError(nccl_);
      if (last != nullptr && last[0] != '\0') detail += " (" + std::string(last) + ")";
      ncclCommAbort(nccl_);
      nccl_ = nullptr;
    }
    throw std::runtime_error(where(what) + " failed: " + detail);
  }

  // Ends the job at once, as the MPI communicator's timeout does. Not ncclCommAbort first: it
  // joins NCCL's threads without a bound, and ending the process releases the GPU anyway.
  [[noreturn]] void timed_out(const char* what, int64_t sequence) {
    failed_ = true;
    comm_.abort_on_timeout(what, sequence, timeout_s_);
    std::abort();  // not reached: the compiler does not see the virtual call's [[noreturn]]
  }

  Communicator& comm_;
  const double timeout_s_;
  int64_t sums_started_ = 0;  // numbers the sums for Note [Naming a late rank]
  ncclComm_t nccl_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t produced_ = nullptr;  // reused: recorded on the compute stream at each start()
  EventPool events_;  // the pending sums must be gone first (GradientSync waits for all)
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<BufferAllReduce> make_nccl_all_reduce(Communicator& comm, double timeout_s) {
  return std::make_unique<NcclAllReduce>(comm, timeout_s);
}

}  // namespace dgqa
