"""Snapshot ensembles (`train.snapshots`, from the HackerEarth fine-tuning write-up): which steps are kept, that a
snapshot is the run's weights at
its step (also across a kill and resume), and that `predict` averages the views of every snapshot."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

import deepsea.training.loop
from deepsea.errors import DeepseaError
from deepsea.inference.predict import PredictOptions, predict
from deepsea.inference.views import TTASettings
from deepsea.training.loop import train
from deepsea.training.settings import load_model_settings
from deepsea.training.snapshots import snapshot_steps

SETTINGS = {
    "name": "t",
    "input_size": 24,
    "params": {"widths": [8, 16], "dense": 32},
    # a constant learning rate: the first 40 steps of a 60-step run are then exactly a 40-step run
    "train": {"steps": 60, "batch_size": 16, "learning_rate": 0.01, "lr_drops": [], "eval_every": 5, "workers": 0},
}


def _train(packed: dict[str, Path], out: Path, **changes) -> Path:
    s = json.loads(json.dumps(SETTINGS))
    s["train"].update(changes)
    train(load_model_settings(json.dumps(s)), packed["train"], packed["split"], out / "model.pt", out / "log.csv")
    return out / "model.pt"


def _saved(path: Path) -> dict:
    return torch.load(path, weights_only=False)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_snapshot_steps_are_evenly_spaced_in_the_last_fraction() -> None:
    assert snapshot_steps(600, 4, 0.8) == [510, 540, 570, 600]  # around the original's lr drops at 84% and 95%
    assert snapshot_steps(600, 0, 0.8) == snapshot_steps(600, 1, 0.8) == [600]
    assert snapshot_steps(100, 2, 0.5) == [75, 100]
    assert snapshot_steps(3, 5, 0.8) == [3]  # too short to space them: the final weights only


def test_snapshots_are_the_runs_weights_at_their_steps_also_after_a_resume(
    tiny_packed, tmp_path: Path, monkeypatch
) -> None:
    short = _saved(_train(tiny_packed, tmp_path / "short", steps=40))
    full = _saved(_train(tiny_packed, tmp_path / "full", snapshots=3, snapshot_from=0.5))
    assert list(full["snapshots"]) == [40, 50]  # the third, step 60, is the model itself
    assert _same(full["snapshots"][40], short["state_dict"])
    assert not _same(full["snapshots"][50], full["state_dict"])
    assert "snapshots" not in short  # an ordinary model file is unchanged

    # killed at step 45 (SIGTERM during the 9th evaluation): the checkpoint keeps snapshot 40, the rerun adds 50
    evaluations = {"n": 0}
    evaluate = deepsea.training.loop.evaluate_centre

    def evaluate_then_terminate(*args, **kwargs):
        evaluations["n"] += 1
        if evaluations["n"] == 9:
            signal.raise_signal(signal.SIGTERM)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(deepsea.training.loop, "evaluate_centre", evaluate_then_terminate)
    resumed_dir = tmp_path / "resumed"
    with pytest.raises(DeepseaError, match="stopped by SIGTERM at step 45"):
        _train(tiny_packed, resumed_dir, snapshots=3, snapshot_from=0.5, checkpoint_every=100)
    assert list(_saved(resumed_dir / "checkpoint.pt")["snapshots"]) == [40]
    monkeypatch.setattr(deepsea.training.loop, "evaluate_centre", evaluate)
    resumed = _saved(_train(tiny_packed, resumed_dir, snapshots=3, snapshot_from=0.5, checkpoint_every=100))
    assert list(resumed["snapshots"]) == [40, 50]
    assert all(_same(resumed["snapshots"][s], full["snapshots"][s]) for s in (40, 50))
    assert _same(resumed["state_dict"], full["state_dict"])


def test_predict_averages_every_snapshots_views(tiny_packed, tmp_path: Path) -> None:
    model = _train(tiny_packed, tmp_path, snapshots=3, snapshot_from=0.5)
    tta = TTASettings(views=4, mean="arithmetic")
    options = PredictOptions(tta=tta)
    predict(
        model, tiny_packed["train"], "valid", tmp_path / "ens.npy", tmp_path / "ens_c.npy",
        split_path=tiny_packed["split"], options=options,
    )  # fmt: skip
    # independently: each snapshot as an ordinary model file, predicted alone, the probabilities averaged
    saved = _saved(model)
    alone, alone_centre = [], []
    for step, weights in [*saved.pop("snapshots").items(), (60, saved["state_dict"])]:
        torch.save({**saved, "state_dict": weights}, tmp_path / f"m{step}.pt")
        out, centre = tmp_path / f"p{step}.npy", tmp_path / f"c{step}.npy"
        predict(
            tmp_path / f"m{step}.pt", tiny_packed["train"], "valid", out, centre,
            split_path=tiny_packed["split"], options=options,
        )  # fmt: skip
        alone.append(np.load(out))
        alone_centre.append(np.load(centre))
    assert not np.allclose(alone[0], alone[2], atol=1e-3)  # the snapshots do differ
    np.testing.assert_allclose(np.load(tmp_path / "ens.npy"), np.mean(alone, axis=0), atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "ens_c.npy"), np.mean(alone_centre, axis=0), atol=1e-6)
    meta = json.loads((tmp_path / "ens.meta.json").read_text())
    assert meta["snapshot_steps"] == [40, 50, 60]
