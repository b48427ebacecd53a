#!/bin/bash
# A single-node Slurm cluster on this machine, for testing the job-array script (Debian 12:
# apt-get install slurm-wlm munge). Everything lives under $BLCONVERT_SLURM_DIR
# (default /tmp/blconvert-slurm); only the daemons started here are stopped, by their pid files.
#
#   tools/slurm/local_cluster.sh start    # munged (if not running), slurmctld, slurmd; waits for the node
#   tools/slurm/local_cluster.sh stop
#   export SLURM_CONF=$(tools/slurm/local_cluster.sh conf)
set -euo pipefail
DIR=${BLCONVERT_SLURM_DIR:-/tmp/blconvert-slurm}
CONF=$DIR/slurm.conf
HOST=$(hostname)

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null >/dev/null 2>&1; then
        return  # a munged is already serving
    fi
    [ -f /etc/munge/munge.key ] || mungekey -c
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
    cp /run/munge/munged.pid "$DIR/munged.pid"
}

write_conf() {
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat > "$CONF" <<CONF
ClusterName=blconvert-local
SlurmctldHost=$HOST
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$HOST CPUs=2 State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
}

case "${1:-}" in
start)
    mkdir -p "$DIR"
    start_munge
    write_conf
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
    for _ in $(seq 100); do
        state=$(SLURM_CONF=$CONF sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
        case "$state" in idle*|mixed*|allocated*) echo "slurm: node $HOST $state (SLURM_CONF=$CONF)"; exit 0 ;; esac
        sleep 0.2
    done
    echo "slurm: the node did not come up; see $DIR/log" >&2
    exit 1
    ;;
stop)
    for d in slurmd slurmctld munged; do
        if alive "$DIR/$d.pid"; then kill "$(cat "$DIR/$d.pid")"; fi
        rm -f "$DIR/$d.pid"
    done
    echo "slurm: stopped"
    ;;
conf)
    echo "$CONF"
    ;;
*)
    echo "usage: $0 start|stop|conf" >&2
    exit 2
    ;;
esac
