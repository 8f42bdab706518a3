// Collective communication among the ranks of a data-parallel job (docs/design.md §5).
// The trainer talks to one Communicator; the model never sees it (only a Reducer adapter).
// Every collective is bounded: if it does not complete within the job's timeout, the process
// reports which operation on which rank timed out and aborts the whole job.
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

  // Copies `bytes` bytes at data from rank `root` to every rank.
  virtual void broadcast(void* data, int64_t bytes, int root, const char* what) = 0;
  virtual void barrier(const char* what) = 0;
  // Every rank's `value`, indexed by rank.
  virtual std::vector<uint64_t> all_gather(uint64_t value, const char* what) = 0;
};

// Sets up communication for this process: an MPI communicator when a launcher (OpenMPI's
// mpirun, SLURM's srun, a PMI launcher) started more than one rank, otherwise a single-process
// communicator that never calls MPI_Init. timeout_s bounds every collective, counted from its
// start. MPI communicators share MPI's initialisation: the first initialises MPI, the last one
// destroyed finalises it, after which none can be made (comm/mpi_communicator.h); so keep one
// alive for the whole program, and make others (say, with another timeout) while it lives.
std::unique_ptr<Communicator> make_communicator(double timeout_s);

// Ends the whole job from any rank after a fatal error: MPI_Abort with exit_code under MPI,
// a plain exit otherwise. Used by main() so a failing rank never leaves others waiting.
[[noreturn]] void abort_job(int exit_code);

// Ends the whole job (exit 1) after a collective did not complete within timeout_s: one line on
// stderr naming the rank and the operation, copied to the rank's log file, then abort_job.
[[noreturn]] void abort_job_on_timeout(int rank, const std::string& what, double timeout_s);

}  // namespace dgqa
