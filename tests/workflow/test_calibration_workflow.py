"""Calibration in the workflow, on the demo run of tests/workflow/test_workflow.py (conftest: demo_run).

- The temperature is fitted on the final blend rebuilt without the ensemble's in-sample weights and adopted only on
  evidence; the submission, the ablation's last row and the model bundle all use the temperature it wrote.
- With `calibration: none` nothing else changes: only the submission and what reads it rerun, and the submission is
  the same bytes as the final blend's test prediction submitted by hand (what the workflow submitted before
  calibration existed).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import planned_jobs, run_snakemake
from deepsea.blending.temperature import apply_temperature
from deepsea.predictions import Predictions

pytestmark = pytest.mark.slow


def test_the_demo_run_is_calibrated_with_the_temperature_it_fitted(demo_run: Path) -> None:
    fit = json.loads((demo_run / "results/calibration/temperature.json").read_text())
    assert fit["stage"] == ["results/final/valid.npy"] and fit["valid_images"] == 80
    assert fit["honest"] == "out-of-fold ensemble blend"
    adopted = fit["adoption"]["adopted"] == "fitted"
    assert fit["temperature"] == (fit["fitted_temperature"] if adopted else 1.0)
    assert fit["valid_log_loss"]["fitted_in_sample"] <= fit["valid_log_loss"]["uncalibrated"]
    final = Predictions.load(demo_run / "results/final/test.npy")
    calibrated = Predictions.load(demo_run / "results/calibration/test.npy")
    np.testing.assert_array_equal(calibrated.probs, apply_temperature(final.probs, fit["temperature"]))
    ablation = list(csv.DictReader((demo_run / "results/report/ablation.csv").open()))
    assert ablation[-1]["what"].startswith("+ calibration (temperature")
    bundle = json.loads((demo_run / "results/bundle/bundle.json").read_text())
    assert bundle["temperature"] == fit["temperature"]
    with np.load(demo_run / "results/bundle/validation.npz") as validation:
        valid = Predictions.load(demo_run / "results/calibration/valid.npy")
        np.testing.assert_array_equal(validation["probs"], valid.probs)
    thresholds = list(csv.DictReader((demo_run / "results/report/final/thresholds.csv").open()))
    assert len(thresholds) == 21 and thresholds[-1]["class"] == "all classes"
    assert thresholds[-1]["test_predicted"] == "200"  # the demo's test labels are known


def test_calibration_none_submits_the_final_blend_as_before(demo_run: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "wf"
    shutil.copytree(demo_run, workdir, symlinks=True)  # file times kept: only what the switch changes reruns
    off = ["--config", "calibration=none", "--"]
    planned = run_snakemake(workdir, "-n", *off, "final_submission")
    assert planned.returncode == 0, planned.stderr[-3000:]
    rules = {rule for rule, _ in planned_jobs(planned.stdout)}
    assert rules == {"submit", "top5", "bundle", "ablation", "plot_calibration", "final_submission"}, rules
    result = run_snakemake(workdir, "--cores", "2", *off, "final_submission")
    assert result.returncode == 0, result.stderr[-3000:]
    by_hand = tmp_path / "by_hand.csv.gz"
    subprocess.run(
        [sys.executable, "-m", "deepsea.cli", "submit", "--pred", "results/final/test.npy", "--test-data",
         "results/data/test.npz", "--out", str(by_hand)],
        cwd=workdir, check=True, capture_output=True,
    )  # fmt: skip
    assert (workdir / "results/submission/submission.csv.gz").read_bytes() == by_hand.read_bytes()
    bundle = json.loads((workdir / "results/bundle/bundle.json").read_text())
    assert bundle["temperature"] == 1.0
    with np.load(workdir / "results/bundle/validation.npz") as validation:
        np.testing.assert_array_equal(validation["probs"], Predictions.load(workdir / "results/final/valid.npy").probs)
    ablation = list(csv.DictReader((workdir / "results/report/ablation.csv").open()))
    assert ablation[-1]["what"].startswith("+ pseudo-labels")
