"""What `deepsea classify` writes: one row per image, and the counts per class (abundance, the number a plankton
survey reports). CSV, as the field's classifiers write (the IFCB classifiers' per-image class scores, EcoTaxa's
TSV imports read it with a column mapping)."""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from deepsea.io import atomic_path

TOP = 5


def write_probabilities(
    path: str | os.PathLike[str], ids: list[str], classes: list[str], probs: np.ndarray, *, every_class: bool = False
) -> None:
    """`image,class,probability,class_2,probability_2,...,class_5,probability_5[,<every class>]`, rows in the
    images' order, probabilities renormalised to sum to 1 in float64 (as the submission) and written with 6
    significant digits."""
    probs = np.asarray(probs, np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True) if len(probs) else probs
    top = min(TOP, len(classes))
    header = ["image", "class", "probability"]
    header += [f"{name}_{k}" for k in range(2, top + 1) for name in ("class", "probability")]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header + (list(classes) if every_class else []))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    for image, row, best in zip(ids, probs, order, strict=True):
        ranked = [value for c in best for value in (classes[c], f"{row[c]:.6g}")]
        writer.writerow([image, *ranked, *((f"{p:.6g}" for p in row) if every_class else ())])
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue())


def write_counts(path: str | os.PathLike[str], classes: list[str], probs: np.ndarray) -> dict[str, int]:
    """`class,predicted,expected`: images whose most probable class it is, and the sum of its probabilities (the
    expected count, which does not round a doubtful image to one class); returns the predicted counts."""
    probs = np.asarray(probs, np.float64)
    predicted = np.bincount(probs.argmax(axis=1), minlength=len(classes)) if len(probs) else np.zeros(len(classes))
    expected = probs.sum(axis=0) if len(probs) else np.zeros(len(classes))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["class", "predicted", "expected"])
    writer.writerows([name, int(n), f"{e:.2f}"] for name, n, e in zip(classes, predicted, expected, strict=True))
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue())
    return {name: int(n) for name, n in zip(classes, predicted, strict=True)}
