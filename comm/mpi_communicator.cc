#include "comm/mpi_communicator.h"

// Only the C API is used: keep OpenMPI's deprecated C++ bindings out.
#define OMPI_SKIP_MPICXX 1
#include <glog/logging.h>
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <list>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "comm/collective_args.h"
#include "comm/late_ranks.h"
#include "comm/wait_clock.h"
#include "common/error.h"
#include "common/stopwatch.h"

namespace dgqa {
namespace {

// Tests of a collective before each further test yields the CPU: long enough for a fast
// collective to finish without a context switch, short enough that oversubscribed ranks
// (more ranks than cores) do not starve the peers they are waiting for.
constexpr int kSpinTests = 200;

// The rank in errors raised before MPI is set up.
constexpr int kRankUnknown = -1;

void check_mpi(int code, int rank, const std::string& what, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  const std::string where = rank == kRankUnknown ? "" : "rank " + std::to_string(rank) + ": ";
  throw std::runtime_error(where + what + ": " + call + " failed: " + std::string(text, length));
}

// MPI's initialisation, shared by every MpiCommunicator of the process (see the header).
class MpiSession {
 public:
  static std::shared_ptr<MpiSession> acquire() {
    static std::mutex mutex;
    static std::weak_ptr<MpiSession> current;
    std::lock_guard<std::mutex> lock(mutex);
    std::shared_ptr<MpiSession> session = current.lock();
    if (!session) {
      session.reset(new MpiSession());
      current = session;
    }
    return session;
  }

  ~MpiSession() {
    if (initialised_here_ && !keep_initialised_) MPI_Finalize();
  }

  // For a failing process: MPI stays up so that abort_job can still abort every rank.
  void keep_initialised() { keep_initialised_ = true; }

 private:
  MpiSession() {
    int initialised = 0;
    int finalised = 0;
    MPI_Initialized(&initialised);
    MPI_Finalized(&finalised);
    if (finalised) {
      throw std::runtime_error(
          "MPI was finalised when the last communicator went away and cannot be initialised "
          "again: keep one communicator alive for the whole program");
    }
    int provided = MPI_THREAD_SINGLE;
    if (initialised) {
      MPI_Query_thread(&provided);
    } else {
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), kRankUnknown,
                "communicator setup", "MPI_Init_thread");
      initialised_here_ = true;
    }
    if (provided < MPI_THREAD_SERIALIZED) {
      throw std::runtime_error("communicator setup: MPI provides thread level " +
                               std::to_string(provided) + ", below MPI_THREAD_SERIALIZED");
    }
    // Failures come back as codes and become exceptions naming the operation.
    check_mpi(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), kRankUnknown,
              "communicator setup", "MPI_Comm_set_errhandler");
  }

  bool initialised_here_ = false;
  bool keep_initialised_ = false;
};

constexpr int kQueryTag = 1;
constexpr int kAnswerTag = 2;
constexpr int kExchangeTag = 3;  // send_receive, on the communicator of the collectives
// How often a waiting rank looks for queries, and how long a rank that timed out waits for the
// answers before it reports.
constexpr double kAnswerInterval_s = 0.01;
constexpr double kAnswerGrace_s = 2.0;

// The side channel of Note [Naming a late rank]: answers the peers' queries while this rank
// waits, and asks them where they are when a wait times out. Errors here are not thrown: the
// answers are a courtesy, and the report is on the way to an abort.
class PeerProgress {
 public:
  PeerProgress(MPI_Comm side, int rank, int world_size)
      : side_(side), rank_(rank), world_size_(world_size) {}
  PeerProgress(const PeerProgress&) = delete;
  PeerProgress& operator=(const PeerProgress&) = delete;
  // Answers still in flight are to a rank that is aborting the job: let MPI drop them.
  ~PeerProgress() {
    for (Answer& answer : answers_) MPI_Request_free(&answer.request);
  }

  int rank() const { return rank_; }

