#!/usr/bin/env bash
# Runs a command that must end an MPI job by aborting it, as a collective timeout does: passes
# when the command exits non-zero within LIMIT seconds and its stderr contains TEXT.
# Usage: tests/expect_mpi_abort.sh LIMIT TEXT COMMAND [ARGS...]
set -uo pipefail
if (($# < 3)); then
  echo "usage: $0 LIMIT TEXT COMMAND [ARGS...]" >&2
  exit 2
fi
limit=$1
text=$2
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
grep -qF -- "$text" "$stderr_file" || fail "stderr does not contain '$text'"
echo "expect_mpi_abort: ok: exit status ${status} after ${elapsed} s, stderr names the failure"
