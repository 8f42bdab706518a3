#!/usr/bin/env bash
# The main job on a fresh machine: installs the Debian packages, builds, and trains the default
# config (configs/default.pbtxt: a small DGQA ViT, one epoch of Fashion-MNIST) into runs/default.
# Extra arguments go to `dgqa train`, e.g. --set train.epochs=3.
set -euo pipefail
cd "$(dirname "$0")/.."
launch/install_deps.sh
launch/build.sh
exec "${DGQA_BUILD_DIR:-build}/dgqa" train --config configs/default.pbtxt --out runs/default "$@"
