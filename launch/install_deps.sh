#!/usr/bin/env bash
# Installs every Debian package dgqa needs to build, test and train (idempotent).
# Usage: launch/install_deps.sh [--with-torch] [--with-bench] [--with-slurm] [--with-fuzz]
#   --with-torch  also installs python3-torch, python3-torchvision and python3-pil (oracles of
#                 the PyTorch cross-check and the image-pipeline tests, and the PyTorch peers of
#                 the benchmarks) and python3-crc32c (the independent CRC-32C with which
#                 tests/tensorboard_readback.py checks the event files); the tests that need
#                 them skip when they are absent.
#   --with-bench  also installs gnuplot-nox (the plots of launch/scaling_bench.sh,
#                 tools/scaling_model.py --png and tools/plot_run.py; the plot_run_figures test
#                 skips when it is absent).
#   --with-slurm  also installs slurm-wlm and munge (the slurm tests start a private SLURM on
#                 the machine; they skip when it is absent).
#   --with-fuzz   also installs clang with its libFuzzer and sanitizer runtimes
#                 (libclang-rt-dev) and OpenMP (libomp-dev): the fuzzing build of
#                 tests/fuzz/run_fuzzers.sh.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format git
  libopenblas-dev
  libprotobuf-dev protobuf-compiler
  libgoogle-glog-dev libgflags-dev
  libgtest-dev googletest
  zlib1g-dev
  libjpeg62-turbo-dev libpng-dev
  nlohmann-json3-dev
  openmpi-bin libopenmpi-dev
  dataset-fashion-mnist
  python3 python3-numpy
)
for option in "$@"; do
  case $option in
    --with-torch) packages+=(python3-torch python3-torchvision python3-pil python3-crc32c) ;;
    --with-bench) packages+=(gnuplot-nox) ;;
    --with-slurm) packages+=(slurm-wlm munge) ;;
    --with-fuzz) packages+=(clang libclang-rt-dev libomp-dev) ;;
    *)
      echo "install_deps: unknown option '$option' (options: --with-torch, --with-bench," \
        "--with-slurm, --with-fuzz)" >&2
      exit 2
      ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install_deps: installed ${missing[*]}"
