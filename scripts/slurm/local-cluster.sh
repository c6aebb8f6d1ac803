#!/usr/bin/env bash
# A two-node Slurm on localhost for testing the batch scripts (tests/integration/test_slurm.py):
# slurmctld and one slurmd per node on this host (nodes node1 and node2, each of 2 CPUs, both
# at 127.0.0.1: Slurm's "multiple slurmd" emulation), one partition, a munge daemon with a key
# of its own. Every file (configuration, key, sockets, pid files, logs, state) lives in DIR.
#
#   scripts/slurm/local-cluster.sh start DIR   # installs what is missing, starts, waits
#   export SLURM_CONF=DIR/slurm.conf           # then sbatch, squeue, scontrol as usual
#   scripts/slurm/local-cluster.sh stop DIR    # cancels the jobs, stops every daemon
#
# Needs root (apt-get, and slurmd runs jobs as their user). Debian/Ubuntu packages:
# slurmctld slurmd slurm-client munge. Ports: SLURMCTLD_PORT (6817), SLURMD_PORTS (one per
# node, comma-separated: 6818,6819).
# Exit status 77: this machine cannot host the cluster (not root, no apt-get, the install
# failed); the reason is the last line on stderr. Any other failure is an error.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
IFS=, read -r -a PORTS <<< "${SLURMD_PORTS:-6818,6819}"
NODES=()
for i in "${!PORTS[@]}"; do NODES+=("node$((i + 1))"); done

die() { echo "local-cluster: $*" >&2; exit 1; }
cannot() { echo "local-cluster: cannot run Slurm here: $*" >&2; exit 77; }

install_missing() {
  local missing=() pkg policy=/usr/sbin/policy-rc.d
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || cannot "no apt-get to install ${missing[*]}"
  [ "$(id -u)" = 0 ] || cannot "installing ${missing[*]} needs root"
  echo "local-cluster: apt-get install ${missing[*]}" >&2
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends)
  local own_policy=0 rc=0
  if [ ! -e "$policy" ]; then  # the packages' own services stay stopped (invoke-rc.d policy)
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
  fi
  "${apt[@]}" "${missing[@]}" >&2 ||
    { apt-get update -q >&2 && "${apt[@]}" "${missing[@]}" >&2; } || rc=$?
  [ $own_policy = 0 ] || rm -f "$policy"
  [ $rc = 0 ] || cannot "apt-get install ${missing[*]} failed (exit status $rc)"
}

write_conf() {
  cat > "$dir/slurm.conf" <<EOF
ClusterName=trnbench
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
# no cgroups in a container: processes tracked by /proc, tasks not bound
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# the exit state of a finished job stays in \`scontrol show job\` for MinJobAge seconds
MinJobAge=600
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
EOF
  local i
  for i in "${!NODES[@]}"; do
    echo "NodeName=${NODES[$i]} NodeHostname=$(hostname -s) NodeAddr=127.0.0.1" \
      "Port=${PORTS[$i]} CPUs=2 State=UNKNOWN" >> "$dir/slurm.conf"
  done
  echo "PartitionName=local Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES" \
    "MaxTime=INFINITE State=UP" >> "$dir/slurm.conf"
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Our own record of each daemon's pid is DIR/NAME.job: the daemons write (and rewrite) their
# own pid files, which a poll could find empty for a moment.
daemon() {  # NAME CMD...: CMD in the foreground of a background job, its pid in DIR/NAME.job
  local name=$1
  shift
  "$@" </dev/null >>"$dir/$name.out" 2>&1 &
  echo $! > "$dir/$name.job"
}

wait_until() {  # DESCRIPTION CMD...: poll CMD for 30 s while every daemon lives
  local what=$1 i name
  shift
  for i in $(seq 60); do
    for name in munged slurmctld "${NODES[@]/#/slurmd-}"; do
      [ ! -e "$dir/$name.job" ] || alive "$dir/$name.job" ||
        die "$name exited: $(tail -n 3 "$dir/$name.log" 2>/dev/null || tail -n 3 "$dir/$name.out")"
    done
    "$@" >/dev/null 2>&1 && return
    sleep 0.5
  done
  die "$what: not after $((i / 2)) s"
}

nodes_idle() {
  local node
  for node in "${NODES[@]}"; do scontrol show node "$node" | grep -q State=IDLE || return 1; done
}

start() {
  [ "$(id -u)" = 0 ] || cannot "slurmd must run as root to start jobs"
  [ ${#dir} -lt 80 ] || die "DIR is too long for a unix socket path: $dir"
  install_missing
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool"
  chmod 700 "$dir/munge"
  write_conf
  export SLURM_CONF=$dir/slurm.conf
  trap stop EXIT  # a failed start leaves nothing running
  local socket=$dir/munge/munge.socket.2 key=$dir/munge/munge.key
  dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
  chmod 400 "$key"
  # --force: the socket directory is private to root, the only user of this cluster
  daemon munged munged --foreground --force --key-file="$key" --socket="$socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
  wait_until "munged answering on $socket" munge --no-input --socket="$socket"
  daemon slurmctld slurmctld -D -c
  local node
  for node in "${NODES[@]}"; do
    mkdir -p "$dir/spool/$node"
    daemon "slurmd-$node" slurmd -D -N "$node"
  done
  wait_until "nodes ${NODES[*]} idle" nodes_idle
  trap - EXIT
  echo "local-cluster: up; export SLURM_CONF=$SLURM_CONF" >&2
}

stop() {  # cancel the jobs; TERM the daemons, KILL after 15 s, an error if one outlives that
  local i name pids=()
  export SLURM_CONF=$dir/slurm.conf
  if alive "$dir/slurmctld.job"; then
    scancel --user=root 2>/dev/null || true
    for i in $(seq 30); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  for name in "${NODES[@]/#/slurmd-}" slurmctld munged; do
    if alive "$dir/$name.job"; then pids+=("$(cat "$dir/$name.job")"); fi
  done
  [ ${#pids[@]} -eq 0 ] && return
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for i in $(seq 40); do
    kill -0 "${pids[@]}" 2>/dev/null || { rm -f "$dir"/*.job; return; }
    if [ "$i" = 30 ]; then
      echo "local-cluster: killing what ignored TERM" >&2
      kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
    sleep 0.5
  done
  die "still running: $(ps -o pid=,args= -p "${pids[@]}" || true)"
}

case "${1:-}:${2:-}" in
  start:?*) dir=$2; start ;;
  stop:?*) dir=$2; stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
