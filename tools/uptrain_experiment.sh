#!/usr/bin/env bash
# The paper's recipe on Fashion-MNIST, small: train an MHA ViT for one epoch, export it in
# timm's layout, convert it to GQA, KDGQA and DGQA_EMA with G = H/2 (mean-pooled K/V heads),
# up-train each (and MHA itself) for the same number of steps, and print the test accuracies.
# Usage (after launch/build.sh): tools/uptrain_experiment.sh [OUT_DIR] [UPTRAIN_STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/uptrain}
steps=${2:-1000}
dgqa=build/dgqa
mkdir -p "$out"

top1() { sed -n 's/.*"top1":\([0-9.]*\).*/\1/p' | tail -n 1; }

"$dgqa" train --config configs/fmnist_mha.pbtxt --out "$out/mha" 2>/dev/null
echo "MHA trained one epoch: top-1 $(grep '"eval"' "$out/mha/metrics.jsonl" | top1)"
/usr/bin/python3 tools/export_timm.py "$out/mha/model.safetensors" "$out/mha_timm.safetensors"

for scheme in mha gqa kdgqa dgqa_ema; do
  config=configs/fmnist_$scheme.pbtxt
  weights=$out/mha_timm.safetensors
  if [[ $scheme != mha ]]; then
    weights=$out/$scheme.safetensors
    "$dgqa" convert --config "$config" --from "$out/mha_timm.safetensors" --to "$weights" 2>/dev/null
  fi
  before=$("$dgqa" eval --config "$config" --init-from "$weights" 2>/dev/null | top1)
  "$dgqa" train --config "$config" --init-from "$weights" --out "$out/up_$scheme" \
    --set train.max_steps="$steps" --set optimizer.lr=2e-4 --set schedule.warmup_steps=0 \
    --set model.dgqa_window=100 2>/dev/null
  after=$(grep '"eval"' "$out/up_$scheme/metrics.jsonl" | top1)
  echo "$scheme: top-1 $before after conversion, $after after $steps steps of up-training"
done
