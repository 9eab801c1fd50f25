"""workflow/configs/upright.yaml (data whose orientation tells classes apart) plans what its comments promise, and the
run's closing summary points to it when the images look upright.

A dry run with the file and a user's `data:`-only file must train only the `plain` architecture (the others are
rotation-invariant by construction), and neither training augmentation nor any test-time view may flip an image or
turn it by more than the file's 10 degrees: one default left in would turn a 6 into a 9.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from test_workflow import SNAKEMAKE, _workdir


def test_upright_config_never_flips_or_turns_over(tmp_path: Path) -> None:
    for cls in ("six", "nine"):
        (tmp_path / "data" / "train" / cls).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "data" / "train" / cls / f"{i}.png"), np.full((8, 8), 200, np.uint8))
    (tmp_path / "data" / "test").mkdir()
    cv2.imwrite(str(tmp_path / "data" / "test" / "1.png"), np.full((8, 8), 200, np.uint8))
    workdir = _workdir(tmp_path / "wf")
    data = f"data: {{train_dir: {tmp_path}/data/train, test_dir: {tmp_path}/data/test}}\n"
    (workdir / "mine.yaml").write_text(data)
    result = subprocess.run(
        [
            *SNAKEMAKE,
            "-n",
            "-p",
            "--configfile",
            "workflow/configs/upright.yaml",
            "mine.yaml",
            "--",
            "final_submission",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trained = [json.loads(s) for s in re.findall(r"deepsea train --settings '([^']*)'", result.stdout)]
    assert {t["name"] for t in trained} == {
        "plain",
        "plain_bag1",
        "plain_bag2",
        *(f"plain_pl_shard{k}" for k in range(2)),  # config.yaml: pseudo_labels.shards
    }
    assert all(t["architecture"] == "plain" for t in trained)
    assert all(not t["augmentation"]["flip"] and t["augmentation"]["rotation"] <= 10 for t in trained)
    views = [json.loads(s) for s in re.findall(r"--tta '([^']*)'", result.stdout)]
    assert views and all(not v["flip"] and v["rotation"] <= 10 for v in views)


@pytest.mark.slow  # two real Snakemake runs of `pack`
def test_closing_summary_warns_about_upright_images_only_under_a_turning_config(tmp_path: Path) -> None:
    """The wiring of the upright check (pack -> report -> the Snakefile's closing summary) on real upright images:
    scikit-learn's digits warn under the defaults, which turn them over, and not under upright.yaml."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:300], digits.target[:300], strict=True)):
        folder = tmp_path / "data" / "train" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), (255 - image * 255 / 16).astype(np.uint8))
    (tmp_path / "data" / "test").mkdir()
    workdir = _workdir(tmp_path / "wf")
    (workdir / "mine.yaml").write_text(f"data: {{train_dir: {tmp_path}/data/train, test_dir: {tmp_path}/data/test}}\n")
    summaries = {}
    for name, files in {"defaults": ["mine.yaml"], "upright": ["workflow/configs/upright.yaml", "mine.yaml"]}.items():
        result = subprocess.run(
            [*SNAKEMAKE, "--cores", "1", "--forcerun", "pack", "--configfile", *files, "--", "results/data/train.npz"],
            cwd=workdir, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        summaries[name] = next(line for line in result.stderr.splitlines() if line.startswith("  train: 300 images"))
    assert "WARNING the training images look upright" in summaries["defaults"]
    assert "workflow/configs/upright.yaml" in summaries["defaults"]
    assert "WARNING" not in summaries["upright"]
