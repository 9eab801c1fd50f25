"""The SLURM profile on a real (localhost) SLURM: GPU rules land in partition `gpu` with a GPU, the rest in `cpu`.

Run by `make test-slurm`, which starts the one-node cluster of `setup_localhost_slurm.sh` first. Skipped where no
SLURM controller answers. The profile under test is `workflow/profiles/slurm` itself, with only memory and time
scaled down to the test node (partitions and GPU requests are kept as the user gets them), so the placement
assertions fail as soon as the profile stops routing a rule.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SNAKEMAKE, TINY_CONFIG, workflow_copy

pytestmark = pytest.mark.slurm

GPU_RULES = {"train_convnet", "train_pseudolabel", "predict_tta"}


def _cluster_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    result = subprocess.run(["sinfo", "-h", "-p", "gpu", "-o", "%a"], capture_output=True, text=True)
    return result.returncode == 0 and "up" in result.stdout


def _test_profile(workdir: Path) -> Path:
    """workflow/profiles/slurm with memory and time scaled to a one-node test cluster."""
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    profile["default-resources"].update(mem_mb=500, runtime=30)
    for resources in profile["set-resources"].values():
        resources.update(mem_mb=1000, runtime=30, cpus_per_gpu=1)
    profile["latency-wait"] = 5
    out = workdir / "slurm-test-profile"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(profile))
    return out


def _jobs_by_rule(workdir: Path) -> dict[str, list[str]]:
    """SLURM job ids per rule, from the executor's log tree .snakemake/slurm_logs/rule_<rule>/.../<jobid>.log."""
    jobs: dict[str, list[str]] = {}
    logs = workdir / ".snakemake" / "slurm_logs"
    for log in logs.rglob("*.log"):
        rule_dir = next(part for part in log.relative_to(logs).parts if part.startswith("rule_"))
        jobs.setdefault(rule_dir.removeprefix("rule_"), []).append(log.stem)
    return jobs


@pytest.mark.skipif(not _cluster_up(), reason="no SLURM cluster (make test-slurm starts one)")
def test_gpu_rules_on_gpu_partition_and_same_submission(tmp_path: Path) -> None:
    local = workflow_copy(tmp_path / "local")
    result = subprocess.run(
        [*SNAKEMAKE, "--configfile", "tiny.yaml", "--cores", "2", "final_submission"],
        cwd=local,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    cluster = workflow_copy(tmp_path / "cluster")
    (cluster / "tiny.yaml").write_text(TINY_CONFIG)
    profile = _test_profile(cluster)
    result = subprocess.run(
        [
            *SNAKEMAKE,
            "--configfile",
            "tiny.yaml",
            "--profile",
            str(profile),
            "--slurm-init-seconds-before-status-checks",
            "2",
            "--slurm-keep-successful-logs",  # the job ids per rule are read from the executor's log tree
            "final_submission",
        ],
        cwd=cluster,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    jobs = _jobs_by_rule(cluster)
    assert GPU_RULES <= set(jobs), sorted(jobs)
    ids = [job for rule_jobs in jobs.values() for job in rule_jobs]
    sacct = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-j", ",".join(ids), "-o", "JobID,Partition,AllocTRES,State"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    placed = {line.split("|")[0]: line.split("|") for line in sacct.splitlines() if line}
    for rule, rule_jobs in jobs.items():
        for job in rule_jobs:
            _, partition, tres, state = placed[job]
            assert state == "COMPLETED", (rule, job, state)
            if rule in GPU_RULES:
                assert partition == "gpu" and "gres/gpu=1" in tres, (rule, job, partition, tres)
            else:
                assert partition == "cpu" and "gres/gpu" not in tres, (rule, job, partition, tres)

    submission = "results/submission/submission.csv.gz"
    assert (cluster / submission).read_bytes() == (local / submission).read_bytes()
