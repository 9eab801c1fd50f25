"""What the quality benchmarks share: a fresh copy of a workflow to run Snakemake in, and the run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def copy_workflow(tree: Path, workdir: Path) -> None:
    """Snakefile, config.yaml, workflow/ and envs/ of the checkout `tree` into an empty `workdir`."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(tree / name, workdir)
    for name in ("workflow", "envs"):
        shutil.copytree(tree / name, workdir / name)


def final_submission(workdir: Path, configfile: str, cores: int) -> None:
    """`snakemake --cores N --configfile F -- final_submission` in `workdir`; its output goes to
    `workdir/snakemake.log`, and a failure stops the benchmark naming that log."""
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--configfile", configfile, "--",
               "final_submission"]  # fmt: skip
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    (workdir / "snakemake.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"snakemake failed ({workdir / 'snakemake.log'}):\n{result.stderr[-3000:]}")
