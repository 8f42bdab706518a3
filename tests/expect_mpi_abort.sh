#!/usr/bin/env bash
# Runs a command that must end an MPI job by aborting it, as a collective timeout does: passes
# when the command exits non-zero within LIMIT seconds and a line of its stderr matches PATTERN
# (an extended regular expression, as grep -E reads it).
# Usage: tests/expect_mpi_abort.sh LIMIT PATTERN COMMAND [ARGS...]
set -uo pipefail
if (($# < 3)); then
  echo "usage: $0 LIMIT PATTERN COMMAND [ARGS...]" >&2
  exit 2
fi
limit=$1
pattern=$2
shift 2
stderr_file=$(mktemp)
trap 'rm -f "$stderr_file"' EXIT

start=$SECONDS
# Twice the limit, so that a hang is reported as one rather than left to CTest's timeout.
timeout --kill-after=5 $((2 * limit)) "$@" 2>"$stderr_file"
status=$?
elapsed=$((SECONDS - start))
cat "$stderr_file" >&2

fail() {
  echo "expect_mpi_abort: FAILED: $*" >&2
  exit 1
}
((status != 0)) || fail "the command exited with status 0"
((status != 124 && status != 137)) || fail "the command hung and was killed after $((2 * limit)) s"
((elapsed <= limit)) || fail "the command took ${elapsed} s, more than ${limit} s"
grep -qE -- "$pattern" "$stderr_file" || fail "no line of stderr matches '$pattern'"
echo "expect_mpi_abort: ok: exit status ${status} after ${elapsed} s, stderr names the failure"
