"""Scores as the competition computed them: multiclass log loss (clipped, rows renormalised) and top-k accuracy."""

from __future__ import annotations

import numpy as np

from deepsea.errors import DataMismatchError

KAGGLE_EPS = 1e-15  # Kaggle clipped predictions to [eps, 1 - eps] and renormalised each row before scoring


def log_loss(labels: np.ndarray, probs: np.ndarray, eps: float = KAGGLE_EPS) -> float:
    """Mean negative log probability of the true class, after Kaggle's clipping and row renormalisation."""
    losses = image_log_losses(labels, probs, eps)
    return float(np.mean(losses)) if len(losses) else float("nan")


def image_log_losses(labels: np.ndarray, probs: np.ndarray, eps: float = KAGGLE_EPS) -> np.ndarray:
    """Each image's negative log probability of its true class (clipped and renormalised as Kaggle did): the
    terms of the log loss, kept apart so two predictions of the same images can be compared image by image."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(labels) != len(probs):
        raise DataMismatchError(f"log_loss: {len(labels)} labels for predictions of shape {probs.shape}.")
    if len(labels) == 0:
        return np.zeros(0)
    clipped = np.clip(probs, eps, 1.0 - eps)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return -np.log(clipped[np.arange(len(labels)), labels])


def paired_standard_error(losses_a: np.ndarray, losses_b: np.ndarray) -> float:
    """Standard error of the mean per-image difference of two predictions' losses on the same images: how far
    their log losses may differ by chance alone (0 for fewer than 2 images)."""
    diff = np.asarray(losses_a, dtype=np.float64) - np.asarray(losses_b, dtype=np.float64)
    return float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0


def topk_accuracy(labels: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Fraction of images whose true class is among the k most probable (ties broken by class index)."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return float("nan")
    k = min(k, probs.shape[1])
    top = np.argsort(-np.asarray(probs), axis=1, kind="stable")[:, :k]
    return float(np.mean((top == labels[:, None]).any(axis=1)))


def class_prior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies of `labels`: the prediction of a model that ignores the image (the baseline to beat)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    return counts / counts.sum()


def score(labels: np.ndarray, probs: np.ndarray, max_k: int = 5) -> dict[str, float]:
    """Log loss and top-1..max_k accuracy in one dict (the evaluation table's columns)."""
    result = {"log_loss": log_loss(labels, probs), "n_images": int(len(labels))}
    for k in range(1, max_k + 1):
        result[f"top{k}_accuracy"] = topk_accuracy(labels, probs, k)
    return result