  // Answers every query that has arrived, at most every kAnswerInterval_s.
  void answer(const char* what, int64_t sequence) {
    if (since_answered_.seconds() < kAnswerInterval_s) return;
    since_answered_.restart();
    drop_sent_answers();
    while (true) {
      int arrived = 0;
      MPI_Status status;
      if (MPI_Iprobe(MPI_ANY_SOURCE, kQueryTag, side_, &arrived, &status) != MPI_SUCCESS ||
          !arrived) {
        return;
      }
      MPI_Recv(nullptr, 0, MPI_BYTE, status.MPI_SOURCE, kQueryTag, side_, MPI_STATUS_IGNORE);
      answers_.emplace_back();
      Answer& answer = answers_.back();
      answer.where.sequence = sequence;
      answer.where.set_what(what);
      MPI_Isend(&answer.where, sizeof(WaitingIn), MPI_BYTE, status.MPI_SOURCE, kAnswerTag, side_,
                &answer.request);
    }
  }

  [[noreturn]] void report_timeout(const char* what, int64_t sequence, double timeout_s,
                                   bool after_stop = false) {
    abort_job_on_timeout(rank_, what, timeout_s,
                         describe_late_ranks(ask_peers(what, sequence), rank_, what, sequence),
                         after_stop);
  }

  // Note [Giving up after a stop request].
  void set_stop_grace(bool (*stop_requested)(), double grace_s) {
    stop_requested_ = stop_requested;
    stop_grace_s_ = grace_s;
  }
  // The grace of a wait during a stop request; 0 when there is none.
  double stop_grace_s() const {
    return stop_requested_ != nullptr && stop_requested_() ? stop_grace_s_ : 0;
  }

 private:
  struct Answer {
    WaitingIn where;
    MPI_Request request = MPI_REQUEST_NULL;
  };

  void drop_sent_answers() {
    answers_.remove_if([](Answer& answer) {
      int sent = 0;
      return MPI_Test(&answer.request, &sent, MPI_STATUS_IGNORE) != MPI_SUCCESS || sent;
    });
  }

  // Every peer's answer, for up to kAnswerGrace_s; nullopt for the ranks that gave none (and for
  // this rank). Answers the peers that ask meanwhile: they may be timing out too.
  std::vector<std::optional<WaitingIn>> ask_peers(const char* what, int64_t sequence) {
    std::vector<WaitingIn> replies(world_size_);
    std::vector<MPI_Request> receives(world_size_, MPI_REQUEST_NULL);
    std::vector<MPI_Request> queries(world_size_, MPI_REQUEST_NULL);
    for (int peer = 0; peer < world_size_; ++peer) {
      if (peer == rank_) continue;
      MPI_Irecv(&replies[peer], sizeof(WaitingIn), MPI_BYTE, peer, kAnswerTag, side_,
                &receives[peer]);
      MPI_Isend(nullptr, 0, MPI_BYTE, peer, kQueryTag, side_, &queries[peer]);
    }
    std::vector<std::optional<WaitingIn>> answers(world_size_);
    int missing = world_size_ - 1;
    for (const Stopwatch grace; missing > 0 && grace.seconds() < kAnswerGrace_s;) {
      answer(what, sequence);
      for (int peer = 0; peer < world_size_; ++peer) {
        int arrived = 0;
        if (answers[peer] || receives[peer] == MPI_REQUEST_NULL) continue;
        if (MPI_Test(&receives[peer], &arrived, MPI_STATUS_IGNORE) == MPI_SUCCESS && arrived) {
          answers[peer] = replies[peer];
          --missing;
        }
      }
      sched_yield();
    }
    return answers;
  }

  const MPI_Comm side_;
  const int rank_;
  const int world_size_;
  std::list<Answer> answers_;  // a list: MPI holds the addresses of the buffers in flight
  Stopwatch since_answered_;
  bool (*stop_requested_)() = nullptr;
  double stop_grace_s_ = 0;
};

// What the bounded wait of a collective needs to know about it.
struct CollectiveLabel {
  std::string what;
  int64_t sequence = 0;
  double timeout_s = 0;
  std::shared_ptr<PeerProgress> peers;
};

// The requests of one collective (one per chunk), completed by a bounded wait.
class MpiPending : public PendingCollective {
 public:
  explicit MpiPending(CollectiveLabel label) : label_(std::move(label)) {}

