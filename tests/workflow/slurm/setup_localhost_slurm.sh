#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for `make test-slurm` (facts: ../shared/notes/localhost-slurm.md).
# Installs Debian's slurmctld, slurmd, slurm-client, slurmdbd, munge and mariadb-server, then starts munged,
# MariaDB, slurmdbd, slurmctld and slurmd by hand (no systemd). Partitions `cpu` (default) and `gpu`, a fake GRES
# gpu:1 (File=/dev/null), select/cons_tres, DefMemPerCPU so jobs share the node, accounting through slurmdbd
# (the executor plugin polls sacct). Needs root and apt. Idempotent: a running cluster is left alone.
# Undo with tests/workflow/slurm/teardown_localhost_slurm.sh.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "setup_localhost_slurm: needs root (it installs packages and starts daemons)" >&2
    exit 1
fi
if sinfo -h -p gpu >/dev/null 2>&1 && [ -n "$(sinfo -h -p gpu -o %a 2>/dev/null)" ]; then
    echo "setup_localhost_slurm: a cluster is already up"; sinfo; exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v mariadbd >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge slurmdbd mariadb-server >/dev/null
fi

HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
RUN=/run/deepsea-slurm  # pid files, logs and state of this test cluster
mkdir -p "$RUN" /var/spool/slurmctld /var/spool/slurmd /etc/slurm

# munge: authentication between the daemons
mkdir -p /run/munge && chown munge: /run/munge
[ -f /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge: /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
pgrep -u munge munged >/dev/null || su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/munged.pid"
munge -n | unmunge >/dev/null

# MariaDB for slurmdbd (sacct needs accounting)
mkdir -p /run/mysqld && chown mysql: /run/mysqld
if ! mysqladmin ping --silent 2>/dev/null; then
    (mariadbd --user=mysql --pid-file=/run/mysqld/mariadbd.pid >"$RUN/mariadbd.log" 2>&1 &)
    for _ in $(seq 60); do mysqladmin ping --silent 2>/dev/null && break; sleep 0.5; done
fi
mysql -u root <<'SQL'
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'deepsea-test';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$RUN/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=deepsea-test
StorageLoc=slurm_acct_db
CONF
chmod 600 /etc/slurm/slurmdbd.conf

cat >/etc/slurm/slurm.conf <<CONF
ClusterName=deepsea
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$RUN/slurmctld.log
SlurmdLogFile=$RUN/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
MinJobAge=300
ReturnToService=2
DefMemPerCPU=1000
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
CONF
cat >/etc/slurm/gres.conf <<CONF
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/null
CONF

/usr/sbin/slurmdbd
for _ in $(seq 60); do sacctmgr -n -P show cluster >/dev/null 2>&1 && break; sleep 0.5; done
sacctmgr -i add cluster deepsea >/dev/null 2>&1 || true
/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 60); do [ "$(sinfo -h -p gpu -o %t 2>/dev/null)" = idle ] && break; sleep 0.5; done
sinfo
echo "setup_localhost_slurm: cluster 'deepsea' up on $HOST ($CPUS CPUs, gpu:1 fake GRES)"
