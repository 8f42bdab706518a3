#!/usr/bin/env bash
# The test suite on a fresh machine: installs the Debian packages (with python3-torch for the
# PyTorch cross-check, gnuplot-nox for the test of tools/plot_run.py, slurm-wlm and munge for
# the tests of the SLURM scripts, clang for the fuzz targets), checks the C++ formatting
# (.clang-format), builds with warnings as errors (with the CUDA backend too where CUDA's nvcc
# is installed, as on CI), runs every CTest test, then runs them again in a sanitizer build and
# runs each fuzz target for a short while (below). GPU tests (label gpu) skip, with the reason,
# on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=(--with-torch --with-bench --with-slurm)
if [[ ${DGQA_SKIP_FUZZ:-0} != 1 ]]; then deps+=(--with-fuzz); fi
launch/install_deps.sh "${deps[@]}"
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z '*.cc' '*.h' '*.cu' | xargs -0 clang-format --dry-run --Werror
fi
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
if [[ -x $nvcc ]]; then
  launch/build.sh -DDGQA_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc"
else
  launch/build.sh
fi
ctest --test-dir "${DGQA_BUILD_DIR:-build}" --output-on-failure --parallel "$(nproc)" "$@"

# The suite again in the sanitizer build (AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer, CPU code only; tests/CMakeLists.txt says which tests run without
# leak checking), all but FashionMnistFolderTest (all of Fashion-MNIST written and read as PNGs, the slowest test).
# DGQA_SKIP_SANITIZED=1 skips this part.
if [[ ${DGQA_SKIP_SANITIZED:-0} != 1 ]]; then
  DGQA_BUILD_DIR=${DGQA_SANITIZE_BUILD_DIR:-build-sanitize} launch/build.sh -DDGQA_SANITIZE=ON
  LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "${DGQA_SANITIZE_BUILD_DIR:-build-sanitize}" --output-on-failure \
    --parallel "$(nproc)" -E FashionMnistFolderTest "$@"
fi

# Each libFuzzer target of tests/fuzz for DGQA_FUZZ_SECONDS (default 15) on a copy of its seeds,
# in the clang fuzzing build (build-fuzz/, or $DGQA_FUZZ_BUILD_DIR; docs/maintaining.md,
# "Fuzzing"). A finding fails the suite, naming the target and the input. DGQA_SKIP_FUZZ=1
# skips this part.
if [[ ${DGQA_SKIP_FUZZ:-0} != 1 ]]; then
  tests/fuzz/run_fuzzers.sh "${DGQA_FUZZ_SECONDS:-15}"
fi
