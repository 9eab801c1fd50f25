"""How many of each class a sample holds: estimates from a classifier's predictions, with percentile intervals.

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
  correction noisier than the bias it removes. Then the correction (adjusted minus argmax) is shrunk, class by
  class, by how much of it stands out of its noise (`shrinkage`), and dropped under MIN_VALIDATION_PER_CLASS: a
  validation set too thin to measure the confusions gives back the argmax counts, not counts further from the
  truth than doing nothing.

Each estimate's percentile interval comes from draws that resample the sample's images (the bootstrap) and draw the
confusion rates from their posterior given the validation counts (Dirichlet, 1 / K per cell added): that is also
the noise the correction is shrunk by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# One extra correctly recognised validation image per class: a rare class seen once or twice on validation, and
# missed there once, would otherwise have its count doubled or worse; the prior's weight fades as its validation
# images grow (docs/classify.md, docs/results.md: on the demo it cut the worst case's error from 68 to 27 images).
PRIOR_IMAGES = 1.0
# How cautious the shrinkage is: a class's correction d is kept in the share max(0, 1 - NOISE_MULTIPLE v / d^2) of
# it, v its variance over the draws. 1 is the textbook plug-in; 2 (d must exceed 1.4 standard deviations to count)
# was chosen on simulated and real samples (docs/results.md, benchmarks/counts_shift.py).
NOISE_MULTIPLE = 2.0
# Below this many validation images per class (on average) the confusion rates are too poorly measured for any
# correction: inverting them biases the counts in ways their own noise does not show, and the counts are argmax
# counts (docs/results.md: on real images, 5 per class made the shrunk counts worse than argmax, 10 better).
MIN_VALIDATION_PER_CLASS = 10


def confusion_counts(
    predicted: np.ndarray, labels: np.ndarray, n_classes: int, prior: float = PRIOR_IMAGES
) -> np.ndarray:
    """N[i, j]: validation images of class i predicted j, plus `prior` on the diagonal."""
    counts = prior * np.eye(n_classes)
    np.add.at(counts, (labels, predicted), 1.0)
    return counts


def confusion_rates(
    predicted: np.ndarray, labels: np.ndarray, n_classes: int, prior: float = PRIOR_IMAGES
) -> np.ndarray:
    """C[i, j]: the share of validation images of class i predicted j, each class counted with `prior` extra
    images recognised as itself (a class without validation images is assumed always recognised)."""
    return rates_from_counts(confusion_counts(predicted, labels, n_classes, prior))


def rates_from_counts(counts: np.ndarray) -> np.ndarray:
    """Each row of a confusion count matrix as shares (a row without images: the identity's)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.eye(len(counts)), where=totals > 0)


def adjusted_counts(predicted_counts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """The true counts x with rates^T x closest to the predicted counts (least squares), clipped at 0 and rescaled
    to the number of images."""
    n = float(predicted_counts.sum())
    x, *_ = np.linalg.lstsq(rates.T, predicted_counts.astype(np.float64), rcond=None)
    x = np.clip(x, 0.0, None)
    return x * (n / x.sum()) if x.sum() > 0 else predicted_counts.astype(np.float64)


def shrinkage(correction: np.ndarray, draws: np.ndarray, multiple: float = NOISE_MULTIPLE) -> np.ndarray:
    """Per class, the share of the adjustment to keep: max(0, 1 - multiple * v / d^2) for the correction d
    (adjusted minus argmax counts) and its variance v over the draws. With d = D + e (noise e of variance v),
    argmax + w d has expected squared error (1 - w)^2 D^2 + w^2 v, least at w = D^2 / (D^2 + v), and D^2 is
    estimated by d^2 - v: the positive-part James-Stein rule, class by class (Efron and Morris 1973, "Stein's
    estimation rule and its competitors"), made more cautious by `multiple`. A correction within its own noise
    is dropped (w = 0), a clear one kept almost whole."""
    variance = multiple * draws.var(axis=0)
    squared = correction**2
    return np.divide(np.clip(squared - variance, 0.0, None), squared, out=np.zeros_like(squared), where=squared > 0)


def shrunk_counts(argmax: np.ndarray, adjusted: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """argmax + kept * (adjusted - argmax), rescaled to the number of images (never negative: both ends are not)."""
    mixed = argmax + kept * (adjusted - argmax)
    return mixed * (argmax.sum() / mixed.sum()) if mixed.sum() > 0 else argmax.astype(np.float64)


@dataclass(frozen=True)
class Abundance:
    """Per class: the estimates (`adjusted` shrunk toward argmax by `kept`, the share of the raw correction
    `adjusted_raw - argmax` that its noise leaves standing), and each one's interval (lower, upper)."""

    argmax: np.ndarray
    probability_sum: np.ndarray
    adjusted: np.ndarray
    adjusted_raw: np.ndarray
    kept: np.ndarray
    intervals: dict[str, tuple[np.ndarray, np.ndarray]]
    too_few_validation: bool = False  # under MIN_VALIDATION_PER_CLASS: nothing kept of the correction


def _estimates(sample: np.ndarray, rates: np.ndarray) -> dict[str, np.ndarray]:
    counts = np.bincount(sample.argmax(axis=1), minlength=sample.shape[1]).astype(np.float64)
    return {"argmax": counts, "probability_sum": sample.sum(axis=0), "adjusted_raw": adjusted_counts(counts, rates)}


def _draws(sample: np.ndarray, confusion: np.ndarray, rounds: int, seed: int) -> dict[str, np.ndarray]:
    """Each estimate over `rounds` draws (rounds x classes): the sample's images resampled (the bootstrap), and each
    class's confusion row drawn from its Dirichlet posterior, the validation counts plus 1 / K per cell. Resampling
    the validation images instead would never move a class whose few images were all recognised: the noise of
    its row would read as zero (docs/results.md: on thin validation sets that let noisy corrections through)."""
    rng = np.random.default_rng(seed)
    spread = 1.0 / len(confusion)
    draws: dict[str, list[np.ndarray]] = {}
    for _ in range(rounds):
        resampled = sample[rng.integers(0, len(sample), len(sample))]
        rates = np.stack([rng.dirichlet(row + spread) for row in confusion])
        for key, value in _estimates(resampled, rates).items():
            draws.setdefault(key, []).append(value)
    return {key: np.stack(values) for key, values in draws.items()}


def abundance(
    sample: np.ndarray,
    valid_probs: np.ndarray,
    labels: np.ndarray,
    *,
    rounds: int = 200,
    seed: int = 0,
    level: float = 0.95,
    noise_multiple: float = NOISE_MULTIPLE,
    min_validation_per_class: float = MIN_VALIDATION_PER_CLASS,
) -> Abundance:
    """The estimates for `sample` (images x classes probabilities) given validation probabilities and labels, with
    `level` percentile intervals over `rounds` draws (`_draws`: the sample resampled, the confusion rates drawn
    from their posterior). The adjusted counts keep of their correction what its noise leaves standing
    (`shrinkage`), so that on a thin validation set they
    fall back to argmax counts instead of adding noise to them; under MIN_VALIDATION_PER_CLASS images per class
    they are the argmax counts (`min_validation_per_class`)."""
    confusion = confusion_counts(valid_probs.argmax(axis=1), labels, sample.shape[1])
    point = _estimates(sample, rates_from_counts(confusion))
    draws = _draws(sample, confusion, rounds, seed)
    kept = shrinkage(point["adjusted_raw"] - point["argmax"], draws["adjusted_raw"] - draws["argmax"], noise_multiple)
    too_few = len(labels) < min_validation_per_class * sample.shape[1]
    kept = np.zeros_like(kept) if too_few else kept
    point["adjusted"] = shrunk_counts(point["argmax"], point["adjusted_raw"], kept)
    draws["adjusted"] = np.stack(
        [shrunk_counts(a, r, kept) for a, r in zip(draws["argmax"], draws["adjusted_raw"], strict=True)]
    )
    tail = 100 * (1 - level) / 2
    intervals = {
        key: (np.percentile(values, tail, axis=0), np.percentile(values, 100 - tail, axis=0))
        for key, values in draws.items()
    }
    return Abundance(
        point["argmax"], point["probability_sum"], point["adjusted"], point["adjusted_raw"], kept, intervals, too_few
    )
