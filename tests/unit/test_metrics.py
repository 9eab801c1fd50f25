"""Metrics checked against scikit-learn (computed independently) and against a hand-worked example."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import top_k_accuracy_score

from deepsea.metrics import class_prior, log_loss, topk_accuracy


def _random_case(seed: int, n: int = 300, k: int = 7):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k) * 0.7, size=n)
    labels = rng.integers(0, k, n)
    labels[:k] = np.arange(k)  # every class present, as scikit-learn requires
    return labels, probs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_loss_equals_sklearn(seed: int) -> None:
    labels, probs = _random_case(seed)
    assert log_loss(labels, probs) == pytest.approx(sk_log_loss(labels, probs, labels=range(7)), rel=1e-12)


def test_log_loss_clips_like_kaggle() -> None:
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    # row 0: true class has probability 0 -> clipped to 1e-15 and renormalised by (1 - 1e-15 + 1e-15) = 1
    expected = -(np.log(1e-15) + np.log(0.5)) / 2
    assert log_loss(np.array([1, 0]), probs) == pytest.approx(expected, rel=1e-9)
    assert np.isfinite(log_loss(np.array([1, 0]), probs))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_topk_equals_sklearn(k: int) -> None:
    labels, probs = _random_case(7)
    assert topk_accuracy(labels, probs, k) == pytest.approx(top_k_accuracy_score(labels, probs, k=k, labels=range(7)))


def test_class_prior() -> None:
    np.testing.assert_allclose(class_prior(np.array([0, 0, 2, 2, 2, 2]), 3), [1 / 3, 0, 2 / 3])
