#!/usr/bin/env bash
# The data pipeline alone: how many training images per second `dgqa`'s loader delivers
# (decode, resize to the model's image size, normalise, augment, on its background thread),
# with nothing consuming them, next to what the model trains per second on the same config.
#
#   bench/data_pipeline.sh [--steps N] [--threads N]
#
# Cases: Fashion-MNIST (the Debian package's files) at 28x28 and resized to 32 and 224, plain
# and with random crop + flip; CIFAR-10 at 32x32 and resized to 224. No CIFAR files may be
# downloaded here, so the script writes CIFAR-10-format files of random pixels into a temporary
# directory (the loader's cost does not depend on the pixel values).
set -euo pipefail
cd "$(dirname "$0")/.."

steps=200
threads=$(nproc)
while (($#)); do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "data_pipeline.sh: unknown argument '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
[[ -x build/dgqa ]] || { echo "data_pipeline.sh: build/dgqa is missing: run launch/build.sh" >&2; exit 2; }

cifar=$(mktemp -d)
trap 'rm -rf "$cifar"' EXIT
# 5 training files of 2000 records (label byte + 3x32x32 pixels) and a test file.
/usr/bin/python3 - "$cifar" <<'EOF'
import os, sys
root = sys.argv[1]
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(root, name), "wb") as f:
        for _ in range(2000):
            f.write(bytes([os.urandom(1)[0] % 10]) + os.urandom(3072))
EOF

run() {  # label, then dgqa arguments
  local label=$1
  shift
  local report
  report=$(build/dgqa bench "$@" --set train.threads="$threads" --steps "$steps" --warmup 5 \
    --data-only --json 2>/dev/null)
  /usr/bin/python3 -c "import json,sys; r=json.loads(sys.argv[2]); print(f'| {sys.argv[1]} | {r[\"batch_size_per_rank\"]} | {r[\"images_per_sec_per_rank\"]:.0f} |')" \
    "$label" "$report"
}

fmnist=(--config bench/tiny_fmnist.pbtxt)
cifar10=(--config bench/vit_s_cifar.pbtxt --set data.root="$cifar")
augment=(--set data.random_crop_padding=4 --set data.hflip=true)
echo "| data, size, transforms | batch | images/s |"
echo "|---|---|---|"
run "Fashion-MNIST 28x28" "${fmnist[@]}"
run "Fashion-MNIST 28x28, crop+flip" "${fmnist[@]}" "${augment[@]}"
run "Fashion-MNIST -> 32x32 (bilinear)" "${fmnist[@]}" --set model.image_size=32
run "Fashion-MNIST -> 224x224 (bilinear)" "${fmnist[@]}" --set model.image_size=224 \
  --set model.patch_size=16 --set train.global_batch_size=32
run "CIFAR-10 32x32" "${cifar10[@]}"
run "CIFAR-10 32x32, crop+flip" "${cifar10[@]}" "${augment[@]}"
run "CIFAR-10 -> 224x224 (bilinear), crop+flip" "${cifar10[@]}" "${augment[@]}" \
  --set model.image_size=224 --set model.patch_size=16 --set train.global_batch_size=32
