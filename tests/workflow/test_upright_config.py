"""data.orientation through the real Snakefile: the decision reaches every job that turns images, the DAG does not
depend on it, and upright images are never turned over or mirrored.

The dry runs check the wiring: under the defaults every training, test-time view and augmentation-figure job gets
`--orientation auto` and the training images' pack report (the job decides when it runs, so a dry run shows every
job before anything is packed), and `workflow/configs/upright.yaml` trains only `plain` with the decision forced.
The slow test packs scikit-learn's digits (upright) and the same digits turned at random (no orientation) through
Snakemake under the defaults, then trains and predicts one small model: the pack report's decision, the closing
summary's first line, the model file's augmentation and the views of its predictions must agree with it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import SNAKEMAKE, workflow_copy
from deepsea.data.orientation import UPRIGHT_TILT

TURNING_RULES = ("train_convnet", "train_pseudolabel", "predict_tta", "augmentation_grid")
HOLDOUT = "splits: {scheme: holdout}\n"  # a few placeholder images: auto would plan k-fold, not the DAG checked


def _flat_images(root: Path) -> Path:
    """Two classes of three flat 8 px images and one test image: enough for a dry run."""
    for cls in ("six", "nine"):
        (root / "train" / cls).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(root / "train" / cls / f"{i}.png"), np.full((8, 8), 200, np.uint8))
    (root / "test").mkdir()
    cv2.imwrite(str(root / "test" / "1.png"), np.full((8, 8), 200, np.uint8))
    return root


def _dry_run(workdir: Path, *configfiles: str) -> str:
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "-p", "--configfile", *configfiles, "--", "final_submission"],
        cwd=workdir, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _turning_commands(stdout: str) -> list[str]:
    """The shell commands of the dry run's jobs that train, predict or draw augmented views."""
    commands = [line.removeprefix("Shell command: ") for line in stdout.splitlines()]
    return [c for c in commands if re.match(r"deepsea (train|predict|augment-grid) ", c)]


def test_every_job_that_turns_images_reads_the_decision(tmp_path: Path) -> None:
    data = _flat_images(tmp_path / "data")
    workdir = workflow_copy(tmp_path / "wf")
    (workdir / "mine.yaml").write_text(f"data: {{train_dir: {data}/train, test_dir: {data}/test}}\n{HOLDOUT}")
    stdout = _dry_run(workdir, "mine.yaml")
    turning = _turning_commands(stdout)
    assert len(turning) > 20  # the demo's convnets, bag, pseudo-label shards, their views, the figures
    assert all("--orientation auto --mirror auto --pack-report results/data/train_report.json" in c for c in turning)
    rules = set(re.findall(r"^rule (\w+):", stdout, flags=re.M))
    assert set(TURNING_RULES) <= rules  # every job is planned before anything is packed


def test_upright_config_trains_plain_only_with_the_decision_forced(tmp_path: Path) -> None:
    data = _flat_images(tmp_path / "data")
    workdir = workflow_copy(tmp_path / "wf")
    (workdir / "mine.yaml").write_text(f"data: {{train_dir: {data}/train, test_dir: {data}/test}}\n{HOLDOUT}")
    stdout = _dry_run(workdir, "workflow/configs/upright.yaml", "mine.yaml")
    trained = [json.loads(s) for s in re.findall(r"deepsea train --settings '([^']*)'", stdout)]
    assert {t["name"] for t in trained} == {
        "plain",
        "plain_bag1",
        "plain_bag2",
        *(f"plain_pl_shard{k}" for k in range(2)),  # config.yaml: pseudo_labels.shards
    }
    assert all(t["architecture"] == "plain" for t in trained)
    turning = _turning_commands(stdout)
    assert turning and all("--orientation upright --mirror forbidden" in c for c in turning)


def _digits(root: Path, turned: bool) -> Path:
    """scikit-learn's digits (first 300) as white-on-black PNGs; `turned`: each by a random multiple of 90 degrees,
    half of them mirrored, so that orientation carries nothing."""
    from sklearn.datasets import load_digits

    digits, rng = load_digits(), np.random.default_rng(0)
    for i, (image, label) in enumerate(zip(digits.images[:300], digits.target[:300], strict=True)):
        pixels = (image * 255 / 16).astype(np.uint8)
        if turned:
            pixels = np.ascontiguousarray(np.rot90(pixels[:, ::-1] if rng.random() < 0.5 else pixels, rng.integers(4)))
        folder = root / "train" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), pixels)
    (root / "test").mkdir()
    cv2.imwrite(str(root / "test" / "0.png"), (digits.images[300] * 255 / 16).astype(np.uint8))
    return root


ONE_SMALL_MODEL = """
models:
  plain:
    architecture: plain
    input_size: 16
    params: {widths: [8, 16], dense: 32}
    train: {steps: 10, batch_size: 16, eval_every: 10, checkpoint_every: 10, workers: 0}
tta: {views: 12}
fusion: {models: []}
ensemble: {models: [plain]}
submission: {source: ensemble, models: [plain]}
pseudo_labels: {models: {}}
"""


@pytest.mark.slow  # two Snakemake runs: pack, split, one small model trained and its validation views
@pytest.mark.parametrize("turned", [False, True], ids=["upright", "rotation-free"])
def test_pack_decides_and_upright_jobs_never_turn_over(tmp_path: Path, turned: bool) -> None:
    data = _digits(tmp_path / "data", turned)
    workdir = workflow_copy(tmp_path / "wf")
    data_yaml = f"data: {{train_dir: {data}/train, test_dir: {data}/test}}\n"
    (workdir / "mine.yaml").write_text(data_yaml + HOLDOUT + ONE_SMALL_MODEL)
    target = "results/predictions/plain/valid.tta.npy"
    result = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", "--configfile", "mine.yaml", "--", target],
        cwd=workdir, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    decision = "free" if turned else "upright"
    report = json.loads((workdir / "results/data/train_report.json").read_text())
    assert report["orientation_auto"] == decision and (report["upright_score"] > 0.85) is not turned
    assert report["orientation_override"] == f"data.orientation: {'upright' if turned else 'free'}"
    pack_log = (workdir / "results/logs/pack/train.log").read_text()
    assert f"data.orientation auto decides {decision}" in pack_log
    summary = [line for line in result.stderr.splitlines() if line.startswith("deepsea: ")]
    assert summary[0].startswith(f"deepsea: orientation {decision} (data.orientation auto: ")
    assert f"set data.orientation: {'upright' if turned else 'free'}" in summary[0]
    augmentation = torch.load(workdir / "results/models/plain/model.pt", weights_only=False)["settings"]["augmentation"]
    views = json.loads((workdir / "results/predictions/plain/valid.tta.meta.json").read_text())["views"]
    if turned:  # as before: any angle, mirrored
        assert (augmentation["rotation"], augmentation["flip"]) == (360.0, True)
        assert any(v["flip"] for v in views) and max(v["rotation"] for v in views) > 90
    else:
        assert (augmentation["rotation"], augmentation["flip"]) == (UPRIGHT_TILT, False)
        assert all(0 <= v["rotation"] < UPRIGHT_TILT and not v["flip"] for v in views)
