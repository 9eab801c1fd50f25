"""The one-GPU preset (workflow/configs/gpu.yaml) plans its whole DAG for a user's folder, and its length follows
the data: full-width Deep Sea architectures, inputs from the images, training in epochs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepsea.nets.families import FAMILY
from deepsea.workflow.config_loader import load_workflow_config
from test_workflow import REPO, SNAKEMAKE, _workdir

CLASSES, PER_CLASS = 6, 3
HOLDOUT = "splits: {scheme: holdout}\n"  # a few placeholder images: auto would plan k-fold, not the DAG checked


@pytest.fixture(scope="module")
def gpu_dry_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("mine")
    image = np.full((40, 30), 200, np.uint8)
    for c in range(CLASSES):
        (root / "train" / f"class_{c}").mkdir(parents=True)
        for i in range(PER_CLASS):
            cv2.imwrite(str(root / "train" / f"class_{c}" / f"{c}_{i}.png"), image)
    (root / "test").mkdir()
    cv2.imwrite(str(root / "test" / "new.png"), image)
    workdir = _workdir(tmp_path_factory.mktemp("gpu") / "wf")
    (workdir / "mine.yaml").write_text(f"data: {{train_dir: {root}/train, test_dir: {root}/test}}\n{HOLDOUT}")
    command = [
        *SNAKEMAKE,
        "-n",
        "-p",
        "--configfile",
        "workflow/configs/gpu.yaml",
        "mine.yaml",
        "--",
        "final_submission",
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_preset_plans_every_stage(gpu_dry_run: str) -> None:
    trained = set(re.findall(r"output: results/models/([^/]+)/model.pt", gpu_dry_run))
    assert trained == {
        "convroll4", "convroll4_bag1", "convroll4_bag2", "cr4_ds", "convroll4_doublescale_fs5", "cp8",
        "doublescale_pl_shard0", "doublescale_pl_shard1", "doublescale_pl_shard2",
    }  # fmt: skip
    for rule in ("fuse_features", "ensemble", "fit_final_weight", "choose_views", "submit", "ablation"):
        assert f"rule {rule}:" in gpu_dry_run or f"localrule {rule}:" in gpu_dry_run, rule


def test_the_preset_trains_full_width_in_epochs_at_sizes_from_the_data() -> None:
    config = load_workflow_config(REPO, [REPO / "workflow/configs/gpu.yaml"])
    for name, entry in config["models"].items():
        assert entry["architecture"] in FAMILY, name  # the Deep Sea architectures
        assert "width" not in entry["params"] and "depth" not in entry["params"], name  # at full width and depth
        assert entry["input_size"] == "auto" and "epochs" in entry["train"] and "steps" not in entry["train"], name
    assert config["tta"]["views"] == 70 and config["tta"]["mean"] == "arithmetic"  # the original's TTA
    assert config["pseudo_labels"]["models"] and config["submission"]["source"] == "final"


@pytest.mark.slow
def test_the_gpu_budget_is_what_the_preset_says(tmp_path: Path) -> None:
    """The preset's comment states its hours; benchmarks/gpu_budget.py derives them from the models' FLOPs."""
    text = (REPO / "workflow/configs/gpu.yaml").read_text()
    hours = float(re.search(r"about (\d+(?:\.\d+)?) hours of GPU time", text).group(1))
    result = subprocess.run(
        [SNAKEMAKE[0], str(REPO / "benchmarks/gpu_budget.py")], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    estimated = float(re.search(r'"total": ([\d.]+)', result.stdout).group(1))
    assert abs(estimated - hours) <= 0.5, (estimated, hours)
