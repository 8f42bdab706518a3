#!/usr/bin/env bash
# The GPU checks, in one go, on a machine with a GPU that has the CUDA build but perhaps none of
# the project's other libraries (docs/gpu.md; launch/gpu_pack.sh builds and packs what this
# script needs).
#
#   launch/gpu_check.sh [BUILD_DIR] [OUT_DIR]      (defaults: build-gpu, $OUT or gpu_check_out)
#
# Runs every GPU test program (tests/cuda_*_test and the GPU cases of bench_test) directly, not
# through CTest (whose files name this machine's paths), each under a time limit, then
# bench/compare_gpu.sh for three schemes (under a limit too). Writes OUT_DIR/summary.txt (the GPU,
# then one line per program: exit status, passed/skipped/failed counts), OUT_DIR/tests.log (the
# output of every program that did not pass), OUT_DIR/compare_gpu.md and compare_gpu.csv. Exits
# non-zero if a program failed or timed out, if a GPU is visible but a CUDA test program skipped
# everything, or if the comparison failed. Sources .devkit/env.sh when it exists (the libraries
# carried to the device machine); PyTorch runs with the library path as it was before that.
#
# Time limits (seconds): DGQA_TEST_LIMIT per test program (default 240), DGQA_COMPARE_LIMIT for
# the whole comparison (default 330).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
build=$(realpath -m "${1:-build-gpu}")
out=$(realpath -m "${2:-${OUT:-gpu_check_out}}")
test_limit=${DGQA_TEST_LIMIT:-240}
compare_limit=${DGQA_COMPARE_LIMIT:-330}
mkdir -p "$out"
summary=$out/summary.txt
: > "$summary"
: > "$out/tests.log"
note() { echo "$*" | tee -a "$summary"; }

# PyTorch brings its own CUDA libraries: it must not see the devkit's first.
python_library_path=${LD_LIBRARY_PATH-}
if [[ -f .devkit/env.sh ]]; then
  # shellcheck source=/dev/null
  source .devkit/env.sh
else
  note "warning: no .devkit/env.sh: using this machine's libraries"
fi
# OpenMPI's single-copy shared memory (CMA) is often refused inside containers.
export OMPI_MCA_btl_vader_single_copy_mechanism=none

[[ -x $build/dgqa ]] || { note "gpu_check.sh: $build/dgqa is missing (launch/gpu_pack.sh builds it)"; exit 2; }
if nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$summary" 2>&1; then
  gpu_visible=1
else
  note "nvidia-smi: no GPU visible"
  gpu_visible=0
fi
missing=$(ldd "$build/dgqa" | grep 'not found' || true)
[[ -z $missing ]] || note "dgqa misses libraries: $missing"

# cuda_dist_test and bench_test start dgqa and mpirun: tell them where they are on this machine.
export DGQA_TEST_BINARY=$build/dgqa
if DGQA_TEST_MPIEXEC=$(command -v mpirun); then
  export DGQA_TEST_MPIEXEC
else
  note "mpirun: not found (the multi-rank tests will fail)"
fi

failed=0
run_tests() {  # program [gtest filter]
  local program=$1 filter=${2:-*} log code passed skipped failed_count status
  log=$(mktemp)
  timeout -k 10 "$test_limit" "$program" --gtest_filter="$filter" > "$log" 2>&1
  code=$?
  passed=$(grep -c '^\[       OK \]' "$log")
  # gtest's closing lines: "[  SKIPPED ] N tests, listed below:", "[  FAILED  ] N tests, ...".
  skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\},.*/\1/p' "$log" | tail -n 1)
  failed_count=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\{0,1\},.*/\1/p' "$log" | tail -n 1)
  skipped=${skipped:-0} failed_count=${failed_count:-0}
  status="exit $code"
  ((code == 124 || code == 137)) && status="TIMEOUT after ${test_limit} s"
  printf '%-32s %s, %s passed, %s skipped, %s failed\n' "$(basename "$program")" "$status" \
    "$passed" "$skipped" "$failed_count" >> "$summary"
  local bad=0
  ((code != 0)) && bad=1
  # A visible GPU that a CUDA test program does not use is a failure too.
  if ((gpu_visible && passed == 0 && skipped > 0)) && [[ $(basename "$program") == cuda_* ]]; then
    echo "  ^ every test skipped although nvidia-smi sees a GPU" >> "$summary"
    bad=1
  fi
  if ((bad)); then
    failed=1
    { echo "=== $program ($status)"; cat "$log"; } >> "$out/tests.log"
  fi
  rm -f "$log"
}
for program in "$build"/tests/cuda_*_test; do run_tests "$program"; done
run_tests "$build/tests/bench_test" '*Cuda*:*DevicePeak*'
run_tests "$build/tests/kernels_launch_checks_test"
cat "$summary"

# PyTorch's python, with the library path it had before the devkit's.
python_wrapper=$(mktemp)
trap 'rm -f "$python_wrapper"' EXIT
printf '#!/bin/sh\nLD_LIBRARY_PATH=%q exec python3 "$@"\n' "$python_library_path" > "$python_wrapper"
chmod +x "$python_wrapper"
timeout -k 20 "$compare_limit" bench/compare_gpu.sh "$build/dgqa" 32 10 \
  --schemes "MHA GQA KDGQA" --compile-schemes GQA --timeout 150 --python "$python_wrapper" \
  --csv "$out/compare_gpu.csv" > "$out/compare_gpu.md" 2>&1
compare=$?
if ((compare != 0)); then
  failed=1
  ((compare == 124 || compare == 137)) && compare="TIMEOUT after ${compare_limit} s"
fi
echo "compare_gpu.sh: exit $compare" >> "$summary"
cat "$out/compare_gpu.md"
exit $failed
