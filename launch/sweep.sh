#!/usr/bin/env bash
# Runs a sweep file's grid (schemes x datasets x seeds, docs/experiments.md) one run after
# another on this machine, each `dgqa train ... --out OUT/<dataset>/<scheme>/seed<S> --resume auto`.
# Usage: launch/sweep.sh SWEEP_FILE [--ranks N] [--dry-run]
#   --ranks N   run each through launch/mpirun.sh -n N (default: plain dgqa, one process)
#   --dry-run   print the command of every run that is not finished, run nothing
# A finished run (model.safetensors and its last eval at its last step) is skipped, and an
# interrupted one resumes from its checkpoint: rerunning the sweep continues it. The first run
# that fails stops the sweep with that run's exit code (75: stopped on request, rerun to resume).
# The program is build/dgqa, or $DGQA_BIN. Then: tools/sweep.py results SWEEP_FILE
set -euo pipefail

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }
fail() {
  echo "sweep.sh: $*" >&2
  exit 2
}

repo=$(cd "$(dirname "$0")/.." && pwd)
sweep_py=$repo/tools/sweep.py
sweep_file=
ranks=
dry_run=0
while (($# > 0)); do
  case $1 in
    --ranks)
      (($# >= 2)) || fail "--ranks wants a number of ranks"
      ranks=$2
      shift 2
      ;;
    --dry-run)
      dry_run=1
      shift
      ;;
    -h | --help) usage && exit 0 ;;
    -*) usage >&2 && fail "unknown option $1" ;;
    *)
      [[ -z $sweep_file ]] || fail "one sweep file only ('$sweep_file', then '$1')"
      sweep_file=$1
      shift
      ;;
  esac
done
[[ -n $sweep_file ]] || { usage >&2 && fail "wants a SWEEP_FILE"; }
[[ -z $ranks || $ranks =~ ^[1-9][0-9]*$ ]] || fail "--ranks wants a positive number, not '$ranks'"

dgqa=${DGQA_BIN:-$repo/build/dgqa}
export DGQA_BIN=$dgqa  # for launch/mpirun.sh
((dry_run == 1)) || [[ -x $dgqa ]] || fail "no dgqa program at $dgqa: build it or set DGQA_BIN"

# The file is checked once here (exit 2 naming the field), before any run starts.
count=$(/usr/bin/python3 "$sweep_py" count "$sweep_file")

for ((i = 0; i < count; i++)); do
  mapfile -d '' args < <(/usr/bin/python3 "$sweep_py" args "$sweep_file" "$i")
  out=$(/usr/bin/python3 "$sweep_py" out "$sweep_file" "$i")
  if [[ -n $ranks ]]; then
    command=("$repo/launch/mpirun.sh" -n "$ranks" -- train "${args[@]}")
  else
    command=("$dgqa" train "${args[@]}")
  fi
  if /usr/bin/python3 "$sweep_py" finished "$out"; then
    echo "sweep.sh: [$((i + 1))/$count] $out: finished, skipped" >&2
    continue
  fi
  printf -v quoted '%q ' "${command[@]}"
  if ((dry_run == 1)); then
    echo "${quoted% }"
    continue
  fi
  echo "sweep.sh: [$((i + 1))/$count] $out: ${quoted% }" >&2
  # SIGTERM, SIGUSR1 or SIGINT (Ctrl-C) to this script becomes SIGUSR1 for the run, which then
  # checkpoints and exits 75 (as under launch/mpirun.sh): the sweep stops, and resumes when rerun.
  "${command[@]}" &
  job=$!
  trap 'kill -USR1 "$job" 2>/dev/null' TERM USR1 INT
  status=0
  wait "$job" || status=$?
  while kill -0 "$job" 2>/dev/null; do  # the trap interrupted the wait: wait for the run's end
    status=0
    wait "$job" || status=$?
  done
  trap - TERM USR1 INT
  if ((status != 0)); then
    echo "sweep.sh: [$((i + 1))/$count] $out failed with exit code $status; the sweep stops" \
      "(rerun it to continue: finished runs are skipped, this one resumes)" >&2
    exit "$status"
  fi
done
((dry_run == 1)) ||
  echo "sweep.sh: all $count runs finished; the table: tools/sweep.py results $sweep_file" >&2
