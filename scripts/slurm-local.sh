#!/usr/bin/env bash
# A single-node Slurm for tests, from Debian's slurm-wlm and munge, run as root:
#   scripts/slurm-local.sh start STATE_DIR   writes a munge key, slurm.conf for this host, starts
#                                            munged, slurmctld and slurmd, waits until the node is idle
#   scripts/slurm-local.sh stop STATE_DIR    stops exactly the daemons it started (by PID)
# Daemons, their logs, spool and PID files all live under STATE_DIR; nothing system-wide is changed
# except that sbatch / squeue / sacct need SLURM_CONF=STATE_DIR/slurm.conf (printed by start).
set -euo pipefail
action="${1:?start|stop}"; state="$(realpath -m "${2:?state dir}")"

stop() {
  for name in slurmd slurmctld munged; do
    local pidfile="$state/$name.pid"
    if [[ -f "$pidfile" ]]; then
      local pid; pid="$(cat "$pidfile")"
      if kill "$pid" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
      fi
      rm -f "$pidfile"
    fi
  done
}

if [[ "$action" == stop ]]; then stop; exit 0; fi
[[ "$action" == start ]] || { echo "usage: $0 start|stop STATE_DIR" >&2; exit 2; }
[[ "$(id -u)" == 0 ]] || { echo "skip: starting Slurm daemons needs root" >&2; exit 77; }
for bin in munged slurmctld slurmd sbatch squeue sinfo; do
  command -v "$bin" >/dev/null || { echo "skip: $bin not installed (apt-get install slurm-wlm munge)" >&2; exit 77; }
done

mkdir -p "$state"/{munge,spool/ctld,spool/d,log}
chmod 700 "$state/munge"
host="$(hostname -s)"
cpus="$(nproc)"
memory="$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)"

# munge: its own key, socket and PID file under STATE_DIR.
dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$state/munge/munge.key"
munged --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
  --pid-file="$state/munged.pid" --log-file="$state/log/munged.log" --seed-file="$state/munge/munge.seed" --force

cat > "$state/slurm.conf" <<CONF
ClusterName=chainlora-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MaxArraySize=10000
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$state/slurm.conf"

slurmctld -i -f "$SLURM_CONF" -L "$state/log/slurmctld.log"
slurmd -f "$SLURM_CONF" -L "$state/log/slurmd.log"
for _ in $(seq 100); do
  if sinfo -h -N -o '%t' 2>/dev/null | grep -qx 'idle'; then echo "SLURM_CONF=$SLURM_CONF"; exit 0; fi
  sleep 0.2
done
echo "Slurm did not come up; logs in $state/log" >&2
tail -n 5 "$state/log/"*.log >&2 || true
stop
exit 1
