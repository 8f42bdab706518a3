#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz and runs each for a while (docs/maintaining.md,
# "Fuzzing").
# Usage: tests/fuzz/run_fuzzers.sh [SECONDS] [TARGET...]
#   SECONDS  how long each target runs (default 60; 0: no time limit, with a -runs= flag)
#   TARGET   fuzz_safetensors, fuzz_idx, ... (default: every tests/fuzz/fuzz_*.cc)
# Environment:
#   DGQA_FUZZ_BUILD_DIR  the build directory (default build-fuzz), configured here with
#                        CC=clang CXX=clang++ -DDGQA_FUZZ=ON when it has no CMakeCache.txt
#   DGQA_FUZZ_FLAGS      more libFuzzer flags, e.g. "-runs=1000000"
#   DGQA_FUZZ_JOBS       build jobs (default: all cores)
# Each target fuzzes a copy of its seeds tests/fuzz/corpus/<thing>/ (the committed corpus is
# never changed), with tests/fuzz/<thing>.dict when there is one, in
# $DGQA_FUZZ_BUILD_DIR/fuzz-runs/fuzz_<thing>/ (corpus/, artifacts/, log). The script prints
# each target's executions and exits 1 if any target found a crash, a sanitizer report, a
# leak, an input using over 2 GiB or one taking over 30 s, naming the target and the input
# that does it.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
shift || true
if [[ ! $seconds =~ ^[0-9]+$ ]]; then
  echo "run_fuzzers: SECONDS must be a whole number, got '$seconds'" >&2
  exit 2
fi
targets=("$@")
if ((${#targets[@]} == 0)); then
  for source in tests/fuzz/fuzz_*.cc; do
    name=$(basename "$source" .cc)
    [[ $name == fuzz_support ]] || targets+=("$name")
  done
fi
for target in "${targets[@]}"; do
  if [[ ! -f tests/fuzz/$target.cc ]]; then
    echo "run_fuzzers: no target $target (tests/fuzz/$target.cc)" >&2
    exit 2
  fi
done

build_dir=${DGQA_FUZZ_BUILD_DIR:-build-fuzz}
if [[ ! -f $build_dir/CMakeCache.txt ]]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  CC=clang CXX=clang++ cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DDGQA_FUZZ=ON
elif ! grep -q '^DGQA_FUZZ:BOOL=ON$' "$build_dir/CMakeCache.txt"; then
  echo "run_fuzzers: $build_dir is not a fuzzing build (DGQA_FUZZ=ON); set DGQA_FUZZ_BUILD_DIR" >&2
  exit 2
fi
cmake --build "$build_dir" --parallel "${DGQA_FUZZ_JOBS:-$(nproc)}" --target "${targets[@]}"

read -r -a extra_flags <<<"${DGQA_FUZZ_FLAGS:-}"
# The targets write each input to a scratch file: in memory (/dev/shm) they run many times
# faster than on disk.
scratch_parent=/tmp
[[ -d /dev/shm && -w /dev/shm ]] && scratch_parent=/dev/shm
scratch=$(mktemp -d "$scratch_parent/dgqa-fuzz-runs.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
  thing=${target#fuzz_}
  work=$build_dir/fuzz-runs/$target
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$thing"/* "$work/corpus/"
  flags=(-max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -malloc_limit_mb=2048
    -timeout=30 -artifact_prefix="$work/artifacts/")
  [[ -f tests/fuzz/$thing.dict ]] && flags+=(-dict="tests/fuzz/$thing.dict")
  status=0
  start=$SECONDS
  # ASan hands freed memory back to the system every second: otherwise the memory of large
  # accepted inputs (a shard list of 10^5 names) stays counted against -rss_limit_mb.
  TMPDIR=$scratch UBSAN_OPTIONS=print_stacktrace=1 \
    ASAN_OPTIONS=allocator_release_to_os_interval_ms=1000 \
    "$build_dir/tests/fuzz/$target" "${flags[@]}" "${extra_flags[@]}" "$work/corpus" \
    >"$work/log" 2>&1 || status=$?
  executions=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$work/log" | tail -n 1)
  findings=$(find "$work/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' \
    -o -name 'timeout-*' \) | sort)
  if ((status != 0)) || [[ -n $findings ]]; then
    echo "FAIL $target (exit $status) after ${executions:-?} executions; the input: ${findings:-none saved}"
    echo "  reproduce: $build_dir/tests/fuzz/$target ${findings:-INPUT}; log: $work/log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz finding|terminate called|  what\(\))' "$work/log" |
      head -n 5 | sed 's/^/  /'
    failed+=("$target")
  else
    printf '%-20s %12s executions in %4d s, no finding\n' "$target" "$executions" \
      $((SECONDS - start))
  fi
done
if ((${#failed[@]} > 0)); then
  echo "run_fuzzers: findings in ${failed[*]}" >&2
  exit 1
fi
