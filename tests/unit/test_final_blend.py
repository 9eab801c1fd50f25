"""The final blend's fitted weight: the out-of-fold ensemble it is fitted against, the 1-d fit, the CLI round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss

from deepsea.blending.ensemble import blend, fit_weights, out_of_fold_blend, stratified_folds
from deepsea.blending.final_weight import fit_final_weight
from deepsea.cli import main
from deepsea.data.imageset import ImageSet
from deepsea.io import read_json
from deepsea.predictions import Predictions


def _noisy(y: np.ndarray, c: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Predictions that put `strength` on the true class and the rest on a random distribution."""
    return strength * np.eye(c)[y] + (1 - strength) * rng.dirichlet(np.ones(c), len(y))


def test_out_of_fold_rows_never_see_their_own_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Relabelling one fold's images changes every other fold's blend but not that fold's own rows."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    knows = (y < 2)[:, None]  # one model knows classes 0-1, the other 2-3: the fit mixes them
    probs = np.stack([np.where(knows, _noisy(y, 4, 0.7, rng), _noisy(y, 4, 0.1, rng)),
                      np.where(knows, _noisy(y, 4, 0.1, rng), _noisy(y, 4, 0.7, rng)),
                      _noisy(y, 4, 0.2, rng)])  # fmt: skip
    oof = out_of_fold_blend(probs, y, 5, 0, "arithmetic")
    np.testing.assert_allclose(oof.sum(1), 1.0, atol=1e-12)
    folds = stratified_folds(y, 5, 0)
    fold = folds == 2
    relabelled = y.copy()
    relabelled[fold] = 0  # the fold's images all called class 0 (the folds kept: they are dealt per class)
    monkeypatch.setattr("deepsea.blending.ensemble.stratified_folds", lambda labels, k, seed: folds)
    other = out_of_fold_blend(probs, relabelled, 5, 0, "arithmetic")
    np.testing.assert_array_equal(other[fold], oof[fold])
    assert not np.allclose(other[~fold], oof[~fold])
    # and it is more honest than the in-sample blend: worse on the fitting labels, by what the fit buys
    in_sample = blend(probs, fit_weights(probs, y), "arithmetic")
    assert sklearn_log_loss(y, oof) > sklearn_log_loss(y, in_sample)


