"""Ensembling: simplex weights, the weighted blends beat every model and the uniform blend, CV table, checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad
from scipy.special import softmax

from deepsea.blending.ensemble import (
    blend,
    blend_loss_and_grad,
    cross_validate,
    ensemble,
    fit_weights,
    geometric_blend,
)
from deepsea.errors import ConfigError, DataMismatchError
from deepsea.metrics import log_loss
from deepsea.predictions import Predictions


def _models(seed: int = 0, n: int = 400, c: int = 5):
    """Three models of different quality: a good one, a mediocre one, and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    onehot = np.eye(c)[y]
    good = 0.6 * onehot + 0.4 * rng.dirichlet(np.ones(c), n)
    mediocre = 0.3 * onehot + 0.7 * rng.dirichlet(np.ones(c), n)
    noise = rng.dirichlet(np.ones(c), n)
    return np.stack([mediocre, good, noise]), y


def test_weights_on_simplex_and_blend_beats_each_model_and_uniform() -> None:
    probs, y = _models()
    w = fit_weights(probs, y)
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    assert w[1] == w.max()  # the good model gets the largest weight
    weighted = log_loss(y, blend(probs, w))
    assert all(weighted <= log_loss(y, p) + 1e-9 for p in probs)
    assert weighted <= log_loss(y, blend(probs, np.full(3, 1 / 3)))
    assert np.isfinite(log_loss(y, geometric_blend(probs)))


def test_complementary_models_get_mixed() -> None:
    """Two models each right on a different half of the classes: the blend beats both clearly."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 600)
    onehot, noise = np.eye(4)[y], rng.dirichlet(np.ones(4), (2, 600))
    first_half = (y < 2)[:, None]
    a = np.where(first_half, 0.8 * onehot + 0.2 * noise[0], noise[0])
    b = np.where(first_half, noise[1], 0.8 * onehot + 0.2 * noise[1])
    probs = np.stack([a, b])
    w = fit_weights(probs, y)
    assert 0.2 < w[0] < 0.8
    assert log_loss(y, blend(probs, w)) < min(log_loss(y, a), log_loss(y, b)) - 0.1


def test_gradient_matches_finite_differences() -> None:
    probs, y = _models(1, n=50)
    true_class = probs[:, np.arange(len(y)), y]

    def loss(theta: np.ndarray) -> float:
        return -np.mean(np.log(softmax(theta) @ true_class))

    def grad(theta: np.ndarray) -> np.ndarray:
        w = softmax(theta)
        g = -(true_class / (w @ true_class)).mean(axis=1)
        return w * (g - w @ g)

    assert check_grad(loss, grad, np.array([0.3, -0.2, 0.1])) < 1e-6


def test_cross_validation_table() -> None:
    probs, y = _models(2)
    table = cross_validate(probs, y, k=5, seed=0)
    assert [row["top_k"] for row in table] == [1, 2, 3]
    assert all(np.isfinite(row["cv_log_loss"]) for row in table)
    assert table[0]["cv_log_loss"] == pytest.approx(log_loss(y, probs[1]), rel=0.1)  # top-1 is the good model


def test_mismatched_ids_are_refused() -> None:
    probs, y = _models(3, n=10)
    ids = [f"{i}.jpg" for i in range(10)]
    classes = list("abcde")
    labels_of = dict(zip(ids, y.tolist(), strict=True))
    valid = [Predictions(probs[0], ids, classes), Predictions(probs[1], ids[::-1][:9] + ["x.jpg"], classes)]
    test = [Predictions(probs[0], ids, classes), Predictions(probs[1], ids, classes)]
    with pytest.raises(DataMismatchError, match="'b' are not over the same validation/test ids"):
        ensemble(["a", "b"], valid, test, labels_of)
    result = ensemble(["a", "b"], [valid[0], Predictions(probs[1][::-1], ids[::-1], classes)], test, labels_of, folds=2)
    assert sum(result["weights"].values()) == pytest.approx(1.0)


def _experts(seed: int = 5, n: int = 600):
    """Two models that each know half of the answer: A tells classes {0, 1} from {2, 3}, B tells {0, 2} from {1, 3}.

    Each spreads its belief evenly inside the half it picks, so only their product singles out the class: the
    case log-linear pooling is for (an arithmetic blend keeps p(true) near 0.45).
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    halves_of_experts = (np.array([[1, 1, 0, 0], [0, 0, 1, 1]]), np.array([[1, 0, 1, 0], [0, 1, 0, 1]]))
    models = []
    for member in halves_of_experts:  # member[h, c] = 1 where class c is in half h
        half = member[:, y].argmax(axis=0)  # the half that holds the true class
        wrong = rng.random(n) < 0.05  # an expert is sometimes wrong
        half = np.where(wrong, 1 - half, half)
        models.append(0.9 * member[half] / 2 + 0.1 / 4)
    return np.stack(models), y


def test_geometric_gradient_matches_finite_differences() -> None:
    probs, y = _models(1, n=50)
    f = blend_loss_and_grad(probs, y, "geometric")
    assert check_grad(lambda t: f(t)[0], lambda t: f(t)[1], np.array([0.3, -0.2, 0.1])) < 1e-6
    loss, _ = f(np.zeros(3))
    assert loss == pytest.approx(log_loss(y, geometric_blend(probs)), abs=1e-9)  # the loss is the blend's log loss


@pytest.mark.parametrize("mean", ["arithmetic", "geometric"])
def test_both_blends_on_simplex_and_no_worse_than_each_model(mean: str) -> None:
    for probs, y in (_models(), _experts()):
        w = fit_weights(probs, y, mean)
        assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
        fitted = log_loss(y, blend(probs, w, mean))
        assert all(fitted <= log_loss(y, p) + 1e-9 for p in probs)
        assert fitted <= log_loss(y, blend(probs, np.full(len(probs), 1 / len(probs)), mean)) + 1e-9
        np.testing.assert_allclose(blend(probs, w, mean).sum(axis=1), 1.0, rtol=1e-9)


def test_auto_takes_the_blend_that_cross_validates_better() -> None:
    probs, y = _experts()
    ids = [f"{i}.jpg" for i in range(len(y))]
    classes = list("abcd")
    sets = [Predictions(p, ids, classes) for p in probs]
    result = ensemble(["a", "b"], sets, sets, dict(zip(ids, y.tolist(), strict=True)), folds=3, mean="auto")
    cv_all = {r["mean"]: r["cv_log_loss"] for r in result["cv"] if r["top_k"] == 2}
    assert result["mean"] == "geometric" and cv_all["geometric"] < cv_all["arithmetic"] - 0.2
    assert result["weights"] == result["weights_by_mean"]["geometric"]
    losses = result["valid_log_loss"]
    assert losses["weighted"] == losses["weighted_geometric"] < losses["weighted_arithmetic"] - 0.2
    assert losses["weighted"] < min(losses["model:a"], losses["model:b"]) - 0.2
    forced = ensemble(["a", "b"], sets, sets, dict(zip(ids, y.tolist(), strict=True)), folds=3, mean="arithmetic")
    assert forced["mean"] == "arithmetic" and forced["valid_log_loss"]["weighted"] == losses["weighted_arithmetic"]
    np.testing.assert_allclose(forced["test"].probs, blend(probs, np.array(list(forced["weights"].values()))))
    with pytest.raises(ConfigError, match="ensemble.mean: 'auto', 'arithmetic' or 'geometric', got 'median'"):
        ensemble(["a", "b"], sets, sets, dict(zip(ids, y.tolist(), strict=True)), mean="median")
