#!/usr/bin/env bash
# What the SLURM batch scripts (launch/slurm_*.sbatch) run, in the job's batch shell: one
# `dgqa train` rank per task through srun, resuming from the newest checkpoint under OUT.
# When SLURM warns of the time limit or a preemption (SIGUSR1 from --signal=B:USR1@..., or
# SIGTERM), every rank is asked to finish its step, write a checkpoint and exit with 75; the job
# is then put back in the queue (--requeue) and continues from that checkpoint when it restarts.
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

# Signals reach this batch shell, not the ranks: pass them on to every task of the job's steps
# (scancel without --batch signals the steps only). dgqa treats SIGUSR1 like SIGTERM.
stop_ranks() {
  echo "dgqa job: $1: asking the ranks to checkpoint and stop" >&2
  scancel --signal=USR1 "$SLURM_JOB_ID" || true
}
trap 'stop_ranks SIGUSR1' USR1
trap 'stop_ranks SIGTERM' TERM

# --kill-on-bad-exit=1: a rank that fails ends every rank at once instead of leaving them in a
# collective until dist.timeout_s. --cpu-bind=cores: each rank's threads stay on its own cores.
# --cpus-per-task is repeated because some SLURM versions do not pass it from sbatch to srun.
# --mpi=pmix: how OpenMPI ranks started by srun find each other; DGQA_SRUN_MPI overrides it
# where the cluster uses another plugin (see `srun --mpi=list`).
srun --kill-on-bad-exit=1 --cpu-bind=cores --cpus-per-task="$OMP_NUM_THREADS" \
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

if ((status == exit_stopped)); then
  echo "dgqa job: the ranks checkpointed and stopped; requeueing job $SLURM_JOB_ID" >&2
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
