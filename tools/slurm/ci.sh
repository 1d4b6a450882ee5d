#!/usr/bin/env bash
# Runs the README's Slurm recipe for real: installs Debian's Slurm and munge,
# starts a one-node cluster on this machine (root, no cgroups, no accounting),
# submits tools/slurm/fill-array.sbatch (a 3-task array of `plugen fill
# --shard`), merges the shards and checks the result is byte-identical to one
# unsharded run. The daemons are stopped by their process ids at the end.
# Usage: tools/slurm/ci.sh [PLUGEN_BINARY]   (default: target/release/plugen)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin=$(realpath "${1:-target/release/plugen}")
# The README shows the recipe's lines as they are in the file CI submits.
if ! diff <(sed -n '/^#SBATCH --job-name/,/--shard/p' tools/slurm/fill-array.sbatch) \
  <(sed -n '/^  #SBATCH --job-name/,/--shard/p' README.md | sed 's/^  //'); then
  echo "slurm: README's recipe and tools/slurm/fill-array.sbatch differ (above)"; exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "slurm: installing slurmctld slurmd slurm-client munge"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
fi
work=$(mktemp -d /tmp/plugen-slurm.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}
trap cleanup EXIT

# munge: its own key and socket in the work folder.
mkdir -p "$work/munge" && chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed"
pids+=("$(cat "$work/munge/munged.pid")")
export MUNGE_SOCKET="$work/munge/socket"

host=$(hostname -s)
mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" <<CONF
ClusterName=plugen-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF="$work/slurm.conf"
slurmctld -f "$SLURM_CONF"
for _ in $(seq 100); do [ -s "$work/slurmctld.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmctld.pid")")
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do [ -s "$work/slurmd.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/slurmd.pid")")
for _ in $(seq 150); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)' && break
  sleep 0.2
done
sinfo -h -o "%P %T %D" || { tail -20 "$work"/slurm*.log; exit 1; }

# The job: plugen on the PATH, a skewed label table, the recipe file as it is.
mkdir -p "$work/job/bin" && ln -s "$bin" "$work/job/bin/plugen"
export PATH="$work/job/bin:$PATH"
cd "$work/job"
{
  echo "file_name,smile,male"
  for i in $(seq 0 29); do echo "m$i.png,0,1"; done
  for i in $(seq 0 9); do echo "f$i.png,0,0"; done
  for i in $(seq 0 4); do echo "s$i.png,1,1"; done
} > have.csv
sbatch --wait "$root/tools/slurm/fill-array.sbatch" || { cat slurm-*.out; tail -20 "$work"/slurm*.log; exit 1; }
cat slurm-*.out
plugen merge filled shards/0 shards/1 shards/2
plugen fill --have have.csv --by smile,male --total 90 --seed 1 --out whole >/dev/null
diff -r whole filled
echo "slurm: 3 array tasks merged byte-identically to one unsharded run ($(ls filled | wc -l) files)"
cd "$root" && cleanup && rm -rf "$work"
