"""`deepsea evaluate`: scores beside the class prior, and the warnings that tell a user which setting to change."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from deepsea.data.imageset import ImageSet
from deepsea.data.splits import Split
from deepsea.io import read_json
from deepsea.predictions import Predictions
from deepsea.report.evaluate import evaluate


def _valid_truth(packed: dict[str, Path]) -> tuple[list[str], np.ndarray, list[str]]:
    """(validation ids, their labels, class names) of the tiny packed set."""
    data = ImageSet.load(packed["train"])
    split = Split.from_json(read_json(packed["split"]), str(packed["split"]))
    ids = list(split.valid_ids)
    return ids, data.labels[data.index_of(ids, "test")], data.class_names


def _save(path: Path, labels: np.ndarray, n_classes: int, p_true: float, ids: list[str], names: list[str]) -> Path:
    """Predictions that give the true class `p_true` and share the rest equally."""
    probs = np.full((len(labels), n_classes), (1 - p_true) / (n_classes - 1))
    probs[np.arange(len(labels)), labels] = p_true
    Predictions(probs, ids, names).save(path)
    return path


def test_tta_that_hurts_is_named_with_the_keys_to_change(tiny_packed, tmp_path: Path, caplog) -> None:
    ids, labels, names = _valid_truth(tiny_packed)
    tta = _save(tmp_path / "valid.npy", labels, len(names), 0.6, ids, names)
    centre = _save(tmp_path / "valid.centre.npy", labels, len(names), 0.8, ids, names)
    with caplog.at_level(logging.WARNING, logger="deepsea.report.evaluate"):
        result = evaluate(tta, tiny_packed["train"], tiny_packed["split"], tmp_path / "eval.json", centre_path=centre)
    assert result["tta_gain"] == pytest.approx(np.log(0.6) - np.log(0.8), abs=1e-4)
    (warning,) = result["warnings"]
    assert "test-time augmentation made the validation log loss worse (0.2231 for the centre" in warning["problem"]
    assert "train.epochs" in warning["fix"] and "tta.method: centre" in warning["fix"]
    assert json.loads((tmp_path / "eval.json").read_text())["warnings"] == [warning]
    assert str(tta) in caplog.text and "train.epochs" in caplog.text


def test_good_scores_give_no_warning(tiny_packed, tmp_path: Path) -> None:
    ids, labels, names = _valid_truth(tiny_packed)
    tta = _save(tmp_path / "valid.npy", labels, len(names), 0.8, ids, names)
    centre = _save(tmp_path / "valid.centre.npy", labels, len(names), 0.7, ids, names)
    unfused = _save(tmp_path / "unfused.npy", labels, len(names), 0.75, ids, names)
    result = evaluate(
        tta,
        tiny_packed["train"],
        tiny_packed["split"],
        tmp_path / "eval.json",
        centre_path=centre,
        unfused_path=unfused,
    )
    assert result["warnings"] == []


def test_a_model_no_better_than_the_class_prior_and_a_fusion_that_hurts(tiny_packed, tmp_path: Path) -> None:
    ids, labels, names = _valid_truth(tiny_packed)
    uniform = _save(tmp_path / "valid.npy", labels, len(names), 1 / len(names), ids, names)
    unfused = _save(tmp_path / "unfused.npy", labels, len(names), 0.5, ids, names)
    result = evaluate(uniform, tiny_packed["train"], tiny_packed["split"], tmp_path / "eval.json", unfused_path=unfused)
    prior, fusion = result["warnings"]
    assert "no better than predicting the class frequencies" in prior["problem"]
    assert "train.learning_rate" in prior["fix"]
    assert "fusing the handcrafted features made the validation log loss worse" in fusion["problem"]
    assert "fusion.models" in fusion["fix"]


def _save_per_image(path: Path, labels: np.ndarray, n_classes: int, p_true: np.ndarray, ids, names, rows) -> Path:
    """Like `_save` with each image's own probability of its true class, rows written in the order `rows`."""
    probs = (1 - p_true[:, None]) / (n_classes - 1) * np.ones((len(labels), n_classes))
    probs[np.arange(len(labels)), labels] = p_true
    Predictions(probs[rows], [ids[r] for r in rows], names).save(path)
    return path


