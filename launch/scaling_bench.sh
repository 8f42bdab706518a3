#!/usr/bin/env bash
# Measures data-parallel scaling of `dgqa bench` over MPI ranks on this machine and writes a CSV
# and a PNG plot (images/s and efficiency against ranks), for strong and weak scaling.
# Usage: launch/scaling_bench.sh [options]
#   --config FILE         benchmark config (default bench/tiny_fmnist.pbtxt)
#   --ranks LIST          rank counts, ascending, comma-separated (default 1,2,4); the first one
#                         is the baseline of the speed-up and efficiency
#   --threads T           threads per rank for every point (default: the cores divided among the
#                         ranks, at least 1, so ranks x threads = cores where it divides)
#   --modes LIST          strong, weak or strong,weak (default strong,weak)
#   --global-batch B      strong scaling: the fixed global batch (default: the config's
#                         train.global_batch_size, or its schema default 128)
#   --per-rank-batch B    weak scaling: the fixed batch of each rank, global = B x ranks
#                         (default: the strong global batch)
#   --steps N, --warmup N timed and untimed steps of each point (default 5 and 2)
#   --repeat R            run each point R times and keep the fastest (default 1): other work on
#                         the machine only ever slows a run down
#   --set path=value      passed on to dgqa (repeatable), e.g. --set model.attention=KDGQA
#   --out PREFIX          writes PREFIX.csv and PREFIX.png (default runs/scaling/measured)
#   --no-plot             CSV only (no gnuplot needed)
# Efficiency (both modes): speed-up / ideal speed-up, where speed-up = ips(N) / ips(base) and the
# ideal speed-up is the ratio of cores the two points can use, min(N x threads, cores). With one
# device per rank (a cluster) that is the textbook ips(N) / (N ips(1)); with the default threads
# here the cores are fixed, ideal = 1, and efficiency = ips(N) / ips(1): what splitting the same
# cores into ranks costs. The CSV also has per_rank_efficiency = speed-up / (N / base ranks).
# Points with ranks x threads > cores oversubscribe the cores (marked in the CSV and the plot).
# Ranks start through launch/mpirun.sh (binding, --allow-run-as-root, --oversubscribe); it uses
# build/dgqa or $DGQA_BIN. Example:
#   launch/scaling_bench.sh --ranks 1,2,4 --steps 10 --out docs/scaling_measured
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
fail() {
  echo "scaling_bench.sh: $*" >&2
  exit 2
}
positive() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
# The value of an option, refusing a missing one (`--steps` at the end of the line).
need_value() { (($2 >= 2)) || fail "$1 needs a value (see --help)"; }

config=$root/bench/tiny_fmnist.pbtxt
ranks_list=1,2,4
threads_given=
modes_list=strong,weak
global_batch=
per_rank_batch=
steps=5
warmup=2
repeat=1
out=$root/runs/scaling/measured
plot=1
sets=()
while (($# > 0)); do
  case $1 in
    --config) need_value "$1" $# && config=$2 && shift ;;
    --ranks) need_value "$1" $# && ranks_list=$2 && shift ;;
    --threads) need_value "$1" $# && threads_given=$2 && shift ;;
    --modes) need_value "$1" $# && modes_list=$2 && shift ;;
    --global-batch) need_value "$1" $# && global_batch=$2 && shift ;;
    --per-rank-batch) need_value "$1" $# && per_rank_batch=$2 && shift ;;
    --steps) need_value "$1" $# && steps=$2 && shift ;;
    --warmup) need_value "$1" $# && warmup=$2 && shift ;;
    --repeat) need_value "$1" $# && repeat=$2 && shift ;;
    --out) need_value "$1" $# && out=$2 && shift ;;
    --set) need_value "$1" $# && sets+=(--set "$2") && shift ;;
    --no-plot) plot=0 ;;
    -h | --help) usage && exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

