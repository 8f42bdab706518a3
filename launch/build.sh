#!/usr/bin/env bash
# Configures and builds dgqa (Release) into build/ (or $DGQA_BUILD_DIR). Extra arguments go to
# cmake, e.g. launch/build.sh -DDGQA_CUDA=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${DGQA_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
elif (($# > 0)); then
  cmake -S . -B "$build_dir" "$@"
fi
cmake --build "$build_dir" --parallel "$(nproc)"
