"""The k-fold scheme end to end (`splits.scheme: kfold`): every entry trained once per fold, every training image
predicted out of fold, every choice made on those predictions; two runs (one stopped and resumed) give the same
bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import CPU_ONLY, SNAKEMAKE, run_snakemake, wait_for, workflow_copy
from deepsea.blending.submission import read_submission
from deepsea.data.imageset import ImageSet
from deepsea.predictions import Predictions, average
from deepsea.training.model_file import load_model

pytestmark = pytest.mark.slow

FOLDS = 3
KFOLD_CONFIG = f"""
demo: {{n_train: 150, n_test: 40, classes: 4, seed: 1}}
splits: {{scheme: kfold, folds: {FOLDS}}}
threads: {{pack: 2, train: 1, predict: 1}}
tta: {{views: 6}}
fusion: {{models: [plain], copies: 2, epochs: 5}}
ensemble: {{models: [plain, convroll4]}}
pseudo_labels:
  shards: 2
  final_weight: fit
  models:
    convroll4_pl: {{base: convroll4, fraction: 0.33}}
submission: {{source: final, models: [plain, convroll4]}}
models:
  plain:
    architecture: plain
    input_size: 24
    params: {{widths: [8, 16], dense: 32}}
    augmentation: {{translation: 3}}
    train: {{steps: 120, batch_size: 16, learning_rate: 0.01, eval_every: 20, checkpoint_every: 20, workers: 0}}
  convroll4:
    architecture: convroll4
    input_size: 15
    params: {{width: 0.125, depth: 2, dense: 16, dropout: 0.2}}
    augmentation: {{translation: 3}}
    train: {{steps: 40, batch_size: 16, eval_every: 20, checkpoint_every: 20, workers: 0}}
"""
ARGS = ["--cores", "2", "--rerun-incomplete", "--configfile", "kfold.yaml", "--", "final_submission"]
COMPARED = ("splits", "predictions", "fused", "ensemble", "pseudo_labels", "final", "submission", "models")


def _kfold_workdir(tmp: Path) -> Path:
    workdir = workflow_copy(tmp)
    (workdir / "kfold.yaml").write_text(KFOLD_CONFIG)
    return workdir


@dataclass
class KfoldRuns:
    a: Path  # uninterrupted
    b: Path  # stopped by SIGTERM while a fold model trained, then resumed
    interrupted: list[str]


@pytest.fixture(scope="module")
def kfold_runs(tmp_path_factory: pytest.TempPathFactory) -> KfoldRuns:
    a = _kfold_workdir(tmp_path_factory.mktemp("kfold_a") / "wf")
    result = run_snakemake(a, *ARGS, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    b = _kfold_workdir(tmp_path_factory.mktemp("kfold_b") / "wf")
    models = b / "results" / "models"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=b, env=CPU_ONLY, start_new_session=True)
    snake = subprocess.Popen([*SNAKEMAKE, *ARGS], **quiet)
    wait_for(lambda: any(models.glob("*/checkpoint.pt")) or snake.poll() is not None, timeout=900)
    os.killpg(snake.pid, signal.SIGTERM)
    snake.wait(timeout=300)
    interrupted = sorted(p.parent.name for p in models.glob("*/checkpoint.pt") if not (p.parent / "model.pt").exists())
    result = run_snakemake(b, *ARGS, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    return KfoldRuns(a, b, interrupted)


def _split(workdir: Path, name: str) -> dict:
    return json.loads((workdir / "results" / "splits" / f"{name}.json").read_text())


def test_every_training_image_is_predicted_by_the_model_that_did_not_train_on_it(kfold_runs: KfoldRuns) -> None:
    a = kfold_runs.a
    train_ids = sorted(ImageSet.load(a / "results/data/train.npz").ids.tolist())
    folds = [_split(a, f"fold_{k}") for k in range(FOLDS)]
    assert sorted(i for fold in folds for i in fold["valid_ids"]) == train_ids
    assert _split(a, "out_of_fold")["valid_ids"] == train_ids
    for name in ("plain", "convroll4"):
        oof = Predictions.load(a / f"results/predictions/{name}/valid.tta.npy")
        assert sorted(oof.ids) == train_ids
        for k, fold in enumerate(folds):
            run = f"{name}_fold{k}"
            _, settings, _, _ = load_model(a / f"results/models/{run}/model.pt", device=_cpu())
            assert settings.split == f"fold_{k}"  # trained on the other folds only
            own = Predictions.load(a / f"results/predictions/{run}/valid.tta.npy")
            assert sorted(own.ids) == sorted(fold["valid_ids"])
            np.testing.assert_array_equal(oof.in_order_of(own.ids, "oof").probs, own.probs)
        members = [a / f"results/predictions/{name}_fold{k}/test.tta.npy" for k in range(FOLDS)]
        test = Predictions.load(a / f"results/predictions/{name}/test.tta.npy")
        np.testing.assert_allclose(test.probs, average(members, mean=test.meta["mean"]).probs, atol=1e-6)
        # TTA or centre view: decided once per entry on all its out-of-fold images, the same for valid and test
        chosen = [Predictions.load(a / f"results/predictions/{name}/{s}.npy") for s in ("valid", "test")]
        assert chosen[0].meta["views_used"] == chosen[1].meta["views_used"]
        assert chosen[0].meta["views_choice"]["adoption"]["images"] == len(train_ids)
    assert not (a / "results/models/plain/model.pt").exists()  # an entry is its fold models


def test_the_choices_rest_on_out_of_fold_predictions(kfold_runs: KfoldRuns) -> None:
    a = kfold_runs.a
    n_train = len(ImageSet.load(a / "results/data/train.npz"))
    fused = Predictions.load(a / "results/fused/plain/valid.npy")
    assert len(fused.ids) == n_train and json.loads((a / "results/fused/plain/report.json").read_text())["folds"] == 3
    weights = json.loads((a / "results/ensemble/weights.json").read_text())
    assert weights["adoption"]["images"] == n_train and weights["adoption"]["adopted"] in ("fitted", "uniform")
    assert len(Predictions.load(a / "results/ensemble/valid.npy").ids) == n_train
    # pseudo-label models train without fold 0; the final weight is fitted on fold 0's images only
    fold0 = _split(a, "fold_0")["valid_ids"]
    for shard in range(2):
        _, settings, _, _ = load_model(a / f"results/models/convroll4_pl_shard{shard}/model.pt", device=_cpu())
        assert settings.split == "fold_0"
    blend = json.loads((a / "results/final/blend.json").read_text())
    assert blend["valid_images"] == len(fold0) and blend["adoption"]["images"] == len(fold0)
    assert sorted(Predictions.load(a / "results/final/valid.npy").ids) == sorted(fold0)
    ids, classes, probs = read_submission(a / "results/submission/submission.csv.gz")
    assert len(ids) == 40 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    ablation = (a / "results/report/ablation.csv").read_text()
    assert "+ pseudo-labels" in ablation and f"of {n_train} validation images" in ablation


def test_two_kfold_runs_one_of_them_stopped_give_identical_bytes(kfold_runs: KfoldRuns) -> None:
    a, b = kfold_runs.a, kfold_runs.b
    assert kfold_runs.interrupted, "SIGTERM came when no fold model had a checkpoint"
    logs = b / "results" / "logs" / "train_convnet"
    for model in kfold_runs.interrupted:
        assert f"resuming from results/models/{model}/checkpoint.pt" in (logs / f"{model}.log").read_text()
    files = sorted(p.relative_to(a) for folder in COMPARED for p in (a / "results" / folder).rglob("*") if p.is_file())
    files = [f for f in files if f.name != "train_log.csv"]  # its last column is wall time
    assert len(files) > 60
    differing = [str(f) for f in files if (a / f).read_bytes() != (b / f).read_bytes()]
    assert not differing, differing[:10]


def test_bags_under_kfold_are_not_trained_and_the_log_says_so(tmp_path: Path) -> None:
    """The fold models are an entry's bag: a config with `bags` runs under k-fold unchanged, without bag members."""
    workdir = _kfold_workdir(tmp_path / "wf")
    (workdir / "bags.yaml").write_text(
        KFOLD_CONFIG.replace("    input_size: 24\n", "    input_size: 24\n    bags: [1]\n")
    )
    result = run_snakemake(workdir, "-n", "--configfile", "bags.yaml", "--", "final_submission")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stderr + result.stdout
    assert "the bags of plain are not trained" in out and "plain_bag1" not in out and "plain_fold0" in out


def _cpu():
    import torch

    return torch.device("cpu")