@pytest.mark.parametrize("pseudo_strength", [0.1, 0.45, 0.9])
def test_fitted_weight_is_the_grid_optimum(pseudo_strength: float) -> None:
    """Golden: the fitted weight's loss (scored by scikit-learn) is the minimum over a fine grid of weights."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    ensemble, pseudo = _noisy(y, 5, 0.45, rng), _noisy(y, 5, pseudo_strength, rng)
    w = fit_final_weight(ensemble, pseudo, y)
    grid = np.linspace(0, 1, 2001)
    losses = [sklearn_log_loss(y, g * pseudo + (1 - g) * ensemble, labels=range(5)) for g in grid]
    best = grid[int(np.argmin(losses))]
    assert 0 <= w <= 1 and abs(w - best) < 2e-3
    assert sklearn_log_loss(y, w * pseudo + (1 - w) * ensemble, labels=range(5)) <= min(losses) + 1e-9
    if pseudo_strength == 0.45:
        assert 0.2 < w < 0.8  # equally good, independent errors: both are used


def test_useless_or_perfect_pseudo_labels_take_the_ends() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 100)
    ensemble = _noisy(y, 3, 0.6, rng)
    assert fit_final_weight(ensemble, np.full_like(ensemble, 1 / 3), y) == 0.0  # exactly: the ensemble alone
    assert fit_final_weight(ensemble, np.eye(3)[y], y) == 1.0


def test_fit_final_weight_and_average_from_the_cli(tiny_packed: dict[str, Path], tmp_path: Path) -> None:
    """`deepsea fit-final-weight` blends the ensembled models out of fold (the ensemble's mean, folds and seed), fits
    the weight and writes the weights `deepsea average --weights-from` blends with, in the final blend's order."""
    data = ImageSet.load(tiny_packed["train"])
    ids = json.loads(tiny_packed["split"].read_text())["valid_ids"]
    label_of = dict(zip(data.ids.tolist(), data.labels.tolist(), strict=True))
    y = np.array([label_of[i] for i in ids])
    rng = np.random.default_rng(3)
    c = len(data.class_names)
    models = [_noisy(y, c, 0.5, rng), _noisy(y, c, 0.3, rng)]
    pseudo = _noisy(y, c, 0.5, rng)
    for k, probs in enumerate(models):
        Predictions(probs, ids, data.class_names).save(tmp_path / f"m{k}.npy")
    Predictions(pseudo[::-1], ids[::-1], data.class_names).save(tmp_path / "pl.npy")  # any row order
    (tmp_path / "weights.json").write_text(json.dumps({"mean": "geometric", "weights": {"m0": 0.6, "m1": 0.4}}))
    blend_json = tmp_path / "blend.json"
    inputs = ["--ensemble-valid", str(tmp_path / "m0.npy"), str(tmp_path / "m1.npy")]
    rest = ["--pseudo-labels", str(tmp_path / "pl.npy"), "--data", str(tiny_packed["train"]), "--out", str(blend_json)]
    weights_arg = ["--ensemble-weights", str(tmp_path / "weights.json")]
    always_fitted = ["--min-gain-se", "0"]  # the fitted weight whatever it gains (the adoption: test_adoption.py)
    assert main(["fit-final-weight", *inputs, *weights_arg, "--folds", "3", "--seed", "7", *always_fitted, *rest]) == 0
    fitted = read_json(blend_json)
    w = fitted["final_weight"]
    assert fitted["weights"] == [1 - w, w] and fitted["valid_images"] == len(ids)
    assert fitted["ensemble"]["mean"] == "geometric" and fitted["ensemble"]["folds"] == 3
    stored = np.stack([p.astype(np.float32).astype(np.float64) for p in models])  # as saved: float32
    oof = out_of_fold_blend(stored, y, 3, 7, "geometric")
    assert w == pytest.approx(fit_final_weight(oof, pseudo.astype(np.float32), y), abs=1e-6)
    losses = fitted["valid_log_loss"]
    assert losses["ensemble_out_of_fold"] == pytest.approx(sklearn_log_loss(y, oof, labels=range(c)), abs=1e-9)
    assert losses["fitted"] <= min(losses["ensemble_out_of_fold"], losses["pseudo_labels"], losses["half_and_half"])
    final = tmp_path / "final.npy"
    preds = [str(tmp_path / "m0.npy"), str(tmp_path / "pl.npy")]
    assert main(["average", "--pred", *preds, "--weights-from", str(blend_json), "--out", str(final)]) == 0
    result = Predictions.load(final)
    probs, final_ids = result.probs, result.ids
    assert final_ids == ids
    np.testing.assert_allclose(probs, (1 - w) * models[0] + w * pseudo, atol=1e-6)
    # a wrong training set, or an ensemble file without its mean, is named, not a KeyError
    for k, probs in enumerate(models):
        Predictions(probs, [f"x/{i}" for i in ids], data.class_names).save(tmp_path / f"x{k}.npy")
    Predictions(pseudo, [f"x/{i}" for i in ids], data.class_names).save(tmp_path / "pl_x.npy")
    other = ["--ensemble-valid", str(tmp_path / "x0.npy"), str(tmp_path / "x1.npy"), *weights_arg]
    assert main(["fit-final-weight", *other, *rest[:1], str(tmp_path / "pl_x.npy"), *rest[2:]]) != 0
    (tmp_path / "weights.json").write_text("{}")
    assert main(["fit-final-weight", *inputs, *weights_arg, *rest]) != 0
