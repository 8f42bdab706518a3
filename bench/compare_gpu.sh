#!/usr/bin/env bash
# dgqa against PyTorch 2 on one GPU: for each attention scheme, runs `dgqa bench` on the cuda
# backend and bench/torch_gpu_bench.py (the same ViT in PyTorch: bf16 autocast, SDPA, fused AdamW;
# eager, then under torch.compile) one after the other, for MHA also timm's ViT-L/16, and prints
# a markdown table: scheme, dgqa images/s, dgqa's MFU, PyTorch images/s eager and compiled, and
# dgqa / PyTorch (the faster of the two).
#
#   bench/compare_gpu.sh [DGQA [BATCH [STEPS]]]
#   bench/compare_gpu.sh [--dgqa PATH] [--batch B] [--steps N] [--warmup N] [--rounds R]
#                        [--schemes "MHA GQA KDGQA DGQA_DIFF DGQA_EMA PGQA"]
#                        [--compile-schemes "same as --schemes" | none] [--no-timm]
#                        [--precision bf16|fp32] [--config FILE] [--python PY]
#                        [--peak-tflops X] [--csv FILE] [--timeout S] [--dry-run]
#
# Defaults: DGQA build-gpu/dgqa, BATCH 32 (global batch, one GPU), STEPS 20 timed steps after
# WARMUP 3 (PyTorch: 5 with torch.compile), config bench/vit_l_224.pbtxt, precision bf16 (dgqa's
# default on cuda), every scheme compiled, PY python3. Each run is repeated R times (default 1),
# alternating the programs, and the best images/s of each is kept. torch.compile takes a minute or
# more per scheme on ViT-L: --compile-schemes GQA (or none) keeps the PyTorch side short, and the
# compiled runs come after every other, so that a run cut short still has the rest. --timeout S
# ends any single run after S seconds (it then counts as failed); default: no limit.
#
# Degrades rather than stops: without PyTorch (or a PyTorch without CUDA, or older than 2.0) the
# PyTorch columns are "-", without timm the timm row is "-", a failing run is "-" with its error
# on stderr. Without a GPU (or with a dgqa built without CUDA) there is nothing to compare: it
# says so, with dgqa's error, and stops. Exit status 0 when at least one dgqa run succeeded, else
# 1; 2 for bad arguments.
#
# --dry-run prints the commands instead of running them. For a smoke test of the script on a CPU
# machine: --config bench/tiny_fmnist.pbtxt --backend cpu --device cpu --precision fp32 --batch 2
# --steps 1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

dgqa=build-gpu/dgqa
batch=32
steps=20
warmup=""
rounds=1
schemes="MHA GQA KDGQA DGQA_DIFF DGQA_EMA PGQA"
compile_schemes=""
compile_set=0
timm=1
precision=bf16
config=bench/vit_l_224.pbtxt
py=${PYTHON:-python3}
peak=""
csv=""
dry_run=0
run_timeout=0
backend=cuda  # --backend cpu and --device cpu: smoke tests of this script without a GPU
device=cuda
positional=0

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; }
die() { echo "compare_gpu.sh: $*" >&2; exit 2; }
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
whole() {
  if ! [[ "$2" =~ ^[0-9]+$ ]] || ((10#$2 < $3)); then die "$1 $2: expected a whole number >= $3"; fi
}

while (($#)); do
  case "$1" in
    --dgqa) need "$@"; dgqa="$2"; shift 2 ;;
    --batch) need "$@"; batch="$2"; shift 2 ;;
    --steps) need "$@"; steps="$2"; shift 2 ;;
    --warmup) need "$@"; warmup="$2"; shift 2 ;;
    --rounds) need "$@"; rounds="$2"; shift 2 ;;
    --schemes) need "$@"; schemes="$2"; shift 2 ;;
    --compile-schemes) need "$@"; compile_schemes="$2"; compile_set=1; shift 2 ;;
    --no-timm) timm=0; shift ;;
    --precision) need "$@"; precision="$2"; shift 2 ;;
    --config) need "$@"; config="$2"; shift 2 ;;
    --python) need "$@"; py="$2"; shift 2 ;;
    --peak-tflops) need "$@"; peak="$2"; shift 2 ;;
    --csv) need "$@"; csv="$2"; shift 2 ;;
    --timeout) need "$@"; run_timeout="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --backend) need "$@"; backend="$2"; shift 2 ;;
    --device) need "$@"; device="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown argument '$1' (--help lists them)" ;;
    *)
      case $positional in
        0) dgqa="$1" ;;
        1) batch="$1" ;;
        2) steps="$1" ;;
        *) die "unexpected argument '$1': at most DGQA BATCH STEPS" ;;
      esac
      positional=$((positional + 1))
      shift ;;
  esac
