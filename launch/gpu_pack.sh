#!/usr/bin/env bash
# Builds the CUDA programs for a bare GPU machine (one H100/H200) and packs them, with the
# libraries that machine lacks (launch/gpu_devkit.sh), into one tarball to carry there
# (docs/gpu.md).
#
#   launch/gpu_pack.sh [BUILD_DIR]       (default build-gpu; writes gpu_carry.tar.xz)
#
# Then, with the device tool: carry ["gpu_carry.tar.xz"] and run
#   tar -xJf gpu_carry.tar.xz && launch/gpu_check.sh build-gpu
# CMAKE_CUDA_ARCHITECTURES defaults to 90.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
tarball=gpu_carry.tar.xz

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDGQA_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" > /dev/null
programs=(dgqa bench_test kernels_launch_checks_test)
for source in tests/cuda_*_test.cc; do programs+=("$(basename "$source" .cc)"); done
cmake --build "$build" --target "${programs[@]}"

launch/gpu_devkit.sh "$build"
files=(.devkit "$build/dgqa" "$build/tests/bench_test" "$build/tests/kernels_launch_checks_test")
for source in tests/cuda_*_test.cc; do files+=("$build/tests/$(basename "$source" .cc)"); done
XZ_OPT=-6 tar -cJf "$tarball" "${files[@]}"
bytes=$(stat -c %s "$tarball")
echo "gpu_pack.sh: $tarball, $((bytes / 1048576)) MiB (the carry limit is 64 MiB)"
((bytes < 64 * 1048576)) || { echo "gpu_pack.sh: $tarball is too large to carry" >&2; exit 1; }
