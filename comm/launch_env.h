// Where this process sits in the job, read from the launcher's environment variables without
// calling MPI (docs/design.md §5): a plain process must never initialise MPI.
#pragma once

#include "comm/communicator.h"

namespace dgqa {

// The first launcher whose variables are set wins, in this order:
//   "openmpi": OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK,
//              OMPI_COMM_WORLD_LOCAL_SIZE (mpirun);
//   "slurm":   SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, and the local size as this node's
//              entry (SLURM_NODEID) of SLURM_STEP_TASKS_PER_NODE, e.g. "2(x3),1", only when
//              SLURM_PROCID and SLURM_NTASKS are both set (srun): a batch script run without
//              srun has neither SLURM_PROCID nor a task layout for this process, so it is one
//              process;
//   "pmi":     PMI_RANK (or PMIX_RANK), PMI_SIZE, MPI_LOCALRANKID or PMI_LOCAL_RANK, and
//              MPI_LOCALNRANKS (MPICH's Hydra and other PMI launchers).
// A missing local rank variable means local rank 0, a missing local size 1. With no launcher:
// rank 0 of 1, launcher "". Throws InputError naming the variable when a value is malformed, a
// rank is not below the world size (a local rank not below the local size), a local size is
// above the world size, or the world size of a detected launcher is missing or 0.
RankInfo detect_rank_info();

}  // namespace dgqa
