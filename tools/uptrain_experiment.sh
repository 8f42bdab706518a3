#!/usr/bin/env bash
# The paper's experiment, small, on Fashion-MNIST (docs/experiments.md, "A small reproduction"):
# pretrain an MHA ViT, convert it to GQA, KDGQA, DGQA_DIFF, DGQA_EMA and PGQA (G = H / 2, each
# group's K/V heads mean-pooled, as the paper converts its checkpoints), up-train each scheme
# (and MHA) with the paper's recipe scaled to this data, three seeds each, and write the table
# of top-1 accuracies and heat maps of KDGQA's allocations.
# Usage (after launch/build.sh): tools/uptrain_experiment.sh [SWEEP_FILE]
#   SWEEP_FILE  the up-training grid, default configs/sweeps/paper_fmnist.json; its "out" is the
#               output root, its "init_from" the pretrained file this script writes, and its
#               "set" also applies to the pretraining
# Everything goes under the sweep's out; a rerun skips what is finished and resumes the rest.
# The program is build/dgqa, or $DGQA_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
sweep=${1:-configs/sweeps/paper_fmnist.json}
dgqa=${DGQA_BIN:-build/dgqa}
python=/usr/bin/python3
[[ -x $dgqa ]] || { echo "uptrain_experiment.sh: no $dgqa: run launch/build.sh first" >&2; exit 2; }
[[ -f $sweep ]] || { echo "uptrain_experiment.sh: no sweep file $sweep" >&2; exit 2; }

sweep_field() {
  "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$sweep" "$1"
}
out=$(sweep_field out)
pretrained=$(sweep_field init_from)
mapfile -t sets < <("$python" -c 'import json, sys
for s in json.load(open(sys.argv[1])).get("set", []): print("--set"); print(s)' "$sweep")
base_config=$(sweep_field base_config)
started=$SECONDS
step() { echo "uptrain_experiment.sh: [$((SECONDS - started)) s] $*" >&2; }
top1() { sed -n 's/.*"top1":\([0-9.]*\).*/\1/p' | tail -n 1; }
mkdir -p "$out"

# 1. Pretraining: MHA, four epochs, normalised as the up-training is (mean = std = 0.5).
step "pretraining MHA into $out/pretrain_mha"
"$dgqa" train --config configs/fmnist_mha.pbtxt --set train.epochs=4 --set data.mean=0.5 \
  --set data.std=0.5 ${sets[@]+"${sets[@]}"} --out "$out/pretrain_mha" --resume auto 2>"$out/pretrain_mha.log"
"$python" tools/export_timm.py "$out/pretrain_mha/model.safetensors" "$pretrained"

# 2. Each scheme right after the conversion, before any up-training.
step "evaluating the converted checkpoints"
{
  echo "| scheme | top-1 (%) after conversion |"
  echo "|---|---|"
  for scheme in MHA GQA KDGQA DGQA_DIFF DGQA_EMA PGQA; do
    result=$("$dgqa" eval --config "$base_config" --set model.attention=$scheme \
      --init-from "$pretrained" 2>/dev/null | top1)
    printf '| %s | %.2f |\n' "$scheme" "$("$python" -c "print(100 * $result)")"
  done
} >"$out/converted.md"
cat "$out/converted.md"

# 3. Up-training: the sweep's grid, one run after another.
step "up-training the grid of $sweep"
launch/sweep.sh "$sweep"

# 4. The table, and the plots of KDGQA's first seed (its allocation moves at every step).
step "writing $out/table.md, $out/table.csv and $out/plots_kdgqa"
"$python" tools/sweep.py results "$sweep" --markdown "$out/table.md" --csv "$out/table.csv"
first_seed=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["seeds"][0])' "$sweep")
"$python" tools/plot_run.py "$out/fmnist/KDGQA/seed$first_seed" --out "$out/plots_kdgqa" >/dev/null
step "done"
