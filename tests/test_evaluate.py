"""`deepsea evaluate`: scores beside the class prior, and the warnings that tell a user which setting to change."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from deepsea.evaluate import evaluate
from deepsea.imageset import ImageSet
from deepsea.io import read_json, save_predictions
from deepsea.splits import Split


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
    save_predictions(path, probs, ids, names)
    return path


def test_tta_that_hurts_is_named_with_the_keys_to_change(tiny_packed, tmp_path: Path, caplog) -> None:
    ids, labels, names = _valid_truth(tiny_packed)
    tta = _save(tmp_path / "valid.npy", labels, len(names), 0.6, ids, names)
    centre = _save(tmp_path / "valid.centre.npy", labels, len(names), 0.8, ids, names)
    with caplog.at_level(logging.WARNING, logger="deepsea.evaluate"):
        result = evaluate(tta, tiny_packed["train"], tiny_packed["split"], tmp_path / "eval.json", centre)
    assert result["tta_gain"] == pytest.approx(np.log(0.6) - np.log(0.8), abs=1e-4)
    (warning,) = result["warnings"]
    assert "test-time augmentation made the validation log loss worse (0.2231 for the centre" in warning["problem"]
    assert "train.steps" in warning["fix"] and "tta.method: centre" in warning["fix"]
    assert json.loads((tmp_path / "eval.json").read_text())["warnings"] == [warning]
    assert str(tta) in caplog.text and "train.steps" in caplog.text


def test_good_scores_give_no_warning(tiny_packed, tmp_path: Path) -> None:
    ids, labels, names = _valid_truth(tiny_packed)
    tta = _save(tmp_path / "valid.npy", labels, len(names), 0.8, ids, names)
    centre = _save(tmp_path / "valid.centre.npy", labels, len(names), 0.7, ids, names)
    unfused = _save(tmp_path / "unfused.npy", labels, len(names), 0.75, ids, names)
    result = evaluate(tta, tiny_packed["train"], tiny_packed["split"], tmp_path / "eval.json", centre, unfused)
    assert result["warnings"] == []


def test_a_model_no_better_than_the_class_prior_and_a_fusion_that_hurts(tiny_packed, tmp_path: Path) -> None:
    ids, labels, names = _valid_truth(tiny_packed)
    uniform = _save(tmp_path / "valid.npy", labels, len(names), 1 / len(names), ids, names)
    unfused = _save(tmp_path / "unfused.npy", labels, len(names), 0.5, ids, names)
    result = evaluate(uniform, tiny_packed["train"], tiny_packed["split"], tmp_path / "eval.json", None, unfused)
    prior, fusion = result["warnings"]
    assert "no better than predicting the class frequencies" in prior["problem"]
    assert "train.learning_rate" in prior["fix"]
    assert "fusing the handcrafted features made the validation log loss worse" in fusion["problem"]
    assert "fusion.models" in fusion["fix"]
