#!/usr/bin/env bash
# What the SLURM batch scripts (launch/slurm_*.sbatch) run, in the job's batch shell: one
# `dgqa train` rank per task through srun, resuming from the newest checkpoint under OUT.
#   - SIGUSR1 (the time-limit warning of --signal=B:USR1@..., or `scancel --signal=USR1
#     --batch`): every rank finishes its step, rank 0 writes a checkpoint, the ranks exit with 75,
#     and the job is put back in the queue (--requeue), to continue from that checkpoint.
#   - SIGTERM without a SIGUSR1 before it (`scancel JOBID`): the same checkpoint and exit, but
#     the job is not requeued: it ends, cancelled.
# Environment: CONFIG (required), OUT (default runs/slurm-JOBID), DGQA_BIN (default build/dgqa),
# DGQA_SRUN_MPI (srun's --mpi plugin, default pmix). Arguments go to `dgqa train`.
set -euo pipefail

: "${CONFIG:?set CONFIG to the experiment config, e.g. CONFIG=configs/default.pbtxt}"
# OUT must be on a file system every node sees: every rank resumes from the checkpoints in it.
OUT=${OUT:-runs/slurm-${SLURM_JOB_ID}}
DGQA_BIN=${DGQA_BIN:-build/dgqa}
readonly exit_stopped=75  # dgqa's exit code after a requested stop (docs/design.md §7.7)

# OpenMP uses exactly the cores SLURM gave the rank.
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}

# Signals to the batch shell are passed on to every task of the job's steps (scancel without
# --batch signals the steps itself). dgqa treats SIGUSR1 like SIGTERM: checkpoint and exit 75.
requeue=0
stop_ranks() {
  echo "dgqa job: $1: asking the ranks to checkpoint and stop" >&2
  scancel --signal=USR1 "$SLURM_JOB_ID" || true
}
trap 'requeue=1; stop_ranks SIGUSR1' USR1
trap 'stop_ranks SIGTERM' TERM

# --kill-on-bad-exit=1: a rank that fails ends every rank: srun sends the others SIGTERM, and
# they give up on the dead rank within seconds (docs/design.md §5.8) instead of waiting for
# SLURM's KillWait. --cpus-per-task is repeated because some SLURM versions do not pass it from
# sbatch to srun. Core binding is the cluster's default; where the task/affinity plugin is on,
# SLURM_CPU_BIND=cores keeps each rank's threads on its own cores. --mpi=pmix: how OpenMPI ranks
# started by srun find each other; DGQA_SRUN_MPI overrides it where the cluster uses another
# plugin (see `srun --mpi=list`).
srun --kill-on-bad-exit=1 --cpus-per-task="$OMP_NUM_THREADS" \
  --mpi="${DGQA_SRUN_MPI:-pmix}" \
  "$DGQA_BIN" train --config "$CONFIG" --out "$OUT" --resume auto "$@" &
srun_pid=$!

# A trapped signal ends `wait` early: wait again while srun still runs.
status=0
wait "$srun_pid" || status=$?
while kill -0 "$srun_pid" 2>/dev/null; do
  status=0
  wait "$srun_pid" || status=$?
done

if ((status == exit_stopped && requeue == 1)); then
  echo "dgqa job: the ranks checkpointed and stopped; requeueing job $SLURM_JOB_ID" >&2
  scontrol requeue "$SLURM_JOB_ID"
elif ((status == exit_stopped)); then
  echo "dgqa job: the ranks checkpointed and stopped; job $SLURM_JOB_ID cancelled, not requeued" \
    "(resume it with the same OUT)" >&2
fi
exit "$status"