# --- Check every argument before the first (minutes-long) measurement. ---
[[ -f $config && -r $config ]] || fail "--config: no readable file '$config'"
IFS=, read -r -a ranks <<<"$ranks_list"
((${#ranks[@]} > 0)) || fail "--ranks: empty list"
previous=0
for r in "${ranks[@]}"; do
  positive "$r" || fail "--ranks wants positive integers separated by commas, not '$ranks_list'"
  ((r > previous)) ||
    fail "--ranks must be strictly ascending (the first is the baseline): '$ranks_list'"
  previous=$r
done
[[ -z $threads_given ]] || positive "$threads_given" ||
  fail "--threads wants a positive number, not '$threads_given'"
IFS=, read -r -a modes <<<"$modes_list"
((${#modes[@]} > 0)) || fail "--modes: empty list"
for m in "${modes[@]}"; do
  [[ $m == strong || $m == weak ]] ||
    fail "--modes takes strong, weak or strong,weak, not '$modes_list'"
done
[[ ${modes[*]} != "strong strong" && ${modes[*]} != "weak weak" ]] ||
  fail "--modes: '$modes_list' repeats a mode"
positive "$steps" || fail "--steps wants a positive number, not '$steps'"
[[ $warmup =~ ^[0-9]+$ ]] || fail "--warmup wants a number >= 0, not '$warmup'"
positive "$repeat" || fail "--repeat wants a positive number, not '$repeat'"
for s in "${sets[@]}"; do
  # The script sets these per point; a user value would be silently overridden or contradict it.
  case $s in
    train.global_batch_size=* | train.threads=*)
      fail "--set $s: use --global-batch / --per-rank-batch / --threads instead" ;;
  esac
done
if [[ -z $global_batch ]]; then
  # The config's own value (the only train.global_batch_size line), else the schema default.
  global_batch=$(sed -n 's/^[[:space:]]*global_batch_size:[[:space:]]*\([0-9][0-9]*\).*/\1/p' \
    "$config" | head -n 1)
  global_batch=${global_batch:-128}
fi
positive "$global_batch" || fail "--global-batch wants a positive number, not '$global_batch'"
per_rank_batch=${per_rank_batch:-$global_batch}
positive "$per_rank_batch" || fail "--per-rank-batch wants a positive number, not '$per_rank_batch'"
for m in "${modes[@]}"; do
  [[ $m == strong ]] || continue
  for r in "${ranks[@]}"; do
    ((global_batch % r == 0)) ||
      fail "strong scaling: global batch $global_batch is not divisible by $r ranks" \
        "(--global-batch)"
  done
done
command -v python3 >/dev/null ||
  fail "python3 is needed to read dgqa's JSON (launch/install_deps.sh)"
if ((plot)) && ! command -v gnuplot >/dev/null; then
  fail "gnuplot is not installed: run 'launch/install_deps.sh --with-bench'" \
    "(Debian package gnuplot-nox), or pass --no-plot"
fi
dgqa=${DGQA_BIN:-$root/build/dgqa}
[[ -x $dgqa ]] || fail "no dgqa program at $dgqa: build it (launch/build.sh) or set DGQA_BIN"
out_dir=$(dirname "$out")
mkdir -p "$out_dir" || fail "--out: cannot create the folder '$out_dir'"
csv=$out.csv
png=$out.png

cores=$(nproc)
# Other work on the machine (a build, tests) skews every point: say so rather than fail.
read -r load _ </proc/loadavg
if awk -v load="$load" -v cores="$cores" 'BEGIN { exit !(load > cores / 2) }'; then
  echo "scaling_bench.sh: warning: load average $load on $cores cores before starting:" \
    "other work will skew the timings" >&2
fi
threads_for() { # threads per rank for $1 ranks
  if [[ -n $threads_given ]]; then
    echo "$threads_given"
  else
    echo $((cores / $1 > 1 ? cores / $1 : 1))
  fi
}
cores_used() { # cores that $1 ranks x $2 threads can keep busy
  echo $(($1 * $2 < cores ? $1 * $2 : cores))
}

logs=$(mktemp -d)
trap 'rm -rf "$logs" "$csv.tmp"' EXIT

# One point: sets `result` to "images_per_sec total data forward backward communication
# optimizer" (ms per step), the fastest of --repeat runs. Not run in a subshell, so that the
# cache below persists.
declare -A measured # the same (ranks, threads, global batch) is measured once for both modes
measure() {
  local n=$1 t=$2 batch=$3 key="$1 $2 $3" log run line
  if [[ -z ${measured[$key]:-} ]]; then
    for ((run = 1; run <= repeat; ++run)); do
      log=$logs/bench_${n}r_${t}t_${batch}b_$run.log
      echo "scaling_bench.sh: $n rank(s) x $t thread(s), global batch $batch" \
        "(run $run of $repeat) ..." >&2
      if ! DGQA_BIN=$dgqa "$root/launch/mpirun.sh" -n "$n" -t "$t" -- bench --config "$config" \
        "${sets[@]}" --set "train.global_batch_size=$batch" --set "train.threads=$t" \
        --steps "$steps" --warmup "$warmup" --json >"$log" 2>"$log.err"; then
        tail -n 20 "$log.err" >&2
        trap 'rm -f "$csv.tmp"' EXIT # keep the logs for a look
        fail "dgqa bench failed at $n rank(s) x $t thread(s), batch $batch; logs in $logs"
      fi
      # Rank 0 prints one JSON line on stdout (glog goes to stderr).
      line=$(python3 -c '
import json, sys
report = None
for line in open(sys.argv[1]):
    if line.startswith("{"):
        report = json.loads(line)
if report is None:
    sys.exit("no JSON line in the output of dgqa bench")
ms = report["ms_per_step"]
print(report["images_per_sec"], *(ms[k] for k in
      ("total", "data", "forward", "backward", "communication", "optimizer")))
' "$log") || fail "cannot read dgqa's report in $log"
      if [[ -z ${measured[$key]:-} ]] || awk -v a="${line%% *}" -v b="${measured[$key]%% *}" \
        'BEGIN { exit !(a > b) }'; then
        measured[$key]=$line
      fi
    done
  fi
  result=${measured[$key]}
}

columns=(mode ranks threads_per_rank cores oversubscribed global_batch per_rank_batch
  images_per_sec speedup ideal_speedup efficiency per_rank_efficiency
  ms_total ms_data ms_forward ms_backward ms_communication ms_optimizer)
(IFS=, && echo "${columns[*]}") >"$csv.tmp"
for mode in "${modes[@]}"; do
  base_ips=
  for n in "${ranks[@]}"; do
    t=$(threads_for "$n")
    if [[ $mode == strong ]]; then batch=$global_batch; else batch=$((per_rank_batch * n)); fi
    measure "$n" "$t" "$batch"
    read -r ips ms_total ms_data ms_forward ms_backward ms_comm ms_opt <<<"$result"
    if [[ -z $base_ips ]]; then # the first rank count is the baseline
      base_ips=$ips base_ranks=$n base_cores=$(cores_used "$n" "$t")
    fi
    oversubscribed=no
    ((n * t > cores)) && oversubscribed=yes
    awk -v mode="$mode" -v n="$n" -v t="$t" -v cores="$cores" -v over="$oversubscribed" \
      -v batch="$batch" -v ips="$ips" -v base_ips="$base_ips" -v base_ranks="$base_ranks" \
      -v used="$(cores_used "$n" "$t")" -v base_used="$base_cores" \
      -v phases="$ms_total $ms_data $ms_forward $ms_backward $ms_comm $ms_opt" 'BEGIN {
        speedup = ips / base_ips; ideal = used / base_used
        printf "%s,%d,%d,%d,%s,%d,%d,%.2f,%.4f,%.4f,%.4f,%.4f", mode, n, t, cores, over,
               batch, batch / n, ips, speedup, ideal, speedup / ideal, speedup / (n / base_ranks)
        split(phases, p, " ")
        for (i = 1; i <= 6; ++i) printf ",%.3f", p[i]
        printf "\n"
      }' >>"$csv.tmp"
  done
done
mv "$csv.tmp" "$csv"

echo
# A readable summary of the CSV (mode, ranks, threads, oversubscribed, batches, images/s,
# efficiencies, ms per step total and communication).
awk -F, '{ printf "%-6s %5s %7s %14s %12s %14s %14s %10s %19s %8s %16s\n",
                  $1, $2, $3, $5, $6, $7, $8, $11, $12, $13, $17 }' "$csv"
echo
echo "Efficiency = (ips(N) / ips($base_ranks)) / (cores usable by N ranks / by $base_ranks" \
  "rank(s));"
echo "per_rank_efficiency = (ips(N) / ips($base_ranks)) / (N / $base_ranks)."
if grep -q ',yes,' "$csv"; then
  echo "Note: this machine has $cores core(s); points with ranks x threads > $cores" \
    "oversubscribe the cores (oversubscribed=yes): their ranks take turns on the same cores."
fi
echo "CSV: $csv"

if ((plot)); then
  # x tics at the measured rank counts, oversubscribed ones starred.
  tics='' footnote=''
  for n in "${ranks[@]}"; do
    t=$(threads_for "$n")
    label=$n
    if ((n * t > cores)); then
      label="$n*" footnote="\\n* = oversubscribed: ranks x threads > $cores cores"
    fi
    tics+="${tics:+, }\"$label\" $n"
  done
  title="$(basename "$config")"
  for ((i = 1; i < ${#sets[@]}; i += 2)); do title+=" ${sets[i]}"; done # the --set values
  title+=": ${steps} timed steps"
  ((repeat > 1)) && title+=" (best of $repeat runs)"
  title+=", $cores cores, threads/rank ${threads_given:-= cores/ranks}"
  # One line per measured mode (point type 7 and colour 1 for strong, 5 and 2 for weak).
  ips_plot='' efficiency_plot=''
  for mode in "${modes[@]}"; do
    if [[ $mode == strong ]]; then
      style="pt 7 lc 1" open="pt 6 lc 1" what="global batch $global_batch"
    else
      style="pt 5 lc 2" open="pt 4 lc 2" what="$per_rank_batch per rank"
    fi
    rows="\"$csv\" using 2:(strcol(1) eq \"$mode\" ?"
    ips_plot+="${ips_plot:+, }$rows \$8 : 1/0) with linespoints lw 2 $style title \"$mode ($what)\""
    efficiency_plot+="${efficiency_plot:+, }$rows \$11 : 1/0) with linespoints lw 2 $style"
    efficiency_plot+=" title \"$mode: speed-up / ideal (cores)\""
    efficiency_plot+=", $rows \$12 : 1/0) with linespoints dt 2 $open title \"$mode: speed-up / N\""
  done
  gnuplot <<EOF
set terminal pngcairo noenhanced size 1200,500 font ",10"
set output "$png"
set datafile separator ","
set key autotitle columnhead
set logscale x 2
set xtics ($tics)
set xrange [${ranks[0]} / 1.3 : ${ranks[-1]} * 1.3]
set grid
set multiplot layout 1,2 title "$title$footnote"
set xlabel "ranks"
set ylabel "images/s"
set yrange [0:*]
set key bottom right
plot $ips_plot
set ylabel "efficiency"
set yrange [0:*]
set key bottom left
plot $efficiency_plot
unset multiplot
EOF
  echo "Plot: $png"
fi
