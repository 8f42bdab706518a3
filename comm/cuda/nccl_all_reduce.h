// Gradient sums over NCCL (dist.backend: NCCL, train.backend "cuda"; docs/design.md §5).
//
// One NCCL communicator for the job: rank 0 makes the unique id, the job's Communicator (MPI)
// broadcasts it. The communicator is non-blocking (ncclConfig_t::blocking = 0), so no NCCL call
// can hang the process: every wait polls ncclCommGetAsyncError with the job's timeout, and on an
// error or a timeout the communicator is aborted (ncclCommAbort) and the whole job ends with a
// message naming the rank and the operation, as the MPI communicator does.
//
// The sums run on a stream of their own. A bucket's all-reduce waits (through an event) for the
// work queued so far on the compute stream, i.e. the backward kernels that produced the bucket,
// while backward goes on queueing the rest; wait() makes the compute stream wait for the sum, so
// the optimizer's kernels see it, without blocking the host longer than needed to bound it.
// ZeRO-1's reduces (ncclReduce, in place) go the same way; its gather of the parameters' shards is
// one group of in-place ncclBroadcasts, one from each owner, waited for before it returns. NCCL
// writes the parameters behind the backend's back: the caller tells the backend
// (Backend::note_external_write).
#pragma once

#include <memory>

#include "comm/buffer_all_reduce.h"

namespace dgqa {

// Collective over all ranks of `comm` (which must outlive the result); the calling process's
// GPU must be chosen already (cuda::select_device). Throws std::runtime_error if NCCL cannot
// set up the communicator within timeout_s.
std::unique_ptr<BufferAllReduce> make_nccl_all_reduce(Communicator& comm, double timeout_s);

}  // namespace dgqa
