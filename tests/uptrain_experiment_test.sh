#!/usr/bin/env bash
# tools/uptrain_experiment.sh end to end on a tiny grid: a few steps of pretraining and of
# up-training (GQA and KDGQA, one seed). It must write the conversion table of all six schemes,
# the results table of the grid, KDGQA's plots, and skip everything on a rerun.
# Usage: uptrain_experiment_test.sh DGQA_BINARY. Exits 77 (skipped) without gnuplot or numpy.
set -euo pipefail
dgqa=$1
repo=$(cd "$(dirname "$0")/.." && pwd)
command -v gnuplot >/dev/null || { echo "SKIP: gnuplot is not installed"; exit 77; }
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "SKIP: numpy is not installed"; exit 77; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

cat >"$scratch/sweep.json" <<JSON
{
  "base_config": "configs/fmnist_uptrain.pbtxt",
  "out": "$scratch/out",
  "schemes": ["GQA", "KDGQA"],
  "seeds": [42],
  "set": ["train.max_steps=6", "train.log_every_steps=3", "train.eval_batch_size=2000"],
  "init_from": "$scratch/out/pretrained.safetensors",
  "datasets": [{"name": "fmnist"}]
}
JSON
DGQA_BIN=$dgqa "$repo/tools/uptrain_experiment.sh" "$scratch/sweep.json" >"$scratch/first.log" 2>&1 ||
  fail "the first run failed: $(tail -n 20 "$scratch/first.log")"

out=$scratch/out
for scheme in MHA GQA KDGQA DGQA_DIFF DGQA_EMA PGQA; do
  grep -Eq "^\| $scheme \| [0-9]+\.[0-9]{2} \|$" "$out/converted.md" ||
    fail "converted.md has no row for $scheme: $(cat "$out/converted.md")"
done
grep -Eq '^\| GQA \| [0-9.]+ ± n/a \(n=1\) \|$' "$out/table.md" || fail "table.md: $(cat "$out/table.md")"
grep -Eq '^\| KDGQA \| [0-9.]+ ± n/a \(n=1\), Δ [-+][0-9.]+ \|$' "$out/table.md" ||
  fail "table.md: $(cat "$out/table.md")"
grep -q '^GQA,fmnist,1,' "$out/table.csv" || fail "table.csv: $(cat "$out/table.csv")"
for png in allocation_layer0 allocation_layer3 key_norms_layer0 curves; do
  [[ -s $out/plots_kdgqa/$png.png ]] || fail "no $png.png in plots_kdgqa"
done
# The pretraining ran 6 steps; its weights are the conversion's source.
grep -q '"step":6' "$out/pretrain_mha/metrics.jsonl" || fail "the pretraining did not run its 6 steps"
[[ -s $out/pretrained.safetensors ]] || fail "no exported pretrained file"

# A rerun trains nothing: every run is finished.
weights_before=$(md5sum "$out/fmnist/KDGQA/seed42/model.safetensors")
DGQA_BIN=$dgqa "$repo/tools/uptrain_experiment.sh" "$scratch/sweep.json" >"$scratch/second.log" 2>&1 ||
  fail "the rerun failed: $(tail -n 20 "$scratch/second.log")"
grep -q 'finished, skipped' "$scratch/second.log" || fail "the rerun did not skip the finished runs"
[[ $(md5sum "$out/fmnist/KDGQA/seed42/model.safetensors") == "$weights_before" ]] ||
  fail "the rerun changed a finished run's weights"
echo "OK"
