"""The estimators of calibration, thresholds and abundance (blending/calibration.py, blending/abundance.py) against
cases computed by hand, and the shrunk adjusted counts against argmax counts over many simulated samples (numpy
only, so the draws are the same on every CPU)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepsea.blending.abundance import (
    MIN_VALIDATION_PER_CLASS,
    abundance,
    adjusted_counts,
    confusion_rates,
    shrinkage,
    shrunk_counts,
)
from deepsea.blending.calibration import class_thresholds, fit_temperature, lowest_threshold, temper


def test_temper_raises_to_the_power_one_over_t() -> None:
    p = np.array([[0.5, 0.25, 0.25]])
    np.testing.assert_allclose(temper(p, 1.0), p)
    np.testing.assert_allclose(temper(p, 0.5), [[2 / 3, 1 / 6, 1 / 6]])  # squares, renormalised
    np.testing.assert_allclose(temper(p, 1e6), [[1 / 3, 1 / 3, 1 / 3]], atol=1e-5)  # hot: uniform


def test_overconfident_predictions_get_the_temperature_that_calibrates_them() -> None:
    """0.99 for the predicted class, right 70% of the time: the calibrated confidence is 0.7, so
    (0.99 / 0.01)^(1/T) = 0.7 / 0.3 and T = ln 99 / ln(7/3)."""
    probs = np.tile([0.99, 0.01], (1000, 1))
    labels = np.array([0] * 700 + [1] * 300)
    fit = fit_temperature(probs, labels)
    assert fit.temperature == pytest.approx(math.log(99) / math.log(7 / 3), rel=1e-3)
    assert fit.log_loss_after == pytest.approx(-(0.7 * math.log(0.7) + 0.3 * math.log(0.3)), rel=1e-4)
    assert fit.log_loss_after < fit.log_loss_before


def test_calibration_never_makes_the_log_loss_worse() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        probs, labels = rng.dirichlet(np.ones(4), 50), rng.integers(0, 4, 50)
        fit = fit_temperature(probs, labels)
        assert fit.log_loss_after <= fit.log_loss_before
    calibrated = np.tile([0.7, 0.3], (100, 1)), np.array([0] * 70 + [1] * 30)
    assert fit_temperature(*calibrated).temperature == pytest.approx(1.0, abs=1e-3)


def test_lowest_threshold_at_a_target_precision() -> None:
    confidence, correct = np.array([0.9, 0.8, 0.7, 0.6]), np.array([True, True, False, True])
    # kept from the top: precision 1, 1, 2/3, 3/4
    assert lowest_threshold(confidence, correct, 0.9) == 0.8
    assert lowest_threshold(confidence, correct, 0.75) == 0.0  # all four reach it: every label kept
    assert lowest_threshold(confidence, ~correct, 0.5) > 1.0  # never reached: no label kept


def test_rarely_predicted_classes_take_the_pooled_threshold() -> None:
    probs = np.zeros((30, 3))
    probs[:25, 0], probs[25:, 1] = 0.9, 0.6  # class 0 predicted 25 times, class 1 five times, class 2 never
    probs[:, 2] = 1 - probs.max(axis=1)
    labels = np.array([0] * 20 + [1] * 5 + [1] * 5)  # 20 of 25 class-0 predictions right, class 1's all right
    thresholds, pooled = class_thresholds(probs, labels, precision=0.8)
    assert pooled == 0.0  # 25 of 30 right: every label kept at 0.8
    assert thresholds[0] == 0.0 and thresholds[1] == pooled and thresholds[2] == pooled


def test_confusion_rates_and_adjusted_counts_by_hand() -> None:
    rates = confusion_rates(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), 3, prior=0.0)
    np.testing.assert_allclose(rates, [[0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]])  # class 2 unseen: identity row
    smoothed = confusion_rates(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]), 3)  # one more right image each
    np.testing.assert_allclose(smoothed, [[2 / 3, 1 / 3, 0], [0, 1, 0], [0, 0, 1]])
    true = np.array([10.0, 20.0, 0.0])
    np.testing.assert_allclose(adjusted_counts(rates.T @ true, rates), true)  # predicted 5, 25, 0
    leaky = np.array([[0.8, 0.2], [0.1, 0.9]])
    # solving gives (-4.29, 34.29): clipped to 0, then rescaled to the 30 images
    np.testing.assert_allclose(adjusted_counts(np.array([0.0, 30.0]), leaky), [0.0, 30.0])


def test_adjusted_counts_undo_a_known_confusion_and_the_interval_holds_them() -> None:
    rng = np.random.default_rng(1)
    n_valid, n_classes = 2000, 3
    labels = rng.integers(0, n_classes, n_valid)
    confusion = np.array([[0.8, 0.2, 0.0], [0.1, 0.9, 0.0], [0.0, 0.3, 0.7]])

    def predict(true: np.ndarray) -> np.ndarray:
        guessed = np.array([rng.choice(n_classes, p=confusion[t]) for t in true])
        return np.eye(n_classes)[guessed] * 0.9 + 0.1 / n_classes

    valid = predict(labels)
    true_sample = np.array([0] * 500 + [2] * 500)  # a mix unlike the validation's
    estimate = abundance(predict(true_sample), valid, labels, rounds=100)
    truth = np.bincount(true_sample, minlength=n_classes)
    assert np.abs(estimate.adjusted - truth).sum() < np.abs(estimate.argmax - truth).sum() / 3
    low, high = estimate.intervals["adjusted"]
    assert np.all(low <= estimate.adjusted + 1e-9) and np.all(estimate.adjusted <= high + 1e-9)
    assert estimate.argmax.sum() == pytest.approx(1000) and estimate.adjusted.sum() == pytest.approx(1000)


def test_shrinkage_keeps_what_stands_out_of_the_noise_by_hand() -> None:
    draws = np.array([[5.0, 5.0, 0.0], [-5.0, -5.0, 0.0]])  # variance 25 in the first two classes, 0 in the last
    kept = shrinkage(np.array([10.0, 3.0, 0.0]), draws, multiple=2.0)
    np.testing.assert_allclose(kept, [(100 - 50) / 100, 0.0, 0.0])  # 3^2 < 2 x 25: within the noise
    counts = shrunk_counts(np.array([10.0, 20.0, 0.0]), np.array([20.0, 10.0, 0.0]), np.array([0.5, 0.0, 0.0]))
    np.testing.assert_allclose(counts, np.array([15.0, 20.0, 0.0]) * 30 / 35)  # still the 30 images
    assert np.all(shrunk_counts(np.array([3.0, 0.0]), np.array([0.0, 3.0]), np.array([0.3, 1.0])) >= 0)


def _simulated_errors(per_class: int, draws: int = 80, n_classes: int = 6, gate: float = 0) -> dict[str, np.ndarray]:
    """Total absolute count error of argmax, raw and shrunk adjusted counts on `draws` samples of 400 images with
    Dirichlet(1) class mixes; every class is taken for the next one 20% of the time, and the validation set holds
    `per_class` images per class on average, mixed unlike the samples; `gate`: the fewest validation images per
    class that the adjustment needs."""
    rng = np.random.default_rng(per_class)
    confusion = 0.8 * np.eye(n_classes) + 0.2 * np.roll(np.eye(n_classes), 1, axis=1)

    def predict(true: np.ndarray) -> np.ndarray:
        guessed = (rng.random(len(true))[:, None] > confusion[true].cumsum(axis=1)).sum(axis=1)
        return np.eye(n_classes)[guessed] * 0.9 + 0.1 / n_classes

    errors: dict[str, list[float]] = {"argmax": [], "adjusted_raw": [], "adjusted": []}
    for draw in range(draws):
        labels = rng.choice(n_classes, per_class * n_classes, p=rng.dirichlet(2 * np.ones(n_classes)))
        true = rng.choice(n_classes, 400, p=rng.dirichlet(np.ones(n_classes)))
        found = abundance(predict(true), predict(labels), labels, rounds=100, seed=draw, min_validation_per_class=gate)
        for key, values in errors.items():
            values.append(float(np.abs(getattr(found, key) - np.bincount(true, minlength=n_classes)).sum()))
    return {key: np.array(values) for key, values in errors.items()}


def _paired(errors: dict[str, np.ndarray], key: str) -> tuple[float, float]:
    diff = errors[key] - errors["argmax"]
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


def test_shrunk_adjusted_counts_are_not_worse_than_argmax_on_thin_validation_and_better_on_ample() -> None:
    """Two validation images per class: the textbook adjustment is worse than argmax counts by several standard
    errors, the shrunk one is not (within 2 SE of them or better), and under the evidence gate the counts are the
    argmax counts. A hundred per class: the shrunk adjustment beats argmax by several SE, as the raw one does."""
    thin = _simulated_errors(per_class=2)
    raw, raw_se = _paired(thin, "adjusted_raw")
    shrunk, shrunk_se = _paired(thin, "adjusted")
    assert raw > 3 * raw_se, (raw, raw_se)
    assert shrunk < 2 * shrunk_se, (shrunk, shrunk_se)
    gated = _simulated_errors(per_class=2, draws=5, gate=MIN_VALIDATION_PER_CLASS)
    np.testing.assert_allclose(gated["adjusted"], gated["argmax"])
    ample = _simulated_errors(per_class=100, gate=MIN_VALIDATION_PER_CLASS)
    shrunk, shrunk_se = _paired(ample, "adjusted")
    assert shrunk < -4 * shrunk_se, (shrunk, shrunk_se)