def test_a_tta_loss_within_noise_is_not_a_warning(tiny_packed, tmp_path: Path) -> None:
    """Worse by less than two standard errors of the per-image change: chance on this few images, no warning."""
    ids, labels, names = _valid_truth(tiny_packed)
    n = len(labels)
    rows = np.arange(n)
    swings = np.where(rows % 2 == 0, 0.9, 0.5)  # the views help half the images a lot and hurt the other half
    tta = _save_per_image(tmp_path / "valid.npy", labels, len(names), swings, ids, names, rows)
    centre = _save(tmp_path / "valid.centre.npy", labels, len(names), 0.7, ids, names)
    result = evaluate(tta, tiny_packed["train"], tiny_packed["split"], tmp_path / "eval.json", centre_path=centre)
    gains = np.log(swings) - np.log(0.7)  # per image, computed here from the probabilities themselves
    assert result["tta_gain"] == pytest.approx(gains.mean()) and result["tta_gain"] < 0
    assert result["tta_gain_se"] == pytest.approx(gains.std(ddof=1) / np.sqrt(n))
    assert -result["tta_gain"] < 2 * result["tta_gain_se"] and result["warnings"] == []
    consistent = _save(tmp_path / "worse.npy", labels, len(names), 0.5, ids, names)  # every image worse
    (warning,) = evaluate(
        consistent, tiny_packed["train"], tiny_packed["split"], tmp_path / "e2.json", centre_path=centre
    )["warnings"]
    assert f"worse by 0.3365 +- 0.0000 over the {n} images" in warning["problem"]


def test_predictions_are_compared_image_by_image_whatever_their_row_order(tiny_packed, tmp_path: Path) -> None:
    ids, labels, names = _valid_truth(tiny_packed)
    p_true = np.linspace(0.3, 0.95, len(labels))
    rows = np.arange(len(labels))
    tta = _save_per_image(tmp_path / "valid.npy", labels, len(names), p_true, ids, names, rows)
    centre = _save_per_image(tmp_path / "valid.centre.npy", labels, len(names), p_true, ids, names, rows[::-1])
    result = evaluate(tta, tiny_packed["train"], tiny_packed["split"], tmp_path / "eval.json", centre_path=centre)
    assert result["tta_gain"] == pytest.approx(0.0, abs=1e-12)
    assert result["tta_gain_se"] == 0.0  # the same images paired, not row k with row k


def _write_log(path: Path, valid_losses: list[float], drop_after: int, lr: float = 0.01) -> Path:
    """A training log (the columns loop.py writes) with an evaluation every 100 steps and a 10x drop after
    `drop_after` evaluations."""
    from deepsea.training.loop import write_log

    rows = [
        [100 * (k + 1), 2.0 * (k + 1), lr if k < drop_after else lr / 10, 1.0, 0.5, loss, 0.5, 1.0 * k]
        for k, loss in enumerate(valid_losses)
    ]
    write_log(path, rows)
    return path


def test_a_model_still_learning_at_full_rate_is_told_to_train_longer(tiny_packed, tmp_path: Path) -> None:
    ids, labels, names = _valid_truth(tiny_packed)
    pred = _save(tmp_path / "valid.npy", labels, len(names), 0.8, ids, names)
    falling = _write_log(tmp_path / "falling.csv", [1.2, 0.9, 0.7, 0.55, 0.45, 0.3], drop_after=5)
    result = evaluate(pred, tiny_packed["train"], tiny_packed["split"], tmp_path / "e.json", train_logs=[falling])
    (warning,) = result["warnings"]
    assert "still falling" in warning["problem"] and "steps 300-500" in warning["problem"]  # not across the drop
    assert "train.epochs" in warning["fix"]
    assert result["learning"]["median_fall"] == pytest.approx(1 - 0.45 / 0.7)


def test_a_plateau_or_a_fall_after_the_drop_alone_gives_no_warning(tiny_packed, tmp_path: Path) -> None:
    ids, labels, names = _valid_truth(tiny_packed)
    pred = _save(tmp_path / "valid.npy", labels, len(names), 0.8, ids, names)
    plateau = _write_log(tmp_path / "plateau.csv", [1.2, 0.6, 0.5, 0.49, 0.5, 0.3], drop_after=5)
    short = _write_log(tmp_path / "short.csv", [1.2, 0.6, 0.3], drop_after=2)  # two full-rate evaluations: no say
    for log_path in (plateau, short):
        result = evaluate(pred, tiny_packed["train"], tiny_packed["split"], tmp_path / "e.json", train_logs=[log_path])
        assert result["warnings"] == []


def test_fold_models_decide_by_their_median(tiny_packed, tmp_path: Path) -> None:
    """One noisy fold model of five does not raise the warning for a k-fold entry, three do."""
    ids, labels, names = _valid_truth(tiny_packed)
    pred = _save(tmp_path / "valid.npy", labels, len(names), 0.8, ids, names)
    flat = [_write_log(tmp_path / f"flat{k}.csv", [1.0, 0.6, 0.5, 0.5, 0.49, 0.3], 5) for k in range(5)]
    falling = [_write_log(tmp_path / f"fall{k}.csv", [1.0, 0.9, 0.8, 0.6, 0.4, 0.3], 5) for k in range(3)]
    one = evaluate(
        pred, tiny_packed["train"], tiny_packed["split"], tmp_path / "e.json", train_logs=[*flat[:4], falling[0]]
    )
    assert one["warnings"] == [] and one["learning"]["logs"] == 5
    three = evaluate(
        pred, tiny_packed["train"], tiny_packed["split"], tmp_path / "e.json", train_logs=[*flat[:2], *falling]
    )
    (warning,) = three["warnings"]
    assert "the median of 5 fold models" in warning["problem"]
