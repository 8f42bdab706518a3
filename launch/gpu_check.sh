#!/usr/bin/env bash
# The GPU checks, in one go, on a machine with a GPU that has the CUDA build but perhaps none of
# the project's other libraries (the device machine: see NOTES.md "Running GPU tests").
#
#   launch/gpu_check.sh [BUILD_DIR] [OUT_DIR]      (defaults: build-gpu, $OUT or gpu_check_out)
#
# Runs every GPU test program (tests/cuda_*_test and the GPU cases of bench_test) directly, not
# through CTest (whose files name this machine's paths), then bench/compare_gpu.sh for three
# schemes. Writes OUT_DIR/summary.txt (one line per program: passed/failed/skipped counts),
# OUT_DIR/tests.log (the failures' output), OUT_DIR/compare_gpu.md; exits non-zero if a test
# failed. Sources .devkit/env.sh when it exists (the libraries carried to the device machine).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
build=${1:-build-gpu}
out=${2:-${OUT:-gpu_check_out}}
mkdir -p "$out"
# shellcheck source=/dev/null
[[ -f .devkit/env.sh ]] && source .devkit/env.sh
[[ -x $build/dgqa ]] || { echo "gpu_check.sh: $build/dgqa is missing (build with -DDGQA_CUDA=ON)" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/summary.txt" 2>&1 ||
  echo "nvidia-smi: not available" > "$out/summary.txt"

# cuda_dist_test starts dgqa and mpirun: tell it where they are on this machine.
export DGQA_TEST_BINARY=$PWD/$build/dgqa
DGQA_TEST_MPIEXEC=$(command -v mpirun || true)
export DGQA_TEST_MPIEXEC
: > "$out/tests.log"
failed=0
run_tests() {  # program [gtest filter]
  local program=$1 filter=${2:-*} log
  log=$(mktemp)
  "$program" --gtest_filter="$filter" > "$log" 2>&1
  local code=$?
  local passed skipped failed_count
  passed=$(grep -c '^\[       OK \]' "$log")
  skipped=$(grep -c '^\[  SKIPPED \]' "$log")
  failed_count=$(grep -c '^\[  FAILED  \]' "$log")
  printf '%-40s exit %d, %s ok, %s skipped, %s failed lines\n' "$(basename "$program")" "$code" \
    "$passed" "$skipped" "$failed_count" >> "$out/summary.txt"
  if ((code != 0)); then
    failed=1
    { echo "=== $program"; cat "$log"; } >> "$out/tests.log"
  fi
  rm -f "$log"
}
for program in "$build"/tests/cuda_*_test; do run_tests "$program"; done
run_tests "$build/tests/bench_test" '*Gpu*:*DevicePeak*'
run_tests "$build/tests/kernels_launch_checks_test"
cat "$out/summary.txt"

bench/compare_gpu.sh "$build/dgqa" 32 10 --schemes "MHA GQA KDGQA" --compile-schemes GQA \
  > "$out/compare_gpu.md" 2>&1
cat "$out/compare_gpu.md"
exit $failed
