// Collective communication among the ranks of a data-parallel job (docs/design.md §5).
// The trainer talks to one Communicator; the model never sees it (only a Reducer adapter).
// Every collective is bounded: if a rank waits for one longer than the job's timeout, it names
// the operation and the ranks that did not arrive, and aborts the whole job (Note [Naming a late
// rank]).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dgqa {

// Where this process sits in the job, as the launcher told it (comm/launch_env.h).
struct RankInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;         // index among the ranks on this node (selects the GPU)
  int local_size = 1;         // ranks on this node (1 when the launcher does not say)
  std::string launcher = "";  // "openmpi", "slurm", "pmi", or "" for a plain process
};

// A collective started with a *_async call; wait for it with Communicator::wait.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual const RankInfo& info() const = 0;
  int rank() const { return info().rank; }
  int world_size() const { return info().world_size; }

  // Replaces data[0..count) by its sum over all ranks. `what` names the operation in errors.
  virtual void all_reduce_sum(float* data, int64_t count, const char* what) = 0;
  // The same, started now and completed by wait(); data must stay untouched until then.
  virtual std::unique_ptr<PendingCollective> all_reduce_sum_async(float* data, int64_t count,
                                                                  const char* what) = 0;
  virtual void wait(PendingCollective& pending) = 0;
  // Lets a started collective progress without blocking (MPI moves data only inside its calls);
  // true once it has completed. The single-process communicator's are complete at once.
  virtual bool test(PendingCollective& pending) = 0;

  // Starts summing data[0..count) over all ranks into rank `root`'s data (ZeRO-1's gradient
  // pieces, docs/design.md §5.11); the other ranks' data is left as it was. Completed by wait().
  virtual std::unique_ptr<PendingCollective> reduce_sum_async(float* data, int64_t count, int root,
                                                              const char* what) = 0;
  // In place: rank r holds data[bounds[r]..bounds[r + 1]), and afterwards every rank holds all
  // of data[bounds[0]..bounds[world_size]). bounds has world_size + 1 non-decreasing entries.
  virtual void all_gather_ranges(float* data, const std::vector<int64_t>& bounds,
                                 const char* what) = 0;

  // Copies `bytes` bytes at data from rank `root` to every rank.
  virtual void broadcast(void* data, int64_t bytes, int root, const char* what) = 0;
  virtual void barrier(const char* what) = 0;
  // Sends `bytes` bytes at `send` to rank `peer` and receives as many from it into `receive`
  // (distinct buffers), bounded like a collective. Every rank calls it at the same point of its
  // sequence of collectives (for the late-rank naming), each with its own peer, such that peer's
  // peer is the rank; peer == rank copies send to receive.
  virtual void send_receive(const void* send, void* receive, int64_t bytes, int peer,
                            const char* what) = 0;
  // Every rank's `value`, indexed by rank.
  virtual std::vector<uint64_t> all_gather(uint64_t value, const char* what) = 0;

  // For waits outside this communicator (the NCCL sums; Note [Naming a late rank]). Called
  // between polls of such a wait: answers the peers that ask where this rank is. `sequence`
  // counts the waits of that kind, so that ranks waiting in the same one can be told apart from
  // ranks waiting in an earlier one.
  virtual void answer_peers(const char* what, int64_t sequence) {}
  // Ends the job after this rank waited timeout_s for `what`: asks the peers where they are,
  // prints the line that names the ones that did not arrive, and aborts (abort_job_on_timeout).
  [[noreturn]] virtual void abort_on_timeout(const char* what, int64_t sequence, double timeout_s);

  // Note [Giving up after a stop request]: from the first poll of a wait at which
  // stop_requested() is true, the wait gives up after grace_s more seconds of waiting, naming
  // the late ranks as a timeout does, instead of waiting out the whole timeout. Null turns it
  // off (the default).
  virtual void set_stop_grace(bool (*stop_requested)(), double grace_s) {}
};

// Note [Giving up after a stop request]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A stop signal usually reaches every rank (scancel, a time-limit warning, launch/mpirun.sh
// passing SIGTERM on), and each finishes its step and meets the others in the stop all-reduce.
// But when a rank dies, SLURM's srun sends the survivors SIGTERM and kills them only after
// KillWait; a survivor that treated that SIGTERM as a stop would wait for the dead rank in a
// collective until then, or until dist.timeout_s. So once a stop is requested, the ranks'
// collectives get a short grace (the trainer sets it): healthy ranks arrive within it, since they
// do the same work, while a dead or hung peer makes the job end in seconds, naming it. Once the
// ranks have agreed on the stop, all of them are alive, and the trainer turns the grace off for
// the checkpoint write, which may take longer. The MPI communicator implements it; NCCL's sums
// keep dist.timeout_s.

// Note [Naming a late rank]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// When a collective hangs, the useful question is which rank did not come. A rank waiting for a
// collective counts only the time it spends waiting while it runs (comm/wait_clock.h: a gap
// between two polls counts as at most a second), so a rank that was itself stopped (SIGSTOP, a
// debugger) and is woken later does not blame its peers for its own absence. Once a rank has
// waited timeout_s, it sends every other rank a query on a side channel (a duplicate of the
// communicator, so queries never match collective traffic) and gives them a few seconds to
// answer. A rank answers while it waits in any collective, with the name of the operation and
// its sequence number (the how-many-th collective of the communicator): the answers tell apart
// the ranks that wait in the same collective, those that wait in another one (a different
// number or name: the ranks disagree about the order of collectives), and those that do not
// answer at all, which hang outside any collective, are stopped, or died. Only waiting ranks
// report, each with one line such as
//   dgqa: failed: rank 0: gradient all-reduce did not complete within 120 s: rank 3 did not
//   arrive (no answer: it hangs outside a collective, is stopped, or died)
// then the job is aborted. A rank answers at most every few milliseconds, so the probing costs
// nothing measurable in a healthy job.

// Sets up communication for this process: an MPI communicator when a launcher (OpenMPI's
// mpirun, SLURM's srun, a PMI launcher) started more than one rank, otherwise a single-process
// communicator that never calls MPI_Init. timeout_s bounds every collective, counted from its
// start. MPI communicators share MPI's initialisation: the first initialises MPI, the last one
// destroyed finalises it, after which none can be made (comm/mpi_communicator.h); so keep one
// alive for the whole program, and make others (say, with another timeout) while it lives.
std::unique_ptr<Communicator> make_communicator(double timeout_s);

// The sum of an integer over the ranks, exactly (through all_gather); `what` names it in errors.
int64_t sum_over_ranks(Communicator& comm, int64_t value, const char* what);

// Ends the whole job from any rank after a fatal error: MPI_Abort with exit_code under MPI,
// a plain exit otherwise. Used by main() so a failing rank never leaves others waiting.
[[noreturn]] void abort_job(int exit_code);

// Ends the whole job (exit 1) after a collective did not complete within timeout_s: one line on
// stderr naming the rank, the operation and, when known, the late ranks (`late`, appended after
// a colon), copied to the rank's log file, then abort_job.
// After a stop request (Note [Giving up after a stop request]), `after_stop` says so in the line.
[[noreturn]] void abort_job_on_timeout(int rank, const std::string& what, double timeout_s,
                                       const std::string& late = "", bool after_stop = false);

}  // namespace dgqa
