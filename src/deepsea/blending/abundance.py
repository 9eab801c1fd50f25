"""How many of each class a sample holds: three estimates from a classifier's predictions, with bootstrap intervals.

Counting the most probable class of each image ("classify and count") is biased whenever the sample's class mix
differs from the training mix: a class that is often mistaken for another loses images to it in proportion to how
common it is. The quantification literature's standard remedies (Forman 2008, "Quantifying counts and costs via
classification"; Gonzalez et al. 2017, "A review on quantification learning"):

- argmax counts: images whose most probable class it is;
- probability sums: the sum of each class's probability over the images (no rounding of doubtful images);
- adjusted counts (adjusted classify and count): with C[i, j] the share of validation images of true class i that
  are predicted j, the predicted counts q satisfy q ~ C^T x for the true counts x; x is the least-squares solution,
  clipped to be non-negative and rescaled to sum to the number of images. C is measured with one extra, correctly
  recognised image per class (PRIOR_IMAGES): with a few validation images per class, an unsmoothed C makes the
  correction noisier than the bias it removes.

The bootstrap resamples the validation images (their confusion rates are what the adjusted counts rest on) and the
sample's images, and gives each estimate a percentile interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# One extra correctly recognised validation image per class: a rare class seen once or twice on validation, and
# missed there once, would otherwise have its count doubled or worse; the prior's weight fades as its validation
# images grow (docs/classify.md, docs/results.md: on the demo it cut the worst case's error from 68 to 27 images).
PRIOR_IMAGES = 1.0


def confusion_rates(
    predicted: np.ndarray, labels: np.ndarray, n_classes: int, prior: float = PRIOR_IMAGES
) -> np.ndarray:
    """C[i, j]: the share of validation images of class i predicted j, each class counted with `prior` extra
    images recognised as itself (a class without validation images is assumed always recognised)."""
    counts = prior * np.eye(n_classes)
    np.add.at(counts, (labels, predicted), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.eye(n_classes), where=totals > 0)
    return rates


def adjusted_counts(predicted_counts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """The true counts x with rates^T x closest to the predicted counts (least squares), clipped at 0 and rescaled
    to the number of images."""
    n = float(predicted_counts.sum())
    x, *_ = np.linalg.lstsq(rates.T, predicted_counts.astype(np.float64), rcond=None)
    x = np.clip(x, 0.0, None)
    return x * (n / x.sum()) if x.sum() > 0 else predicted_counts.astype(np.float64)


@dataclass(frozen=True)
class Abundance:
    """Per class: the three estimates, and each one's bootstrap interval (lower, upper)."""

    argmax: np.ndarray
    probability_sum: np.ndarray
    adjusted: np.ndarray
    intervals: dict[str, tuple[np.ndarray, np.ndarray]]


def _estimates(sample: np.ndarray, valid_predicted: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    n_classes = sample.shape[1]
    counts = np.bincount(sample.argmax(axis=1), minlength=n_classes).astype(np.float64)
    rates = confusion_rates(valid_predicted, labels, n_classes)
    return {"argmax": counts, "probability_sum": sample.sum(axis=0), "adjusted": adjusted_counts(counts, rates)}


def abundance(
    sample: np.ndarray, valid_probs: np.ndarray, labels: np.ndarray, *, rounds: int = 200, seed: int = 0
) -> Abundance:
    """The estimates for `sample` (images x classes probabilities) given validation probabilities and labels, with
    95% percentile intervals over `rounds` bootstrap resamples of both image sets."""
    valid_predicted = valid_probs.argmax(axis=1)
    point = _estimates(sample, valid_predicted, labels)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {key: [] for key in point}
    for _ in range(rounds):
        s = rng.integers(0, len(sample), len(sample))
        v = rng.integers(0, len(labels), len(labels))
        for key, value in _estimates(sample[s], valid_predicted[v], labels[v]).items():
            draws[key].append(value)
    intervals = {
        key: (np.percentile(np.stack(values), 2.5, axis=0), np.percentile(np.stack(values), 97.5, axis=0))
        for key, values in draws.items()
    }
    return Abundance(point["argmax"], point["probability_sum"], point["adjusted"], intervals)
