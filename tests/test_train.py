"""Training: real learning (beats the class prior), deterministic on CPU, resumes after a kill, stops on NaN."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from deepsea.errors import NonFiniteError
from deepsea.evaluate import evaluate
from deepsea.predict import predict
from deepsea.settings import load_model_settings
from deepsea.train import train

SETTINGS = {
    "name": "t",
    "input_size": 24,
    "params": {"widths": [8, 16], "dense": 32},
    "train": {
        "steps": 60,
        "batch_size": 16,
        "learning_rate": 0.01,
        "checkpoint_every": 10,
        "eval_every": 20,
        "workers": 0,
    },
}


def _train(tmp: Path, packed: dict[str, Path], **changes) -> Path:
    s = json.loads(json.dumps(SETTINGS))
    s["train"].update(changes)
    train(load_model_settings(json.dumps(s)), packed["train"], packed["split"], tmp / "model.pt", tmp / "log.csv")
    return tmp / "model.pt"


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["state_dict"]


def test_deterministic_on_cpu(tiny_packed, tmp_path: Path) -> None:
    a = _train(tmp_path / "a", tiny_packed)
    b = _train(tmp_path / "b", tiny_packed, workers=1)  # a worker process must not change the batches
    for name, tensor in _weights(a).items():
        assert torch.equal(tensor, _weights(b)[name]), name
    assert (tmp_path / "a" / "log.csv").read_text().count("\n") == 4  # header + evaluations at 20, 40, 60


def test_learns_better_than_class_prior(tiny_packed, tmp_path: Path) -> None:
    model = _train(tmp_path, tiny_packed, steps=150)
    predict(model, tiny_packed["train"], "valid", tmp_path / "valid.npy", tiny_packed["split"])
    result = evaluate(tmp_path / "valid.npy", tiny_packed["train"], tiny_packed["split"], tmp_path / "eval.json")
    assert result["valid"]["log_loss"] < result["class_prior"]["log_loss"] - 0.2
    probs = np.load(tmp_path / "valid.npy")
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_resume_after_kill_matches_uninterrupted(tiny_packed, tmp_path: Path) -> None:
    reference = _train(tmp_path / "ref", tiny_packed, steps=200, checkpoint_every=20)
    s = json.loads(json.dumps(SETTINGS))
    s["train"].update(steps=200, checkpoint_every=20)
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "deepsea.cli",
        "train",
        "--settings",
        json.dumps(s),
        "--data",
        str(tiny_packed["train"]),
        "--split",
        str(tiny_packed["split"]),
        "--out",
        str(out / "model.pt"),
        "--log-csv",
        str(out / "log.csv"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert (out / "checkpoint.pt").exists(), "the run ended before writing a checkpoint"
    assert not (out / "model.pt").exists()
    started_at = torch.load(out / "checkpoint.pt", weights_only=False)["step"]
    assert 0 < started_at < 200
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    for name, tensor in _weights(reference).items():
        assert torch.equal(tensor, _weights(out / "model.pt")[name]), name
    assert not (out / "checkpoint.pt").exists()
    assert (out / "log.csv").read_text() != ""


def test_nan_loss_stops_with_clear_error(tiny_packed, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteError, match=r"models\.t: the training loss became .* Lower train\.learning_rate"):
        _train(tmp_path, tiny_packed, learning_rate=1e12, steps=50)
    assert not (tmp_path / "model.pt").exists()
