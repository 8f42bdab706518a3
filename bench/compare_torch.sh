#!/usr/bin/env bash
# dgqa against PyTorch on this machine: for each benchmark config and attention scheme, runs
# `dgqa bench` and bench/torch_bench.py (the same model in PyTorch eager fp32, same batch and
# thread count) one after the other, and prints a table of both and their ratio, plus each
# scheme's dgqa speed relative to GQA (images/s, and GFLOP/s: MHA does more work per image).
#
#   bench/compare_torch.sh [--configs "tiny_fmnist vit_s_cifar vit_l_224"]
#                          [--schemes "MHA GQA KDGQA DGQA_DIFF DGQA_EMA PGQA"]
#                          [--threads N] [--rounds R] [--csv FILE]
#
# Each pair runs R times (default 1), alternating dgqa and PyTorch so that both see the same
# machine state; the table keeps the best images/s of each. Steps per run are set per config
# (tiny_fmnist 10, vit_s_cifar 5, vit_l_224 3, after one or two warm-up steps).
# Needs build/dgqa (launch/build.sh) and python3-torch (launch/install_deps.sh --with-torch).
set -euo pipefail
cd "$(dirname "$0")/.."

configs="tiny_fmnist vit_s_cifar vit_l_224"
schemes="MHA GQA KDGQA DGQA_DIFF DGQA_EMA PGQA"
threads=$(nproc)
rounds=1
csv=""
while (($#)); do
  case "$1" in
    --configs) configs="$2"; shift 2 ;;
    --schemes) schemes="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --csv) csv="$2"; shift 2 ;;
    *) echo "compare_torch.sh: unknown argument '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
[[ -x build/dgqa ]] || { echo "compare_torch.sh: build/dgqa is missing: run launch/build.sh" >&2; exit 2; }
/usr/bin/python3 -c "import torch" 2>/dev/null ||
  { echo "compare_torch.sh: PyTorch is missing: launch/install_deps.sh --with-torch" >&2; exit 2; }

steps_for() {  # timed and warm-up steps per config: a few seconds to a minute a run
  case "$1" in
    tiny_fmnist) echo "10 2" ;;
    vit_s_cifar) echo "5 1" ;;
    *) echo "3 1" ;;
  esac
}

json_field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "# $(date -u +%FT%TZ) on $(nproc) cores, $threads threads, $(/usr/bin/python3 -c 'import torch; print("PyTorch", torch.__version__)')" >&2
for config in $configs; do
  file="bench/$config.pbtxt"
  [[ -f "$file" ]] || { echo "compare_torch.sh: no config $file" >&2; exit 2; }
  read -r steps warmup <<<"$(steps_for "$config")"
  # MHA has a K/V head per query head: its runs override the config's num_kv_heads.
  num_heads=$(build/dgqa bench --config "$file" --steps 1 --warmup 0 --json 2>/dev/null |
    json_field "['shape']['num_heads']")
  for scheme in $schemes; do
    kv_heads=()
    [[ "$scheme" == MHA ]] && kv_heads=(--set model.num_kv_heads="$num_heads")
    best_dgqa=0 best_torch=0 gflops=0
    for ((round = 0; round < rounds; ++round)); do
      report=$(build/dgqa bench --config "$file" --set model.attention="$scheme" "${kv_heads[@]}" \
        --set train.threads="$threads" --steps "$steps" --warmup "$warmup" --json 2>/dev/null)
      shape=$(json_field "['shape']" <<<"$report" | tr "'" '"')
      batch=$(json_field "['global_batch_size']" <<<"$report")
      dgqa_ips=$(json_field "['images_per_sec']" <<<"$report")
      torch_ips=$(/usr/bin/python3 bench/torch_bench.py --shape-json "$shape" --scheme "$scheme" \
        --batch "$batch" --threads "$threads" --steps "$steps" --warmup "$warmup" --json |
        json_field "['images_per_sec']")
      if awk "BEGIN{exit !($dgqa_ips > $best_dgqa)}"; then
        best_dgqa=$dgqa_ips
        gflops=$(json_field "['gflops_per_sec']" <<<"$report")
      fi
      awk "BEGIN{exit !($torch_ips > $best_torch)}" && best_torch=$torch_ips
    done
    echo "$config $scheme $best_dgqa $best_torch $gflops" | tee -a "$results" >&2
  done
done

table=$(awk '
  { key = $1; if ($2 == "GQA") { gqa[key] = $3; gqa_flops[key] = $5 } row[NR] = $0 }
  END {
    printf "| config | scheme | dgqa images/s | PyTorch images/s | dgqa / PyTorch | images/s vs dgqa GQA | dgqa GFLOP/s | GFLOP/s vs GQA |\n"
    printf "|---|---|---|---|---|---|---|---|\n"
    for (i = 1; i <= NR; ++i) {
      split(row[i], f, " ")
      rel = (f[1] in gqa) ? sprintf("%.3f", f[3] / gqa[f[1]]) : "-"
      rel_flops = (f[1] in gqa) ? sprintf("%.3f", f[5] / gqa_flops[f[1]]) : "-"
      printf "| %s | %s | %.2f | %.2f | %.2fx | %s | %.1f | %s |\n", f[1], f[2], f[3], f[4], f[3] / f[4], rel, f[5], rel_flops
    }
  }' "$results")
echo "$table"
if [[ -n "$csv" ]]; then
  { echo "config,scheme,dgqa_images_per_sec,torch_images_per_sec,dgqa_gflops_per_sec"
    tr ' ' ',' <"$results"; } >"$csv"
  echo "wrote $csv" >&2
fi
