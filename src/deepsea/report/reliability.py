"""The report's calibration section: reliability diagrams before and after the temperature, and the per-class
precision and recall of the "unclassified" thresholds that `deepsea classify --precision` would apply.

A reliability diagram (Guo et al. 2017, fig. 1) bins the images by their top probability and plots each bin's mean
confidence against its accuracy; a calibrated prediction lies on the diagonal. The expected calibration error (ECE)
is the image-weighted mean gap. Thresholds are fitted on the calibrated validation prediction, as the model bundle
fits them (deploy/classify.py), so the validation columns are in-sample; the test columns, where true test labels
are known, show whether they carry over.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepsea.blending.adoption import labels_of
from deepsea.blending.calibration import class_thresholds, temper
from deepsea.blending.submission import read_labels, truth_columns
from deepsea.io import atomic_path, read_json
from deepsea.predictions import average

log = logging.getLogger(__name__)

BINS = 10  # equal-width confidence bins of the reliability diagram
DEFAULT_PRECISION = 0.9  # the thresholds shown when classify.precision is null (what a user would try first)


@dataclass(frozen=True)
class Labelled:
    """Probabilities of labelled images (validation, or test with known labels)."""

    probs: np.ndarray
    labels: np.ndarray


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin (equal width over (0, 1]): mean top probability, accuracy, image count (NaN where empty)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(which, confidence, bins) / count
        accuracy = np.bincount(which, correct.astype(float), bins) / count
    return mean_conf, accuracy, count


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """The image-weighted mean |accuracy - confidence| over the reliability diagram's bins."""
    mean_conf, accuracy, count = reliability(probs, labels, bins)
    filled = count > 0
    return float(np.sum(count[filled] * np.abs(accuracy[filled] - mean_conf[filled])) / count.sum())


def threshold_rows(
    class_names: Sequence[str], valid: Labelled, test: Labelled | None, precision: float
) -> list[dict[str, object]]:
    """Per class (then all classes): its threshold at `precision` fitted on `valid`, and the precision, recall and
    share kept of its predictions on validation and, where known, on test."""
    thresholds, pooled = class_thresholds(valid.probs, valid.labels, precision)
    rows = []
    for c, name in enumerate([*class_names, "all classes"]):
        row: dict[str, object] = {"class": name, "threshold": round(float(thresholds[c]), 4) if c < len(class_names)
                                  else f"pooled {pooled:.4f}"}  # fmt: skip
        for subset, data in (("valid", valid), ("test", test)):
            if data is not None:
                row |= _kept_scores(data, thresholds, None if c == len(class_names) else c, subset)
        rows.append(row)
    return rows


def _kept_scores(data: Labelled, thresholds: np.ndarray, c: int | None, subset: str) -> dict[str, object]:
    """Precision and recall of the labels kept at `thresholds` (class `c`, or all classes), and the share of the
    images predicted as it that were left unclassified."""
    predicted = data.probs.argmax(axis=1)
    kept = data.probs.max(axis=1) >= thresholds[predicted]
    mine = predicted == c if c is not None else np.ones(len(predicted), bool)
    truly = data.labels == c if c is not None else np.ones(len(predicted), bool)
    hits = (kept & mine & (predicted == data.labels)).sum()
    return {
        f"{subset}_predicted": int(mine.sum()),
        f"{subset}_precision": _share(hits, (kept & mine).sum()),
        f"{subset}_recall": _share(hits, truly.sum()),
        f"{subset}_unclassified": _share((mine & ~kept).sum(), mine.sum()),
    }


def _share(part: int, whole: int) -> float | str:
    """part / whole to 4 digits, or '' (not a 0 that reads as a score) when there is nothing to divide."""
    return round(float(part / whole), 4) if whole else ""


def load_source(
    paths: Sequence[str], *, data: str | None = None, test_labels: str | None = None
) -> tuple[Labelled, list[str]]:
    """(the source's prediction with its labels, class names): labelled from the packed training data (validation)
    or the true test labels."""
    averaged = average(paths)
    if data is not None:
        labels = labels_of(averaged, data, "plot-calibration")
    else:
        truth = read_labels(str(test_labels))
        labels = truth_columns(averaged.ids, averaged.class_names, truth, str(test_labels))
    return Labelled(averaged.probs.astype(np.float64), labels), averaged.class_names


def tempered(labelled: Labelled, temperature: float) -> Labelled:
    """The same images with their probabilities tempered by T (calibration.temper)."""
    return Labelled(temper(labelled.probs, temperature), labelled.labels)


def read_calibration(path: str | os.PathLike[str] | None) -> tuple[float, float, bool]:
    """(the temperature fitted, the one used, whether it was adopted) from fit-calibration's JSON; no file: none."""
    if not path:
        return 1.0, 1.0, False
    fit = read_json(path)
    return float(fit["fitted_temperature"]), float(fit["temperature"]), fit["temperature"] != 1.0


def write_rows(rows: list[dict[str, object]], out_csv: str | os.PathLike[str]) -> None:
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[-1]), restval="")
        writer.writeheader()
        writer.writerows(rows)
