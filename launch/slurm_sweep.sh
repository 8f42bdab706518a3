#!/usr/bin/env bash
# Submits a sweep (docs/experiments.md) as one SLURM job array, a task per grid point:
#   launch/slurm_sweep.sh SWEEP_FILE [SBATCH_OPTIONS...] [-- DGQA_ARGS...]
# Run it from the repository root. It checks the sweep file, counts its grid points N and runs
#   sbatch --array=0-<N-1> SBATCH_OPTIONS... launch/slurm_sweep.sbatch SWEEP_FILE DGQA_ARGS...
# (an --array=... among the SBATCH_OPTIONS replaces the range, e.g. --array=0-7%2 to run at most
# two tasks at a time).
set -euo pipefail

fail() {
  echo "slurm_sweep.sh: $*" >&2
  exit 2
}
(($# >= 1)) || fail "usage: launch/slurm_sweep.sh SWEEP_FILE [SBATCH_OPTIONS...] [-- DGQA_ARGS...]"
[[ -f launch/slurm_sweep.sbatch && -f tools/sweep.py ]] ||
  fail "run it from the repository root (the array's tasks run there)"
sweep_file=$1
shift
count=$(/usr/bin/python3 tools/sweep.py count "$sweep_file")
options=()
while (($# > 0)) && [[ $1 != -- ]]; do
  options+=("$1")
  shift
done
(($# > 0)) && shift
array=(--array="0-$((count - 1))")
for option in "${options[@]}"; do
  [[ $option == --array=* || $option == -a* ]] && array=()  # the user's range instead
done
echo "slurm_sweep.sh: $count grid points: array tasks 0 to $((count - 1))" >&2
exec sbatch "${array[@]}" "${options[@]}" launch/slurm_sweep.sbatch "$sweep_file" "$@"
