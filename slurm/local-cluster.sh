#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for tests and trials by
# hand: Debian's slurm-wlm and munge, as root, without systemd or cgroups.
#
#   slurm/local-cluster.sh start DIR   # writes DIR/slurm.conf, starts munged, slurmctld, slurmd; waits for idle
#   slurm/local-cluster.sh stop DIR    # stops, by PID, everything start started
#   export SLURM_CONF=DIR/slurm.conf   # then sbatch, squeue, srun... talk to it
#
# Everything it starts is recorded in DIR/pids; stop kills exactly those.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

stop() {
  [[ -f "$dir/pids" ]] || return 0
  # Reverse order: slurmd, slurmctld, then munged.
  tac "$dir/pids" | while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$dir/pids"
}

wait_for_file() {  # file, seconds
  for _ in $(seq $(( $2 * 10 ))); do [[ -s "$1" ]] && return 0; sleep 0.1; done
  return 1
}

start() {
  if [[ $(id -u) -ne 0 ]]; then echo "$0: needs root" >&2; exit 1; fi
  trap 'echo "$0: start failed; stopping what was started" >&2; stop' ERR
  local host node
  host=$(hostname -s)
  node=$(slurmd -C | head -1)
  mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
  : > "$dir/pids"

  # munge: the package's key; socket and pid in /run/munge, owned by munge.
  mkdir -p /run/munge
  chown munge:munge /run/munge
  chmod 0755 /run/munge
  if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged --force
    wait_for_file /run/munge/munged.pid 10
    echo "munged $(cat /run/munge/munged.pid)" >> "$dir/pids"
  fi

  cat > "$dir/slurm.conf" <<CONF
ClusterName=edmips
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=${EDMIPS_SLURMCTLD_PORT:-6817}
SlurmdPort=${EDMIPS_SLURMD_PORT:-6818}
${node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"

  slurmctld -c -f "$SLURM_CONF"
  wait_for_file "$dir/slurmctld.pid" 20
  echo "slurmctld $(cat "$dir/slurmctld.pid")" >> "$dir/pids"
  slurmd -f "$SLURM_CONF"
  wait_for_file "$dir/slurmd.pid" 20
  echo "slurmd $(cat "$dir/slurmd.pid")" >> "$dir/pids"

  for _ in $(seq 600); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
      trap - ERR
      echo "slurm is up: export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.1
  done
  echo "$0: the node did not become idle within 60 s; see $dir/slurmctld.log and $dir/slurmd.log" >&2
  false
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
