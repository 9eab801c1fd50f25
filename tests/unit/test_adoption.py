"""Fitted blends are adopted only where they beat the uniform choice by more than their standard error, on images
they were not fitted on: the ensemble's weights and the final blend's pseudo-label weight."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss

from deepsea.blending.adoption import adopt_if_better
from deepsea.blending.ensemble import blend, ensemble
from deepsea.cli import main
from deepsea.data.imageset import ImageSet
from deepsea.io import read_json
from deepsea.predictions import Predictions


def _noisy(y: np.ndarray, c: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    return strength * np.eye(c)[y] + (1 - strength) * rng.dirichlet(np.ones(c), len(y))


def test_the_gain_and_its_standard_error_are_the_paired_per_image_ones() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    good, poor = _noisy(y, 4, 0.6, rng), _noisy(y, 4, 0.2, rng)
    adoption = adopt_if_better(y, good, poor, min_gain_se=1.0)
    per_image = np.array(
        [sklearn_log_loss([t], [p], labels=range(4)) for t, p in zip(y, poor, strict=True)]
    ) - np.array(
        [sklearn_log_loss([t], [p], labels=range(4)) for t, p in zip(y, good, strict=True)]
    )  # golden: scikit-learn's losses, image by image
    assert adoption.gain == pytest.approx(per_image.mean(), abs=1e-9)
    assert adoption.gain_se == pytest.approx(per_image.std(ddof=1) / np.sqrt(len(y)), abs=1e-9)
    assert adoption.adopted == "fitted" and "more than 1 x" in adoption.reason
    assert adopt_if_better(y, poor, good, min_gain_se=0.0).adopted == "uniform"  # worse is never adopted


def test_a_gain_within_noise_keeps_the_uniform_blend() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 30)
    a, b = _noisy(y, 4, 0.40, rng), _noisy(y, 4, 0.38, rng)
    small = adopt_if_better(y, a, b, min_gain_se=1.0)
    assert small.gain_se > 0 and (small.gain <= small.gain_se) == (small.adopted == "uniform")
    assert adopt_if_better(y, a, a, min_gain_se=0.0).adopted == "uniform"  # no gain at all: the simple choice


def _lucky_validation(n_valid: int, seed: int = 3) -> tuple[list[Predictions], list[Predictions], dict[str, int]]:
    """Three models of the same quality; on a small validation set one is luckiest, on a large one none is."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n_valid)
    ids = [f"{i}.jpg" for i in range(n_valid)]
    models = [Predictions(_noisy(y, 5, 0.35, rng), ids, list("abcde")) for _ in range(3)]
    return models, models, dict(zip(ids, y.tolist(), strict=True))


def test_the_ensemble_falls_back_to_equal_weights_when_its_fit_is_noise() -> None:
    valid, test, labels_of = _lucky_validation(12)
    result = ensemble(["a", "b", "c"], valid, test, labels_of, folds=3, mean="arithmetic")
    assert result["adoption"]["adopted"] == "uniform", result["adoption"]
    assert result["weights"] == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    np.testing.assert_allclose(result["test"].probs, blend(np.stack([m.probs for m in test]), np.full(3, 1 / 3)))
    assert max(result["weights_by_mean"]["arithmetic"].values()) > 0.5  # the fit itself did pick a lucky model
    forced = ensemble(["a", "b", "c"], valid, test, labels_of, folds=3, mean="arithmetic", min_gain_se=0.0)
    assert forced["weights"] == forced["weights_by_mean"]["arithmetic"] or forced["adoption"]["gain"] <= 0


def test_final_weight_falls_back_to_the_ensemble_alone(tiny_packed: dict[str, Path], tmp_path: Path) -> None:
    """Pseudo-label models as good as the ensemble: the fitted weight gains nothing beyond noise, so the pseudo-label
    models are left out (weight 0), as a stage that cannot show a gain."""
    data = ImageSet.load(tiny_packed["train"])
    ids = json.loads(tiny_packed["split"].read_text())["valid_ids"]
    label_of = dict(zip(data.ids.tolist(), data.labels.tolist(), strict=True))
    y = np.array([label_of[i] for i in ids])
    rng = np.random.default_rng(5)
    c = len(data.class_names)
    for name, strength in (("m0", 0.4), ("m1", 0.4), ("pl", 0.4)):
        Predictions(_noisy(y, c, strength, rng), ids, data.class_names).save(tmp_path / f"{name}.npy")
    (tmp_path / "weights.json").write_text(json.dumps({"mean": "arithmetic", "adoption": {"adopted": "uniform"}}))
    out = tmp_path / "blend.json"
    args = ["fit-final-weight", "--ensemble-valid", str(tmp_path / "m0.npy"), str(tmp_path / "m1.npy")]
    args += ["--ensemble-weights", str(tmp_path / "weights.json"), "--pseudo-labels", str(tmp_path / "pl.npy")]
    assert main([*args, "--data", str(tiny_packed["train"]), "--out", str(out)]) == 0
    result = read_json(out)
    assert result["adoption"]["adopted"] == "ensemble alone", result["adoption"]
    assert result["final_weight"] == 0.0 and result["weights"] == [1.0, 0.0] and 0 <= result["fitted_weight"] <= 1
    assert "over ensemble alone" in result["adoption"]["reason"]
    # the uniform ensemble enters as it is (nothing fitted): its loss is the plain mean's
    mean = (Predictions.load(tmp_path / "m0.npy").probs + Predictions.load(tmp_path / "m1.npy").probs) / 2
    assert result["valid_log_loss"]["ensemble_out_of_fold"] == pytest.approx(sklearn_log_loss(y, mean), abs=1e-6)
