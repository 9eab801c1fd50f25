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

from conftest import train_tiny
from deepsea.data.batches import TRAIN_STREAM, ClassIndex, epoch_positions, training_positions
from deepsea.errors import DeepseaError, NonFiniteError
from deepsea.inference.predict import predict
from deepsea.report.evaluate import evaluate
from deepsea.training.loop import train
from deepsea.training.settings import load_model_settings

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


def test_balanced_batches_draw_every_class_equally_then_switch_to_epochs() -> None:
    labels = np.array([0] * 900 + [1] * 90 + [2] * 9 + [3])  # a long tail down to a class of one image
    index = ClassIndex.of(labels)
    drawn = np.concatenate([training_positions(index, 64, step, 0, balanced_steps=300) for step in range(300)])
    # 19,200 draws, standard error of a share ~0.003 (the true distribution: 0.9 / 0.09 / 0.009 / 0.001)
    np.testing.assert_allclose(np.bincount(labels[drawn], minlength=4) / len(drawn), 0.25, atol=0.02)
    assert set(drawn[labels[drawn] == 3].tolist()) == {999}
    assert len(set(drawn[labels[drawn] == 0].tolist())) > 800  # the big class's images vary, not a few repeated
    first = training_positions(index, 64, 7, 0, 300)
    np.testing.assert_array_equal(first, training_positions(index, 64, 7, 0, 300))  # resumed runs: same batches
    assert not np.array_equal(first, training_positions(index, 64, 7, 1, 300))
    for step in (300, 301, 450):  # from the switch on: exactly the batches of a run that never balanced
        expected = epoch_positions(len(labels), 64, step, 0, TRAIN_STREAM)
        np.testing.assert_array_equal(training_positions(index, 64, step, 0, 300), expected)
    epoch_15 = np.concatenate([training_positions(index, 50, step, 0, 300) for step in range(300, 320)])
    assert sorted(epoch_15.tolist()) == list(range(1000))  # every image once per epoch again


def test_balanced_training_is_deterministic_and_says_when_it_switches(tiny_packed, tmp_path: Path, caplog) -> None:
    caplog.set_level("INFO", logger="deepsea.training.loop")
    a = _train(tmp_path / "a", tiny_packed, balanced_until=0.5)
    assert "class-balanced batches for the first 30 of 60 steps" in caplog.text
    b = _train(tmp_path / "b", tiny_packed, balanced_until=0.5, workers=1)
    plain = _train(tmp_path / "plain", tiny_packed)
    assert all(torch.equal(t, _weights(b)[name]) for name, t in _weights(a).items())
    assert not all(torch.equal(t, _weights(plain)[name]) for name, t in _weights(a).items())


def test_learns_better_than_class_prior(tiny_packed, tmp_path: Path) -> None:
    model = _train(tmp_path, tiny_packed, steps=150)
    predict(model, tiny_packed["train"], "valid", tmp_path / "valid.npy", split_path=tiny_packed["split"])
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
    assert reference.read_bytes() == (out / "model.pt").read_bytes()  # (torch.save named records after a temp file)
    assert not (out / "checkpoint.pt").exists()
    assert (out / "log.csv").read_text() != ""


def test_nan_loss_stops_with_clear_error(tiny_packed, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteError, match=r"models\.t: the training loss became .* Lower train\.learning_rate"):
        _train(tmp_path, tiny_packed, learning_rate=1e12, steps=50)
    assert not (tmp_path / "model.pt").exists()


def test_preinit_copies_matching_convolutions(tiny_packed, tmp_path: Path) -> None:
    from deepsea.nets.registry import build_model
    from deepsea.training.model_file import copy_early_layers

    source = {
        "name": "src",
        "architecture": "convroll4",
        "input_size": 15,
        "params": {"width": 0.125, "depth": 2, "dense": 16},
        "train": {"steps": 5, "workers": 0},
    }
    train_tiny(source, tiny_packed, tmp_path)
    target = load_model_settings(json.dumps({**source, "name": "dst", "architecture": "convroll5_preinit"}))
    model = build_model("convroll5_preinit", 4, 15, dict(target.params))
    copy_early_layers(model, tmp_path / "model.pt", target)
    trained = _weights(tmp_path / "model.pt")
    convs = [k for k in trained if ".features." in k]
    assert convs
    for key in convs:
        assert torch.equal(model.state_dict()[key], trained[key]), key
    with pytest.raises(DeepseaError, match="no convolution layer"):
        copy_early_layers(build_model("plain", 4, 15, {"widths": [4], "dense": 4}), tmp_path / "model.pt", target)


def test_augmentation_grid_png(tiny_packed, tmp_path: Path) -> None:
    import cv2

    from deepsea.report.augment_grid import augmentation_grid

    settings = load_model_settings(json.dumps({**SETTINGS, "input_size": 32}))
    augmentation_grid(tiny_packed["train"], settings, tmp_path / "grid.png", n_images=3, n_samples=4)
    grid = cv2.imread(str(tmp_path / "grid.png"), cv2.IMREAD_GRAYSCALE)
    assert grid.shape == (3 * (96 + 2), 5 * (96 + 2))  # 32 px enlarged 3x, 2 px gaps
    assert grid.min() < 128  # organisms are drawn dark on light
