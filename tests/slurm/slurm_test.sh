#!/usr/bin/env bash
# The SLURM scripts (launch/slurm_*.sbatch and launch/slurm_train.sh) against a real SLURM that
# tests/slurm/start_slurm.sh starts on this machine, training configs/default.pbtxt for a few
# steps with 2 ranks on the CPU. One case per run (CTest runs each as slurm_CASE):
#   completes  a job runs to its end: COMPLETED, model.safetensors written
#   requeue    SIGUSR1 (the time-limit warning) -> checkpoint -> requeue -> resume: the final
#              weights are byte-identical to an uninterrupted job's, one log holds both attempts
#   scancel    scancel -> checkpoint, the job ends CANCELLED and is never requeued
#   dead-rank  kill -9 of a rank -> the job fails within seconds, no rank left running
#   two-nodes  the multi-node script on two emulated nodes gives the single-node job's weights
#   sweep-array  launch/slurm_sweep.sh submits a sweep of 2 runs as a job array; both finish
# Exits 0 when the case holds, 1 when not (saying why), 77 when SLURM cannot start here.
# Usage: tests/slurm/slurm_test.sh CASE DGQA_BINARY
set -uo pipefail
case_name=$1
export DGQA_BIN=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/dgqa_slurm_XXXXXX)
export PATH=$PATH:/usr/sbin

nodes=1
[[ $case_name == two-nodes ]] && nodes=2
slurm_env=$("$repo/tests/slurm/start_slurm.sh" "$work/slurm" "$nodes" 2)
status=$?
if ((status != 0)); then
  rm -rf "$work"
  exit "$status"
fi
export "${slurm_env?}"
trap '"$work/slurm/stop.sh"; rm -rf "$work"' EXIT