  // MPI forbids freeing an active collective request, and its buffer must not be reused before
  // it completes: a collective nobody waited for is completed here. Errors are only logged, as
  // a destructor must not throw.
  ~MpiPending() override {
    try {
      wait();
    } catch (const std::exception& error) {
      LOG(ERROR) << error.what();
    }
  }

  void add(MPI_Request request) { requests_.push_back(request); }

  // One test of the requests, which lets MPI progress them: true once all completed. Answers
  // the peers' queries, and ends the job once this rank has waited longer than the timeout
  // (Note [Naming a late rank]).
  bool test() {
    if (requests_.empty()) return true;  // completed before: no MPI call
    int done = 0;
    check_mpi(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done,
                          MPI_STATUSES_IGNORE),
              label_.peers->rank(), label_.what, "MPI_Testall");
    if (done) {
      requests_.clear();
      return true;
    }
    PeerProgress& peers = *label_.peers;
    peers.answer(label_.what.c_str(), label_.sequence);
    const double waited = clock_.poll();
    if (waited > label_.timeout_s) {
      peers.report_timeout(label_.what.c_str(), label_.sequence, label_.timeout_s);
    }
    const double grace = peers.stop_grace_s();
    if (grace > 0 && waited_at_stop_ < 0) waited_at_stop_ = waited;
    if (grace > 0 && waited - waited_at_stop_ > grace) {
      peers.report_timeout(label_.what.c_str(), label_.sequence, grace, /*after_stop=*/true);
    }
    return false;
  }

  // Tests until completed, yielding the CPU after a short spin.
  void wait() {
    for (int tests = 1; !test(); ++tests) {
      if (tests > kSpinTests) sched_yield();
    }
  }

 private:
  CollectiveLabel label_;
  WaitClock clock_;
  double waited_at_stop_ = -1;  // the wait's seconds when a stop was first seen; -1 before
  std::vector<MPI_Request> requests_;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(const RankInfo& expected, double timeout_s, int64_t max_count_per_call)
      : session_(MpiSession::acquire()),
        info_(expected),
        timeout_s_(timeout_s),
        max_count_(max_count_per_call) {
    const char* what = "communicator setup";
    int mpi_rank = -1;
    int mpi_size = 0;
    check(MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank), what, "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &mpi_size), what, "MPI_Comm_size");
    if (mpi_rank != info_.rank || mpi_size != info_.world_size) {
      throw std::runtime_error("the " + info_.launcher + " launch environment says rank " +
                               std::to_string(info_.rank) + " of " +
                               std::to_string(info_.world_size) + ", but MPI says rank " +
                               std::to_string(mpi_rank) + " of " + std::to_string(mpi_size) +
                               " (was the program started by that launcher?)");
    }
    // The side channel of Note [Naming a late rank] is made first, and its own setup is
    // reported through MPI_COMM_WORLD, where nothing else sends point-to-point messages.
    peers_ = std::make_shared<PeerProgress>(MPI_COMM_WORLD, info_.rank, info_.world_size);
    MpiPending setup(label(what));
    MPI_Request requests[2];
    check(MPI_Comm_idup(MPI_COMM_WORLD, &side_, &requests[0]), what, "MPI_Comm_idup");
    check(MPI_Comm_idup(MPI_COMM_WORLD, &comm_, &requests[1]), what, "MPI_Comm_idup");
    setup.add(requests[0]);
    setup.add(requests[1]);
    setup.wait();
    peers_ = std::make_shared<PeerProgress>(side_, info_.rank, info_.world_size);
  }

  ~MpiCommunicator() override {
    if (std::uncaught_exceptions() > 0) {
      // This rank is failing and its peers may be waiting for it in a collective, where they
      // would never meet the shutdown below. MPI stays up so that abort_job ends every rank.
      session_->keep_initialised();
      return;
    }
    try {
      // Bounded, so that a peer that never gets here ends the job instead of leaving this rank
      // in MPI_Finalize, which has no timeout.
      barrier("communicator shutdown");
      peers_.reset();
      check(MPI_Comm_free(&side_), "communicator shutdown", "MPI_Comm_free");
      check(MPI_Comm_free(&comm_), "communicator shutdown", "MPI_Comm_free");
    } catch (const std::exception& error) {
      LOG(ERROR) << error.what();
      session_->keep_initialised();
    }
  }

  const RankInfo& info() const override { return info_; }

  void all_reduce_sum(float* data, int64_t count, const char* what) override {
    start_all_reduce_sum(data, count, what)->wait();
  }

  std::unique_ptr<PendingCollective> all_reduce_sum_async(float* data, int64_t count,
                                                          const char* what) override {
    return start_all_reduce_sum(data, count, what);
  }

  std::unique_ptr<PendingCollective> reduce_sum_async(float* data, int64_t count, int root,
                                                      const char* what) override {
    check_collective_count(count, data, what);
    check_collective_root(root, info_.world_size, what);
    const bool at_root = info_.rank == root;
    return start_in_chunks(count, what, [&](int64_t offset, int chunk, MPI_Request* request) {
      // In place at the root; elsewhere the data is only sent (the receive buffer is unused).
      void* send = at_root ? MPI_IN_PLACE : static_cast<void*>(data + offset);
      void* receive = at_root ? static_cast<void*>(data + offset) : nullptr;
      check(MPI_Ireduce(send, receive, chunk, MPI_FLOAT, MPI_SUM, root, comm_, request), what,
            "MPI_Ireduce");
    });
  }

  // One broadcast from each range's owner, all started before any is waited for: the ranges
  // are uneven, and a broadcast carries counts beyond an int in chunks.
  void all_gather_ranges(float* data, const std::vector<int64_t>& bounds,
                         const char* what) override {
    check_collective_ranges(bounds, info_.world_size, data, what);
    MpiPending pending(label(what));
    for (int owner = 0; owner < info_.world_size; ++owner) {
      float* first = data + bounds[owner];
      add_chunks(pending, bounds[owner + 1] - bounds[owner],
                 [&](int64_t offset, int chunk, MPI_Request* request) {
                   check(MPI_Ibcast(first + offset, chunk, MPI_FLOAT, owner, comm_, request), what,
                         "MPI_Ibcast");
                 });
    }
    pending.wait();
  }

  void wait(PendingCollective& pending) override { as_mpi(pending, "wait").wait(); }
  bool test(PendingCollective& pending) override { return as_mpi(pending, "test").test(); }

  void broadcast(void* data, int64_t bytes, int root, const char* what) override {
    check_collective_count(bytes, data, what);
    check_collective_root(root, info_.world_size, what);
    char* first = static_cast<char*>(data);
    start_in_chunks(bytes, what, [&](int64_t offset, int chunk, MPI_Request* request) {
      check(MPI_Ibcast(first + offset, chunk, MPI_BYTE, root, comm_, request), what, "MPI_Ibcast");
    })->wait();
  }

  void barrier(const char* what) override {
    MpiPending pending(label(what));
    MPI_Request request;
    check(MPI_Ibarrier(comm_, &request), what, "MPI_Ibarrier");
    pending.add(request);
    pending.wait();
  }

  void send_receive(const void* send, void* receive, int64_t bytes, int peer,
                    const char* what) override {
    check_collective_count(bytes, send, what);
    check_collective_count(bytes, receive, what);
    check_collective_root(peer, info_.world_size, what);
    if (peer == info_.rank) {
      label(what);  // numbered as on the other ranks
      if (bytes > 0) std::memcpy(receive, send, bytes);
      return;
    }
    MpiPending pending(label(what));
    const char* first_send = static_cast<const char*>(send);
    char* first_receive = static_cast<char*>(receive);
    // Point-to-point messages on comm_ never match its collectives (MPI keeps them apart); the
    // chunks of one exchange arrive in order.
    for (int64_t offset = 0; offset < bytes; offset += max_count_) {
      const int chunk = static_cast<int>(std::min(max_count_, bytes - offset));
      MPI_Request requests[2];
      check(MPI_Irecv(first_receive + offset, chunk, MPI_BYTE, peer, kExchangeTag, comm_,
                      &requests[0]),
            what, "MPI_Irecv");
      check(
          MPI_Isend(first_send + offset, chunk, MPI_BYTE, peer, kExchangeTag, comm_, &requests[1]),
          what, "MPI_Isend");
      pending.add(requests[0]);
      pending.add(requests[1]);
    }
    pending.wait();
  }

  std::vector<uint64_t> all_gather(uint64_t value, const char* what) override {
    std::vector<uint64_t> values(info_.world_size);
    MpiPending pending(label(what));
    MPI_Request request;
    check(MPI_Iallgather(&value, 1, MPI_UINT64_T, values.data(), 1, MPI_UINT64_T, comm_, &request),
          what, "MPI_Iallgather");
    pending.add(request);
    pending.wait();
    return values;
  }

  void answer_peers(const char* what, int64_t sequence) override { peers_->answer(what, sequence); }
  [[noreturn]] void abort_on_timeout(const char* what, int64_t sequence,
                                     double timeout_s) override {
    peers_->report_timeout(what, sequence, timeout_s);
  }
  void set_stop_grace(bool (*stop_requested)(), double grace_s) override {
    peers_->set_stop_grace(stop_requested, grace_s);
  }

 private:
  static MpiPending& as_mpi(PendingCollective& pending, const char* call) {
    auto* mpi_pending = dynamic_cast<MpiPending*>(&pending);
    if (mpi_pending == nullptr) {
      throw std::invalid_argument(std::string(call) +
                                  ": the collective was not started by an MPI communicator");
    }
    return *mpi_pending;
  }

  // Numbers the collective: ranks that agree on the order of collectives give each the same.
  CollectiveLabel label(const char* what) {
    return CollectiveLabel{what, ++collectives_started_, timeout_s_, peers_};
  }

  void check(int code, const char* what, const char* call) const {
    check_mpi(code, info_.rank, what, call);
  }

  std::unique_ptr<MpiPending> start_all_reduce_sum(float* data, int64_t count, const char* what) {
    check_collective_count(count, data, what);
    return start_in_chunks(count, what, [&](int64_t offset, int chunk, MPI_Request* request) {
      check(MPI_Iallreduce(MPI_IN_PLACE, data + offset, chunk, MPI_FLOAT, MPI_SUM, comm_, request),
            what, "MPI_Iallreduce");
    });
  }

  // Starts one collective per chunk of at most max_count_ elements, all before any is waited
  // for: start_chunk(offset, chunk, &request) starts the one at element `offset`.
  template <typename StartChunk>
  std::unique_ptr<MpiPending> start_in_chunks(int64_t count, const char* what,
                                              const StartChunk& start_chunk) {
    auto pending = std::make_unique<MpiPending>(label(what));
    add_chunks(*pending, count, start_chunk);
    return pending;
  }

  // The chunks of one collective of start_in_chunks, added to `pending`.
  template <typename StartChunk>
  void add_chunks(MpiPending& pending, int64_t count, const StartChunk& start_chunk) {
    for (int64_t offset = 0; offset < count; offset += max_count_) {
      MPI_Request request;
      start_chunk(offset, static_cast<int>(std::min(max_count_, count - offset)), &request);
      pending.add(request);
    }
  }

  std::shared_ptr<MpiSession> session_;  // first, so MPI outlives comm_
  RankInfo info_;
  double timeout_s_;
  int64_t max_count_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm side_ = MPI_COMM_NULL;  // Note [Naming a late rank]
  std::shared_ptr<PeerProgress> peers_;
  int64_t collectives_started_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const RankInfo& expected, double timeout_s,
                                                    int64_t max_count_per_call) {
  check_collective_timeout(timeout_s);
  if (max_count_per_call < 1 || max_count_per_call > kMaxMpiCount) {
    throw std::invalid_argument("make_mpi_communicator: max_count_per_call " +
                                std::to_string(max_count_per_call) + " is not in [1, INT_MAX]");
  }
  return std::make_unique<MpiCommunicator>(expected, timeout_s, max_count_per_call);
}

bool mpi_is_active() {
  int initialised = 0;
  int finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  return initialised && !finalised;
}

void abort_all_mpi_ranks(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // not reached: MPI_Abort does not return
}

}  // namespace dgqa