done
whole --batch "$batch" 1
whole --steps "$steps" 1
whole --rounds "$rounds" 1
whole --timeout "$run_timeout" 0
[[ -z "$warmup" ]] || whole --warmup "$warmup" 0
[[ "$precision" == bf16 || "$precision" == fp32 ]] || die "--precision $precision: bf16 or fp32"
((compile_set)) || compile_schemes="$schemes"
[[ "$compile_schemes" == none ]] && compile_schemes=""
for scheme in $schemes $compile_schemes; do
  case "$scheme" in
    MHA | GQA | KDGQA | DGQA_DIFF | DGQA_EMA | PGQA) ;;
    *) die "unknown scheme '$scheme' (MHA GQA KDGQA DGQA_DIFF DGQA_EMA PGQA)" ;;
  esac
done
[[ -f "$config" ]] || die "no config $config"
dgqa_precision=BF16
[[ "$precision" == fp32 ]] && dgqa_precision=FP32

# Prints a command (one shell-quoted line) on the script's stderr (fd 3, even where the command's
# own stderr goes to a file); runs it unless --dry-run.
exec 3>&2
run() {
  echo "+ $(printf '%q ' "$@")" >&3
  ((dry_run)) && return 0
  if ((run_timeout > 0)); then
    timeout -k 10 "$run_timeout" "$@"
  else
    "$@"
  fi
}
json_field() { "$py" -c "import json,sys; print(json.load(sys.stdin)$1)" 2>/dev/null; }
shape_of() { "$py" -c "import json,sys; print(json.dumps(json.load(sys.stdin)['shape']))" 2>/dev/null; }
contains() { [[ " $1 " == *" $2 "* ]]; }

# What is there: dgqa, a GPU, PyTorch (2.0 or newer, with CUDA), timm.
if ((!dry_run)); then
  [[ -x "$dgqa" ]] || die "$dgqa is not an executable: build it (launch/build.sh -DDGQA_CUDA=ON ...) or give its path"
  command -v "$py" >/dev/null || die "no Python '$py' (--python PY)"
  if [[ "$backend" == cuda ]]; then
    if command -v nvidia-smi >/dev/null; then
      nvidia-smi -L >&2 || echo "compare_gpu.sh: nvidia-smi finds no GPU: the runs will fail" >&2
    else
      echo "compare_gpu.sh: no nvidia-smi here; dgqa will say whether it sees a GPU" >&2
    fi
  fi
fi
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
torch_ok=1
timm_ok=$timm
if ((!dry_run)); then
  if ! torch_info=$("$py" -c 'import torch; print(torch.__version__, torch.cuda.is_available())' 2>"$errors"); then
    echo "compare_gpu.sh: PyTorch is not importable by $py ($(tail -n 1 "$errors")): the" \
      "PyTorch columns stay '-'" >&2
    torch_ok=0 timm_ok=0
  else
    echo "# $py: PyTorch ${torch_info% *}, CUDA available: ${torch_info#* }" >&2
    if [[ "$device" == cuda* && "${torch_info#* }" != True ]]; then
      echo "compare_gpu.sh: PyTorch sees no GPU: the PyTorch columns stay '-'" >&2
      torch_ok=0 timm_ok=0
    fi
  fi
  if ((timm_ok)) && ! "$py" -c 'import timm' 2>/dev/null; then
    echo "compare_gpu.sh: timm is not importable by $py: the timm row stays '-'" >&2
    timm_ok=0
  fi
fi

# The last lines of a failed run's stderr, indented, so that the reason shows.
report_failure() {
  echo "compare_gpu.sh: $1 failed:" >&2
  tail -n 5 "$errors" | sed 's/^/    /' >&2
}

