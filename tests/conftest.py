"""Shared by tests/unit and tests/workflow: a tiny demo data set and the full demo run (generated once per test
session), and the helpers that run the real Snakefile in a temporary copy of the workflow."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepsea.data.demo import DemoSettings, make_demo_data

REPO = Path(__file__).parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
DEMO_ARGS = ["--cores", "2", "--rerun-incomplete", "final_submission"]  # --rerun-incomplete: for run B's restarts
TINY_CONFIG = """
demo: {n_train: 150, n_test: 40, classes: 4, seed: 1}
splits: {scheme: holdout}  # auto would take k-fold for 150 images: these tests check the hold-out DAG
threads: {pack: 2, train: 1, predict: 2}  # a TTA worker process (the demo's predict threads are 1: no worker)
tta: {views: 10}
fusion: {copies: 2, epochs: 5, models: &blended [plain, cr4_ds, convroll4_doublescale_fs5]}
ensemble: {models: *blended}  # the demo's lists name its probe, which this config's models leave out
submission: {models: *blended}
models:  # replaces the demo's models (a user's `models:` is not merged with them)
  plain:
    architecture: plain
    input_size: 24
    params: {widths: [8, 16], dense: 32}
    bags: [1, 2]
    augmentation: {translation: 3}
    train: {steps: 120, batch_size: 16, learning_rate: 0.01, weight_decay: 0.0005, eval_every: 40,
            checkpoint_every: 40}  # workers: 1 (the default): batches made in a DataLoader worker, as in the demo
  convroll4:
    architecture: convroll4
    input_size: 15
    params: {width: 0.125, depth: 2, dense: 16, dropout: 0.2}
    augmentation: {translation: 3}
    train: {steps: 60, batch_size: 16, weight_decay: 0.0005, eval_every: 30, checkpoint_every: 30, workers: 0}
  cr4_ds:
    architecture: cr4_ds
    input_size: 15
    params: {width: 0.125, depth: 2, dense: 16, dropout: 0.2}
    augmentation: {translation: 3}
    train: {steps: 40, batch_size: 16, weight_decay: 0.0005, eval_every: 20, checkpoint_every: 20, workers: 0}
  convroll4_doublescale_fs5:
    architecture: convroll4_doublescale_fs5
    input_size: 15
    params: {width: 0.125, depth: 2, dense: 16, dropout: 0.2}
    augmentation: {translation: 3}
    train: {steps: 40, batch_size: 16, weight_decay: 0.0005, eval_every: 20, checkpoint_every: 20, workers: 0}
"""  # the SLURM profile test's config (tests/workflow/slurm): the demo's DAG shape in about a minute


def workflow_copy(tmp: Path) -> Path:
    """A copy of the workflow (Snakefile, workflow/, config.yaml, envs/) with a tiny config beside it."""
    tmp.mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", tmp)
    shutil.copy(REPO / "config.yaml", tmp)
    shutil.copytree(REPO / "workflow", tmp / "workflow")
    shutil.copytree(REPO / "envs", tmp / "envs")
    (tmp / "tiny.yaml").write_text(TINY_CONFIG)
    return tmp


CPU_ONLY = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the same bytes are promised on CPU: `device: auto` -> cpu


def run_snakemake(workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args], cwd=workdir, env=CPU_ONLY, capture_output=True, text=True, timeout=timeout
    )


def wait_for(condition, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def planned_jobs(output: str) -> list[tuple[str, str]]:
    """(rule, first output) of every job a dry run plans."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        out = re.search(r"^\s+output: ([^,\n]+)", block, flags=re.M)
        if rule:
            jobs.append((rule.group(1), out.group(1) if out else ""))
    return jobs


TINY_DEMO = DemoSettings(n_train=160, n_test=40, n_classes=4, seed=3, imbalance=0.35)


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<dir>/train/<class>/*.jpg`, `<dir>/test/*.jpg`, `<dir>/test_labels.csv` with 4 classes."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    make_demo_data(out, TINY_DEMO, workers=1)
    return out


@pytest.fixture(scope="session")
def tiny_packed(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny demo packed (train/test .npz) with its standard validation split."""
    from deepsea.data.imageset import ImageSet
    from deepsea.data.pack import pack
    from deepsea.data.splits import stratified_split
    from deepsea.io import write_json

    out = tmp_path_factory.mktemp("packed")
    pack(tiny_demo / "train", "train", out / "train.npz", out / "train_report.json")
    pack(tiny_demo / "test", "test", out / "test.npz", out / "test_report.json")
    data = ImageSet.load(out / "train.npz")
    split = stratified_split(data.ids, data.labels, data.class_names, 0.2, seed=0)
    write_json(out / "valid.json", split.to_json())
    return {"train": out / "train.npz", "test": out / "test.npz", "split": out / "valid.json"}


def train_tiny(settings: dict, packed: dict[str, Path], out_dir: Path) -> Path:
    """Train a model from a settings dict on the tiny packed set; return the model file."""
    import json

    from deepsea.training.loop import train
    from deepsea.training.settings import load_model_settings

    train(
        load_model_settings(json.dumps(settings)),
        packed["train"],
        packed["split"],
        out_dir / "model.pt",
        out_dir / "log.csv",
    )
    return out_dir / "model.pt"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run A of tests/workflow/test_workflow.py: `make run`'s DAG on the shipped config, uninterrupted (shared with
    tests/workflow/test_classify.py, which uses its model bundle)."""
    workdir = workflow_copy(tmp_path_factory.mktemp("run_a") / "wf")
    result = run_snakemake(workdir, *DEMO_ARGS, timeout=3600)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir
