// The MPI backend of Communicator, on host buffers (docs/design.md §5). Only
// mpi_communicator.cc includes <mpi.h>.
//
// MPI is initialised (MPI_THREAD_SERIALIZED: any thread may call communicators, but one call at
// a time in the process) by the first communicator of the process, unless something else
// initialised it, and finalised when the last one is destroyed; MPI cannot be initialised again
// after that, so a program keeps one communicator alive for its whole run and may create more, each
// with its own timeout, while it lives. Each communicator works on its own duplicate of
// MPI_COMM_WORLD, so collectives of different communicators never match each other. Creating and
// destroying one are collective: every rank must do it, in the same order. A communicator destroyed
// while an exception unwinds the stack skips that shutdown (its peers may be waiting for this rank)
// and leaves MPI initialised, so abort_job can still end the whole job. A pending collective must
// complete (wait, or test until true) before its communicator goes; one destroyed unfinished is
// completed by its destructor, which MPI requires.
//
// Every collective is started non-blocking and then waited for by testing it in a loop (after
// a short spin, yielding the CPU between tests, so oversubscribed ranks do not starve each
// other). Once a rank has waited timeout_s for it, a wait or a test on it asks the other ranks
// where they are, prints
//   dgqa: failed: rank R: <what> did not complete within T s: <the ranks that did not arrive>
// to stderr (and to glog's log files, if any) and calls MPI_Abort, which ends every rank (Note
// [Naming a late rank] in comm/communicator.h).
// MPI errors come back as codes (MPI_ERRORS_RETURN) and are thrown as std::runtime_error naming
// the rank, the operation and MPI's explanation.
#pragma once

#include <climits>
#include <cstdint>
#include <memory>

#include "comm/communicator.h"

namespace dgqa {

// The most elements one MPI call carries (MPI counts are int): larger collectives are split
// into chunks that are all started before any is waited for.
constexpr int64_t kMaxMpiCount = INT_MAX;

// A communicator over all ranks of MPI_COMM_WORLD. Throws std::runtime_error if MPI's rank or
// size differ from `expected` (the launcher's environment, comm/launch_env.h).
// max_count_per_call lowers the chunk size so tests can exercise the splitting.
std::unique_ptr<Communicator> make_mpi_communicator(const RankInfo& expected, double timeout_s,
                                                    int64_t max_count_per_call = kMaxMpiCount);

// Whether MPI is initialised and not yet finalised in this process.
bool mpi_is_active();

// MPI_Abort on MPI_COMM_WORLD: ends every rank of the job with exit_code. MPI must be active.
[[noreturn]] void abort_all_mpi_ranks(int exit_code);

}  // namespace dgqa