# One dgqa run: prints its JSON report, or nothing when it failed.
dgqa_run() {  # scheme [more dgqa arguments]
  local scheme=$1 extra=() report
  shift
  [[ "$scheme" == MHA ]] && extra=(--set model.num_kv_heads="$num_heads")
  [[ -n "$warmup" ]] && extra+=(--warmup "$warmup")
  [[ -n "$peak" ]] && extra+=(--peak-tflops "$peak")
  if report=$(run "$dgqa" bench --config "$config" --set train.backend="$backend" \
    --set train.global_batch_size="$batch" --set model.attention="$scheme" \
    --set model.precision="$dgqa_precision" --steps "$steps" "${extra[@]}" "$@" --json \
    2>"$errors"); then
    echo "$report"
  else
    report_failure "dgqa bench ($scheme)"
  fi
}

# After a dgqa run (in the script itself, not in $(...)): ends the script when dgqa cannot use
# the backend at all.
stop_without_backend() {
  if grep -q 'no GPU is visible\|unknown backend\|needs a build configured' "$errors"; then
    echo "compare_gpu.sh: dgqa cannot run on the $backend backend here (no GPU, or a build" \
      "without CUDA): nothing to compare" >&2
    exit 1
  fi
}

# One PyTorch run: prints its images/s, or "-" when it failed or could not run.
torch_run() {  # scheme model compile(0/1)
  local extra=() report
  ((torch_ok)) || { echo -; return; }
  [[ "$2" == timm ]] && { ((timm_ok)) || { echo -; return; }; }
  (($3)) && extra+=(--compile)
  [[ -n "$warmup" ]] && extra+=(--warmup "$warmup")
  if report=$(run "$py" bench/torch_gpu_bench.py --shape-json "$shape" --scheme "$1" \
    --model "$2" --batch "$batch" --steps "$steps" --precision "$precision" --device "$device" \
    "${extra[@]}" 2>"$errors"); then
    ((dry_run)) && { echo 0; return; }
    if (($3)) && [[ "$(json_field "['compile']" <<<"$report")" != True ]]; then
      # An eager figure does not go in the compiled column.
      echo "compare_gpu.sh: PyTorch $1 ($2) could not compile:" \
        "$("$py" -c "import json,sys; print('; '.join(n for n in json.load(sys.stdin)['notes'] if 'compile' in n))" <<<"$report")" >&2
      echo -
      return
    fi
    json_field "['images_per_sec']" <<<"$report" || echo -
  else
    report_failure "torch_gpu_bench.py ($1, $2, compile $3)"
    echo -
  fi
}

best() {  # the larger of two figures, "-" counting as nothing
  if [[ "$1" == - ]]; then echo "$2"; elif [[ "$2" == - ]]; then echo "$1"; else
    awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 >= b + 0) ? a : b }'; fi
}

# MHA needs the head count (model.num_kv_heads = num_heads); the other schemes' reports give the
# shape, so they run first. The table keeps the order of --schemes.
order=""
for scheme in $schemes; do [[ "$scheme" == MHA ]] || order+=" $scheme"; done
contains "$schemes" MHA && order+=" MHA"
num_heads=""
shape=""
declare -A dgqa_ips mfu eager compiled timm_eager timm_compiled
echo "# $(date -u +%FT%TZ): $config, batch $batch, $steps timed steps, $precision, backend $backend" >&2
for scheme in $order; do
  if [[ "$scheme" == MHA && -z "$num_heads" ]]; then  # MHA alone: one short run for the shape
    report=$(dgqa_run GQA --steps 1 --warmup 0)
    stop_without_backend
    num_heads=$(json_field "['shape']['num_heads']" <<<"$report")
    shape=$(shape_of <<<"$report")
    ((dry_run)) && num_heads=NUM_HEADS
  fi
  dgqa_ips[$scheme]=- mfu[$scheme]=- eager[$scheme]=- compiled[$scheme]=-
  timm_eager[$scheme]=- timm_compiled[$scheme]=-
  for ((round = 0; round < rounds; ++round)); do
    report=$(dgqa_run "$scheme")
    stop_without_backend
    if [[ -n "$report" && $dry_run == 0 ]]; then
      ips=$(json_field "['images_per_sec']" <<<"$report")
      if [[ -z "$ips" ]]; then
        echo "compare_gpu.sh: dgqa bench ($scheme) printed no images_per_sec: $report" >&2
        continue
      fi
      if [[ "$(best "${dgqa_ips[$scheme]}" "$ips")" == "$ips" ]]; then
        dgqa_ips[$scheme]=$ips
        mfu[$scheme]=$(json_field "['mfu']" <<<"$report" || echo -)
        [[ -n "${mfu[$scheme]}" ]] || mfu[$scheme]=-
      fi
      [[ -n "$num_heads" ]] || num_heads=$(json_field "['shape']['num_heads']" <<<"$report")
      [[ -n "$shape" ]] || shape=$(shape_of <<<"$report")
    fi
    ((dry_run)) && shape=${shape:-SHAPE_FROM_DGQA_REPORT} num_heads=${num_heads:-NUM_HEADS}
    if [[ -z "$shape" ]]; then
      echo "compare_gpu.sh: no dgqa report yet, so no shape for PyTorch's $scheme run" >&2
      continue
    fi
    eager[$scheme]=$(best "${eager[$scheme]}" "$(torch_run "$scheme" ours 0)")
    if [[ "$scheme" == MHA ]] && ((timm)); then
      timm_eager[$scheme]=$(best "${timm_eager[$scheme]}" "$(torch_run MHA timm 0)")
    fi
  done
  echo "$scheme: dgqa ${dgqa_ips[$scheme]} (MFU ${mfu[$scheme]}), PyTorch eager ${eager[$scheme]}" >&2
