"""Calibration of the final prediction and per-class "unclassified" thresholds, fitted on validation predictions.

Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"): one number T for all classes,
p_c proportional to p_c^(1/T), chosen to minimise the log loss of predictions the models did not train on. T = 1
(no change) is always a candidate, so calibration never makes that log loss worse. T > 1 softens overconfident
predictions, T < 1 sharpens timid ones (an ensemble's averaged probabilities are often too timid).

Thresholds follow IFCB practice (the MATLAB ifcb-analysis chain; SMHI's ifcb-pytorch-classify writes them to
thresholds.json): a label is kept only when its probability reaches its class's threshold, else the image is
"unclassified". A class's threshold is the lowest probability at which that class's validation predictions reach
the target precision; a class with too few validation predictions takes the threshold of all classes pooled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from deepsea.metrics import log_loss

LOG_FLOOR = 1e-15  # probabilities are clipped here before the log
T_RANGE = (0.05, 20.0)  # the temperatures searched (log-uniformly bounded)
MIN_PREDICTIONS = 10  # a class predicted fewer times on validation takes the pooled threshold


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """p^(1/T), renormalised (float64); T = 1 returns the probabilities renormalised only."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), LOG_FLOOR, 1.0)) / temperature
    return np.exp(log_softmax(logits, axis=1))


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float  # 1.0 when fitting did not lower the log loss
    log_loss_before: float  # at T = 1
    log_loss_after: float  # at the chosen T

    def to_json(self) -> dict[str, float]:
        return {"temperature": self.temperature, "log_loss_before": self.log_loss_before,
                "log_loss_after": self.log_loss_after}  # fmt: skip


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> TemperatureFit:
    """The T in T_RANGE with the lowest log loss of `temper(probs, T)` against `labels`, or 1 if none beats it."""
    before = log_loss(labels, temper(probs, 1.0))
    low, high = np.log(T_RANGE)
    found = minimize_scalar(
        lambda log_t: log_loss(labels, temper(probs, float(np.exp(log_t)))), bounds=(low, high), method="bounded"
    )
    temperature, after = float(np.exp(found.x)), float(found.fun)
    if not after < before:
        return TemperatureFit(1.0, before, before)
    return TemperatureFit(temperature, before, after)


def lowest_threshold(confidence: np.ndarray, correct: np.ndarray, precision: float) -> float:
    """The lowest t such that the predictions with confidence >= t are correct at least `precision` of the time;
    1.0 + a little (no label kept) when no t reaches it, 0.0 when every prediction can be kept."""
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)  # precision of the top k
    reached = np.flatnonzero(hits >= precision)
    if len(reached) == 0:
        return float(np.nextafter(1.0, 2.0))
    k = reached[-1]  # the most predictions kept at the target precision
    return 0.0 if k == len(order) - 1 else float(confidence[order][k])


def class_thresholds(probs: np.ndarray, labels: np.ndarray, precision: float) -> tuple[np.ndarray, float]:
    """Per class, the threshold at which its validation predictions (images whose most probable class it is)
    reach `precision`; classes predicted fewer than MIN_PREDICTIONS times take the pooled threshold (all classes'
    predictions together), which is also returned."""
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    correct = predicted == labels
    pooled = lowest_threshold(confidence, correct, precision)
    thresholds = np.full(probs.shape[1], pooled)
    for c in range(probs.shape[1]):
        mine = predicted == c
        if mine.sum() >= MIN_PREDICTIONS:
            thresholds[c] = lowest_threshold(confidence[mine], correct[mine], precision)
    return thresholds, pooled
