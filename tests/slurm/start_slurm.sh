#!/usr/bin/env bash
# Starts a private SLURM on this machine for the slurm tests: munged, slurmctld and slurmd
# (Debian's slurm-wlm and munge), run as root without systemd, every file under DIR. NODES (1 or
# 2) emulated nodes share the machine, each with CPUS cores. Prints the environment to use it
# (SLURM_CONF=...) on its last line; DIR/stop.sh stops it again. Exits 77 with the reason when
# SLURM cannot start here (the tests then skip).
# Usage: tests/slurm/start_slurm.sh DIR [NODES] [CPUS]
set -euo pipefail
dir=$1
nodes=${2:-1}
cpus=${3:-2}
skip() {
  echo "start_slurm: cannot start SLURM: $*" >&2
  exit 77
}
for tool in munged slurmctld slurmd sbatch; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null ||
    skip "$tool is not installed (Debian packages slurm-wlm and munge)"
done
export PATH=$PATH:/usr/sbin
[[ $(id -u) == 0 ]] || skip "slurmd must run as root"
mkdir -p "$dir"/{munge,state,spool,log}
dir=$(cd "$dir" && pwd)
chmod 700 "$dir/munge"

# munge: a fresh key, its own socket.
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
  --seed-file="$dir/munge/munged.seed" || skip "munged did not start ($dir/log/munged.log)"

# One node per emulated node name, all on localhost with their own ports.
host=$(hostname -s)
node_lines=""
for ((n = 1; n <= nodes; n++)); do
  node_lines+="NodeName=node$n NodeHostname=$host NodeAddr=127.0.0.1 Port=$((17000 + n)) CPUs=$cpus RealMemory=1000 State=UNKNOWN"$'\n'
done
cat >"$dir/slurm.conf" <<CONF
ClusterName=dgqatest
# Per node: PMIx makes its directories there, which the emulated nodes would otherwise share.
TmpFS=$dir/tmp/%n
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/spool/%n/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerParameters=defer_batch,bf_interval=1
JobRequeue=1
KillWait=60
MinJobAge=300
InactiveLimit=0
$node_lines
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF=$dir/slurm.conf

slurmctld -f "$SLURM_CONF" -i || skip "slurmctld did not start ($dir/log/slurmctld.log)"
for ((n = 1; n <= nodes; n++)); do
  mkdir -p "$dir/spool/node$n" "$dir/tmp/node$n"
  slurmd -f "$SLURM_CONF" -N "node$n" || skip "slurmd node$n did not start ($dir/log)"
done
cat >"$dir/stop.sh" <<STOP
#!/usr/bin/env bash
# Stops the SLURM that start_slurm.sh started in $dir: its jobs first, then its daemons, waiting
# until they are gone (so that $dir can be removed).
export SLURM_CONF=$dir/slurm.conf PATH=\$PATH:/usr/sbin
jobs=\$(squeue -h -o %i 2>/dev/null)
[[ -n \$jobs ]] && scancel --full \$jobs 2>/dev/null
for i in \$(seq 50); do
  [[ -z \$(squeue -h -o %i 2>/dev/null) ]] && break
  sleep 0.2
done
pkill -f -- "-f $dir/slurm.conf"
[[ -f $dir/munge/munged.pid ]] && kill "\$(cat $dir/munge/munged.pid)" 2>/dev/null
for i in \$(seq 50); do
  pgrep -f -- "-f $dir/slurm.conf" >/dev/null || exit 0
  sleep 0.2
done
pkill -KILL -f -- "-f $dir/slurm.conf"
exit 0
STOP
chmod +x "$dir/stop.sh"

# Ready when every node is idle.
for i in $(seq 100); do
  idle=$(sinfo -h -o '%T %D' 2>/dev/null | awk '$1=="idle"{n+=$2} END{print n+0}')
  ((idle == nodes)) && {
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  }
  sleep 0.2
done
"$dir/stop.sh"
skip "the nodes did not become idle (sinfo: $(sinfo 2>&1 | tail -n +2 | tr '\n' ' '); logs in $dir/log)"