done
# torch.compile last: the slowest runs, and the likeliest to be cut short.
if [[ -n "$shape" ]]; then
  for scheme in $order; do
    contains "$compile_schemes" "$scheme" || continue
    for ((round = 0; round < rounds; ++round)); do
      compiled[$scheme]=$(best "${compiled[$scheme]}" "$(torch_run "$scheme" ours 1)")
      if [[ "$scheme" == MHA ]] && ((timm)); then
        timm_compiled[$scheme]=$(best "${timm_compiled[$scheme]}" "$(torch_run MHA timm 1)")
      fi
    done
    echo "$scheme: PyTorch compiled ${compiled[$scheme]}" >&2
  done
fi
((dry_run)) && exit 0

# The table: images/s to 1 decimal, MFU in percent, ratio against the faster PyTorch figure.
row() {  # label dgqa mfu eager compiled
  awk -v label="$1" -v d="$2" -v m="$3" -v e="$4" -v c="$5" 'BEGIN {
    fmt = "%.1f"
    best = (e == "-") ? c : (c == "-" || e + 0 >= c + 0) ? e : c
    printf "| %s | %s | %s | %s | %s | %s |\n", label,
      (d == "-") ? "-" : sprintf(fmt, d), (m == "-") ? "-" : sprintf("%.1f%%", 100 * m),
      (e == "-") ? "-" : sprintf(fmt, e), (c == "-") ? "-" : sprintf(fmt, c),
      (d == "-" || best == "-" || best + 0 == 0) ? "-" : sprintf("%.2fx", d / best)
  }'
}
echo "| scheme | dgqa images/s | dgqa MFU | PyTorch images/s (eager) | PyTorch images/s (compiled) | dgqa / PyTorch |"
echo "|---|---|---|---|---|---|"
for scheme in $schemes; do
  row "$scheme" "${dgqa_ips[$scheme]}" "${mfu[$scheme]}" "${eager[$scheme]}" "${compiled[$scheme]}"
  if [[ "$scheme" == MHA ]] && ((timm)); then
    row "MHA, timm vit_large_patch16_224" "${dgqa_ips[$scheme]}" - "${timm_eager[$scheme]}" \
      "${timm_compiled[$scheme]}"
  fi
done
echo
echo "dgqa's steps include copying their images from host memory and reading the loss back;"
echo "PyTorch's keep one synthetic batch on the device."
if [[ -n "$csv" ]]; then
  { echo "scheme,dgqa_images_per_sec,dgqa_mfu,torch_eager_images_per_sec,torch_compiled_images_per_sec,timm_eager_images_per_sec,timm_compiled_images_per_sec"
    for scheme in $schemes; do
      echo "$scheme,${dgqa_ips[$scheme]},${mfu[$scheme]},${eager[$scheme]},${compiled[$scheme]},${timm_eager[$scheme]},${timm_compiled[$scheme]}"
    done; } >"$csv"
  echo "wrote $csv" >&2
fi
ok=0
for scheme in $schemes; do [[ "${dgqa_ips[$scheme]}" == - ]] || ok=1; done
((ok)) || { echo "compare_gpu.sh: no dgqa run succeeded (see the errors above)" >&2; exit 1; }
