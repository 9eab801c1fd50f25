#!/usr/bin/env bash
# Stop the test cluster of setup_localhost_slurm.sh: each daemon by its pid file, never by name.
set -u
RUN=/run/deepsea-slurm
for pid_file in "$RUN/slurmd.pid" "$RUN/slurmctld.pid" "$RUN/slurmdbd.pid" /run/mysqld/mariadbd.pid /run/munge/munged.pid; do
    if [ -f "$pid_file" ]; then
        pid=$(cat "$pid_file")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        rm -f "$pid_file"
    fi
done
# With a config but no controller, `scontrol show config` waits 9 s for one, and the SLURM executor plugin runs it
# whenever Snakemake starts (every `snakemake` call, any executor); with no config it fails at once. Setup writes
# these files again.
rm -f /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf /etc/slurm/gres.conf
echo "teardown_localhost_slurm: stopped"
