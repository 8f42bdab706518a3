#!/usr/bin/env bash
# The test suite on a fresh machine: installs the Debian packages (with python3-torch for the
# PyTorch cross-check), checks the C++ formatting (.clang-format), builds with warnings as
# errors, and runs every CTest test.
set -euo pipefail
cd "$(dirname "$0")/.."
launch/install_deps.sh --with-torch
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z '*.cc' '*.h' | xargs -0 clang-format --dry-run --Werror
fi
launch/build.sh
ctest --test-dir "${DGQA_BUILD_DIR:-build}" --output-on-failure --parallel "$(nproc)" "$@"
