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
UNCLASSIFIED = "unclassified"  # the label of an image whose probability is under its class's threshold


def write_probabilities(
    path: str | os.PathLike[str],
    ids: list[str],
    classes: list[str],
    probs: np.ndarray,
    *,
    every_class: bool = False,
    thresholds: np.ndarray | None = None,
) -> float:
    """`image,class,probability[,label],class_2,probability_2,...,class_5,probability_5[,<every class>]`, rows in
    the images' order, probabilities renormalised to sum to 1 in float64 (as the submission) and written with 6
    significant digits. With per-class `thresholds`, `label` is the class where its probability reaches the
    class's threshold, else `unclassified`; returns the share of images left unclassified."""
    probs = np.asarray(probs, np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True) if len(probs) else probs
    top = min(TOP, len(classes))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    best = order[:, 0] if len(probs) else np.zeros(0, int)
    kept = probs[np.arange(len(probs)), best] >= thresholds[best] if thresholds is not None else None
    header = ["image", "class", "probability", *(["label"] if kept is not None else [])]
    header += [f"{name}_{k}" for k in range(2, top + 1) for name in ("class", "probability")]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header + (list(classes) if every_class else []))
    for n, (image, row, ranked) in enumerate(zip(ids, probs, order, strict=True)):
        cells = [value for c in ranked for value in (classes[c], f"{row[c]:.6g}")]
        if kept is not None:
            cells.insert(2, classes[ranked[0]] if kept[n] else UNCLASSIFIED)
        writer.writerow([image, *cells, *((f"{p:.6g}" for p in row) if every_class else ())])
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue())
    return float(1.0 - kept.mean()) if kept is not None and len(kept) else 0.0


def write_counts(path: str | os.PathLike[str], classes: list[str], columns: dict[str, np.ndarray | list[str]]) -> None:
    """`class,<column>,...`: per class, the count estimates and their interval ends (numbers, 2 decimals) and the
    words that say where the reported count comes from (deploy/classify.py)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["class", *columns])
    for c, name in enumerate(classes):
        cells = (value if isinstance(value, str) else f"{value:.2f}" for value in (v[c] for v in columns.values()))
        writer.writerow([name, *cells])
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue())
