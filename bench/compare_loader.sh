#!/usr/bin/env bash
# dgqa's image loader against PyTorch's at equal workers: `dgqa bench --data-only` and
# bench/torch_loader_peer.py (torchvision's ImageFolder in a DataLoader) read the same
# ImageNet-like JPEG folder with the same transforms, alternately, and a markdown table shows
# images/s and peak memory of each and their ratio.
#   training:   RandomResizedCrop(224) + horizontal flip + RandAugment(2, 9) + normalise
#   evaluation: Resize(256) of the shorter side + CenterCrop(224) + normalise
#
#   bench/compare_loader.sh [--dgqa PATH] [--workers "1 2"] [--batch B] [--steps N]
#                           [--rounds R] [--tree DIR] [--train N] [--val N]
#                           [--interpolation bilinear|bicubic]
#
# Defaults: build/dgqa, workers 1 and 2, batches of 64, 30 timed batches after 3, the best of
# 2 rounds, a tree of 4000 training and 1000 validation images of 100 classes (written by
# bench/make_image_tree.py into a temporary folder, or kept in --tree DIR and reused).
# Needs /usr/bin/python3 with torch, torchvision, PIL and numpy (launch/install_deps.sh
# --with-torch).
set -euo pipefail
cd "$(dirname "$0")/.."

dgqa=build/dgqa
workers_list="1 2"
batch=64
steps=30
rounds=2
tree=""
train_count=4000
val_count=1000
interpolation=bilinear
while (($#)); do
  case "$1" in
    --dgqa) dgqa="$2"; shift 2 ;;
    --workers) workers_list="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --tree) tree="$2"; shift 2 ;;
    --train) train_count="$2"; shift 2 ;;
    --val) val_count="$2"; shift 2 ;;
    --interpolation) interpolation="$2"; shift 2 ;;
    *) echo "compare_loader.sh: unknown argument '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
[[ -x $dgqa ]] || { echo "compare_loader.sh: $dgqa is missing: run launch/build.sh" >&2; exit 2; }
python=/usr/bin/python3
$python -c "import torch, torchvision, PIL, numpy" 2>/dev/null ||
  { echo "compare_loader.sh: needs $python with torch, torchvision, PIL and numpy" >&2; exit 2; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [[ -z $tree ]]; then tree=$scratch/tree; fi
if [[ ! -d $tree/train ]]; then
  echo "compare_loader.sh: writing $train_count + $val_count JPEGs to $tree" >&2
  $python bench/make_image_tree.py "$tree" --train "$train_count" --val "$val_count"
fi

config=$scratch/loader.pbtxt
cat > "$config" <<CONFIG
model { image_size: 224 patch_size: 16 in_channels: 3 num_classes: 100 embed_dim: 64 depth: 1
        num_heads: 2 }
data { format: IMAGE_FOLDER root: "$tree" mean: 0.5 std: 0.5
       random_resized_crop: true hflip: true rand_augment_num_ops: 2 rand_augment_magnitude: 9
       interpolation: ${interpolation^^} }
train { global_batch_size: $batch eval_batch_size: $batch }
CONFIG

best() {  # the larger of two numbers
  $python -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "$1" "$2"
}
field() {  # a field of a JSON object
  $python -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"
}

echo "| transforms | workers | dgqa images/s | PyTorch images/s | dgqa / PyTorch | dgqa peak MiB | PyTorch peak MiB |"
echo "|---|---|---|---|---|---|---|"
for split in train eval; do
  for workers in $workers_list; do
    ours=0; theirs=0; ours_mib=0; theirs_mib=0
    for ((round = 0; round < rounds; ++round)); do
      report=$("$dgqa" bench --config "$config" --data-only --split "$split" --json \
        --steps "$steps" --warmup 3 --set data.workers="$workers" --set data.prefetch_batches=2)
      ours=$(best "$ours" "$(field "$report" images_per_sec_per_rank)")
      ours_mib=$(best "$ours_mib" "$(field "$report" peak_memory_mib)")
      report=$($python bench/torch_loader_peer.py "$tree" --split "$split" --workers "$workers" \
        --batch "$batch" --steps "$steps" --warmup 3 --interpolation "$interpolation")
      theirs=$(best "$theirs" "$(field "$report" images_per_sec)")
      theirs_mib=$(best "$theirs_mib" "$(field "$report" peak_memory_mib)")
    done
    $python -c "import sys; s, w, a, b, am, bm = sys.argv[1:]; print(f'| {s} | {w} | {float(a):.0f} | {float(b):.0f} | {float(a)/float(b):.2f}x | {float(am):.0f} | {float(bm):.0f} |')" \
      "$split" "$workers" "$ours" "$theirs" "$ours_mib" "$theirs_mib"
  done
done
