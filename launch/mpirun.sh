#!/usr/bin/env bash
# Runs dgqa as an MPI job on this machine under OpenMPI's mpirun, each rank with its share of
# the cores as OpenMP threads (for clusters, see launch/slurm_*.sbatch).
# Usage: launch/mpirun.sh [-n RANKS] [-t THREADS_PER_RANK] -- DGQA_ARGS...
#   -n RANKS             ranks to start (default 2)
#   -t THREADS_PER_RANK  OMP_NUM_THREADS of each rank (default: the cores divided among the
#                        ranks, at least 1)
# The program is build/dgqa, or $DGQA_BIN. SIGTERM or SIGUSR1 to this script stops the job with a
# checkpoint and exit code 75. Example:
#   launch/mpirun.sh -n 2 -- train --config configs/default.pbtxt --out runs/two_ranks
set -euo pipefail

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }
fail() {
  echo "mpirun.sh: $*" >&2
  exit 2
}

ranks=2
threads=
while getopts "n:t:h" option; do
  case $option in
    n) ranks=$OPTARG ;;
    t) threads=$OPTARG ;;
    h) usage && exit 0 ;;
    *) usage >&2 && exit 2 ;;
  esac
done
shift $((OPTIND - 1))

cores=$(nproc)
[[ $ranks =~ ^[1-9][0-9]*$ ]] || fail "-n wants a positive number of ranks, not '$ranks'"
threads=${threads:-$((cores / ranks > 1 ? cores / ranks : 1))}
[[ $threads =~ ^[1-9][0-9]*$ ]] || fail "-t wants a positive number of threads, not '$threads'"
dgqa=${DGQA_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/dgqa}
[[ -x $dgqa ]] || fail "no dgqa program at $dgqa: build it (launch/build.sh) or set DGQA_BIN"

export OMP_NUM_THREADS=$threads
options=(-np "$ranks" -x OMP_NUM_THREADS)
# OpenMPI refuses to run as root unless told that this is meant (containers, CI).
(($(id -u) == 0)) && options+=(--allow-run-as-root)
if ((ranks * threads <= cores)); then
  # Each rank on its own cores, one per thread: no thread migrates onto another rank's cores.
  binding=(--bind-to core --map-by "slot:PE=$threads")
  # nproc counts hardware threads where OpenMPI counts cores, and a batch system may restrict
  # the slots: try the binding on a trivial program and run unbound if mpirun refuses it.
  if ! mpirun "${options[@]}" "${binding[@]}" true >/dev/null 2>&1; then
    echo "mpirun.sh: mpirun cannot bind $ranks ranks to $threads cores each; running unbound" >&2
    binding=(--bind-to none)
  fi
else
  # More threads than cores: binding would stack ranks on the same cores; let the kernel
  # spread them, and let mpirun start more ranks than it counts slots.
  binding=(--oversubscribe --bind-to none)
fi

command=(mpirun "${options[@]}" "${binding[@]}" "$dgqa" "$@")
printf -v quoted '%q ' "${command[@]}"
echo "mpirun.sh: OMP_NUM_THREADS=$OMP_NUM_THREADS ${quoted% }" >&2

# SIGTERM or SIGUSR1 to this script (a user's kill, a batch system's stop) becomes SIGUSR1 for
# the ranks, which mpirun forwards: every rank stops after the same step, a checkpoint is
# written, and the job ends with exit code 75 (continue with --resume auto). Sent to mpirun
# itself, SIGTERM would kill the ranks without a checkpoint and end with exit code 1.
"${command[@]}" &
job=$!
trap 'kill -USR1 "$job" 2>/dev/null' TERM USR1
status=0
wait "$job" || status=$?
while kill -0 "$job" 2>/dev/null; do  # the trap interrupted the wait: wait for the job's end
  status=0
  wait "$job" || status=$?
done
exit "$status"
