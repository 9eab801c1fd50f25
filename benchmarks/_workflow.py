"""What the quality benchmarks share: a fresh copy of a workflow to run Snakemake in."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_workflow(tree: Path, workdir: Path) -> None:
    """Snakefile, config.yaml, workflow/ and envs/ of the checkout `tree` into an empty `workdir`."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(tree / name, workdir)
    for name in ("workflow", "envs"):
        shutil.copytree(tree / name, workdir / name)