fail() {
  echo "slurm_test $case_name: FAILED: $*" >&2
  for log in "$work"/*.out "$work"/slurm/log/slurm*.log; do
    [[ -f $log ]] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
  done
  exit 1
}

# submit NAME SCRIPT [SBATCH OPTIONS...] -- [DGQA ARGS...]: submits from the repository root
# (the scripts run launch/slurm_train.sh from there); prints the job id. OUT is $work/NAME.
submit() {
  local name=$1 script=$2
  shift 2
  local options=()
  while (($# > 0)) && [[ $1 != -- ]]; do
    options+=("$1")
    shift
  done
  shift
  (cd "$repo" && CONFIG=configs/default.pbtxt OUT="$work/$name" sbatch --parsable \
    --output="$work/$name-%j.out" --gres=none --cpus-per-task=1 --time=10:00 "${options[@]}" \
    "launch/$script" --set train.log_every_steps=1 "$@")
}
single_node() { submit "$1" slurm_single_node.sbatch --ntasks-per-node=2 -- "${@:2}"; }

job_field() { scontrol -o show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | cut -d= -f2; }

# wait_state JOB STATE SECONDS: until the job is in STATE (fails after SECONDS, or at once when
# the job ends in another state, with the daemons' logs).
wait_state() {
  local i state
  for ((i = 0; i < $3 * 5; i++)); do
    state=$(job_field "$1" JobState)
    [[ $state == "$2" ]] && return 0
    case $state in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | BOOT_FAIL | OUT_OF_MEMORY | DEADLINE)
        fail "job $1 ended $state, not $2 ($(job_field "$1" Reason))"
        ;;
    esac
    sleep 0.2
  done
  fail "job $1 is ${state:-unknown to scontrol}, not $2, after $3 s"
}

# wait_steps NAME N: until the run NAME has logged N training steps.
wait_steps() {
  local i
  for ((i = 0; i < 600; i++)); do
    local steps
    steps=$(grep -c '"kind":"train"' "$work/$1/metrics.jsonl" 2>/dev/null)
    ((${steps:-0} >= $2)) && return 0
    sleep 0.2
  done
  fail "the run $1 did not log $2 steps"
}

# ranks_of NAME: the PIDs of the run's ranks. srun's own command line holds the same words, so
# only processes of the dgqa binary count (PIDs wrap on a busy machine: the highest PID need not
# be a rank).
ranks_of() {
  local pid
  for pid in $(pgrep -f "dgqa train .*--out $work/$1 "); do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dgqa ]] && echo "$pid"
  done
  true
}

case $case_name in
  completes)
    job=$(single_node run --set train.max_steps=20) || fail "sbatch failed"
    wait_state "$job" COMPLETED 120
    [[ -f $work/run/model.safetensors ]] || fail "no model.safetensors"
    grep -q "on 2 rank(s)" "$work/run-$job.out" || fail "the job did not run 2 ranks"
    ;;
  requeue)
    reference=$(single_node reference --set train.max_steps=60) || fail "sbatch failed"
    wait_state "$reference" COMPLETED 180
    job=$(single_node run --set train.max_steps=60) || fail "sbatch failed"
    wait_steps run 3
    scancel --signal=USR1 --batch "$job"
    wait_state "$job" PENDING 60
    [[ $(job_field "$job" Restarts) == 1 ]] || fail "the job was not requeued"
    # SLURM holds a requeued job for a while before it may start again: release it as soon as
    # the first attempt's step is cleaned up (its PMIx directory would collide with the next's;
    # on a loaded machine that takes a while).
    for ((i = 0; i < 600; i++)); do
      pgrep -f "slurmstepd: \[$job\." >/dev/null || break
      sleep 0.2
    done
    # slurmd revokes the first attempt's credential with a time in whole seconds and refuses a
    # credential made in that same second ("Job credential revoked"): start the next attempt at
    # least two seconds later.
    sleep 2
    scontrol update JobId="$job" StartTime=now
    wait_state "$job" COMPLETED 180
    [[ $(job_field "$job" ExitCode) == 0:0 ]] || fail "the job ended with $(job_field "$job" ExitCode)"
    cmp "$work/reference/model.safetensors" "$work/run/model.safetensors" ||
      fail "the resumed job's weights differ from the uninterrupted job's"
    log=$work/run-$job.out
    grep -q "stopped on request" "$log" || fail "the first attempt's stop is not in the log"
    grep -q "requeueing job $job" "$log" || fail "the requeue is not in the log"
    grep -q "Resuming from" "$log" || fail "the second attempt is not in the log"
    ;;
  scancel)
    job=$(single_node run --set train.max_steps=100000) || fail "sbatch failed"
    wait_steps run 3
    scancel "$job"
    wait_state "$job" CANCELLED 60
    sleep 3
    [[ $(job_field "$job" JobState) == CANCELLED ]] || fail "the job did not stay cancelled"
    [[ $(job_field "$job" Restarts) == 0 ]] || fail "the cancelled job was requeued"
    [[ -f $work/run/checkpoints/latest ]] || fail "no checkpoint was written"
    grep -q "cancelled, not requeued" "$work/run-$job.out" || fail "the log does not say cancelled"
    [[ -z $(ranks_of run) ]] || fail "ranks are left running"
    ;;
  dead-rank)
    job=$(single_node run --set train.max_steps=100000) || fail "sbatch failed"
    wait_steps run 3
    ranks=$(ranks_of run)
    (($(wc -w <<<"$ranks") == 2)) || fail "found ranks '$ranks', not two"
    victim=$(tail -n 1 <<<"$ranks")
    start=$SECONDS
    kill -KILL "$victim"
    wait_state "$job" FAILED 60
    elapsed=$((SECONDS - start))
    # KillWait is 60 s here: a job that waited for it would take twice as long.
    ((elapsed <= 30)) || fail "the job took $elapsed s to end after a rank died"
    sleep 1
    [[ -z $(ranks_of run) ]] || fail "ranks are left running"
    [[ $(job_field "$job" Restarts) == 0 ]] || fail "the failed job was requeued"
    echo "slurm_test dead-rank: the job failed $elapsed s after the kill"
    ;;
  two-nodes)
    one=$(single_node one --set train.max_steps=20) || fail "sbatch failed"
    wait_state "$one" COMPLETED 120
    two=$(submit two slurm_multi_node.sbatch --nodes=2 --ntasks-per-node=1 -- \
      --set train.max_steps=20) || fail "sbatch failed"
    wait_state "$two" COMPLETED 120
    nodes_used=$(job_field "$two" NumNodes)
    [[ $nodes_used == 2 ]] || fail "the job ran on $nodes_used node(s), not 2"
    cmp "$work/one/model.safetensors" "$work/two/model.safetensors" ||
      fail "2 ranks on two nodes differ from 2 ranks on one"
    ;;
  sweep-array)
    # A sweep of 2 grid points as a job array (launch/slurm_sweep.sh): each task trains its run.
    cat >"$work/sweep.json" <<EOF
{"base_config": "configs/default.pbtxt", "out": "$work/sweep", "schemes": ["GQA", "DGQA_EMA"],
 "seeds": [5], "datasets": [{"name": "fmnist"}],
 "set": ["train.max_steps=20", "train.log_every_steps=1"]}
EOF
    job=$(cd "$repo" && launch/slurm_sweep.sh "$work/sweep.json" --parsable \
      --output="$work/sweep-%A_%a.out" --gres=none --cpus-per-task=1 --time=10:00 \
      --ntasks-per-node=2) || fail "launch/slurm_sweep.sh failed"
    states=
    for ((i = 0; i < 1200; i++)); do
      states=$(scontrol -o show job "$job" 2>/dev/null | grep -o "JobState=[^ ]*" | sort | uniq -c)
      [[ $states =~ ^\ *2\ JobState=COMPLETED$ ]] && break
      sleep 0.2
    done
    [[ $states =~ ^\ *2\ JobState=COMPLETED$ ]] || fail "the array's tasks are: $states"
    for scheme in GQA DGQA_EMA; do
      run=$work/sweep/fmnist/$scheme/seed5
      [[ -f $run/model.safetensors ]] || fail "$run: no model.safetensors"
      grep -q "Training $scheme ViT .* on 2 rank(s)" "$work"/sweep-"${job}"_*.out ||
        fail "no array task trained $scheme on 2 ranks"
    done
    finished=$(/usr/bin/python3 "$repo/tools/sweep.py" list "$work/sweep.json" | grep -c $'\tfinished\t')
    ((finished == 2)) || fail "tools/sweep.py list counts $finished runs finished, not 2"
    ;;
  *)
    echo "slurm_test: unknown case '$case_name'" >&2
    exit 2
    ;;
esac
echo "slurm_test $case_name: ok"
