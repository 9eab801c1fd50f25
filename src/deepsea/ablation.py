"""The ablation table: what each stage of the pipeline bought, one row per step, with the change from the row above.

Steps (seed 000's story): the best single model's centre view -> + 70-view TTA -> + feature fusion -> uniform blend
of the ensembled models -> weighted ensemble -> + pseudo-labels (the final blend). The "best single model" is chosen
the way a user would choose it, by validation log loss of its TTA prediction, never by test labels. Validation
scores come from the packed labels of the standard split; test scores only when true test labels are given (the
demo's hidden labels).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepsea.errors import DataMismatchError
from deepsea.imageset import ImageSet
from deepsea.io import atomic_path, average_predictions, read_json
from deepsea.metrics import log_loss, topk_accuracy
from deepsea.splits import Split
from deepsea.submission import read_labels

log = logging.getLogger(__name__)

COLUMNS = [
    "step", "what", "valid_log_loss", "valid_accuracy", "delta_valid_log_loss",
    "test_log_loss", "test_accuracy", "delta_test_log_loss",
]  # fmt: skip


@dataclass(frozen=True)
class ModelPredictions:
    """One ensembled model's prediction files for the single-model rows."""

    name: str
    centre_valid: str
    centre_test: str
    tta_valid: str
    tta_test: str
    fused_valid: str  # = tta_valid for a model that is not fused
    fused_test: str  # a bagged model's: on its bag's averaged test prediction


class _Scorer:
    """Scores prediction files (one or several, averaged) against validation and, if known, test labels."""

    def __init__(self, data_path: str, split_path: str, test_labels: str | None) -> None:
        data = ImageSet.load(data_path)
        split = Split.from_json(read_json(split_path), split_path)
        self.valid_ids = list(split.valid_ids)
        self.valid_labels = data.labels[data.index_of(self.valid_ids, split_path)]
        self.class_names = data.class_names
        self.test_truth = read_labels(test_labels) if test_labels else None
        self.test_labels_path = test_labels

    def _labels_for(self, ids: list[str], truth: dict[str, int], where: str) -> np.ndarray:
        missing = sorted(set(ids) - set(truth))
        if missing:
            raise DataMismatchError(f"{where}: no label for ids {missing[:3]} ({len(missing)} in all).")
        return np.array([truth[i] for i in ids])

    def valid(self, paths: Sequence[str]) -> tuple[float, float]:
        probs, ids, classes = average_predictions(paths)
        if classes != self.class_names:
            raise DataMismatchError(f"{paths[0]}: its classes differ from the packed data's; rerun it.")
        truth = dict(zip(self.valid_ids, self.valid_labels.tolist(), strict=True))
        if sorted(ids) != sorted(self.valid_ids):
            raise DataMismatchError(f"{paths[0]}: its ids are not the validation split's; rerun its prediction.")
        y = self._labels_for(ids, truth, paths[0])
        return log_loss(y, probs), topk_accuracy(y, probs, 1)

    def test(self, paths: Sequence[str]) -> tuple[float, float] | None:
        if self.test_truth is None:
            return None
        probs, ids, classes = average_predictions(paths)
        column = {name: j for j, name in enumerate(classes)}
        unknown = sorted(set(self.test_truth.values()) - set(column))
        if unknown:
            raise DataMismatchError(f"{self.test_labels_path}: classes not in the predictions: {unknown[:5]}.")
        y = self._labels_for(ids, {i: column[c] for i, c in self.test_truth.items()}, str(self.test_labels_path))
        return log_loss(y, probs), topk_accuracy(y, probs, 1)


def ablation_table(
    models: Sequence[ModelPredictions],
    data_path: str,
    split_path: str,
    out_csv: str | os.PathLike[str],
    ensemble: tuple[str, str] | None = None,
    final: tuple[str, str] | None = None,
    test_labels: str | None = None,
) -> list[dict[str, object]]:
    """Write the ablation CSV; `ensemble` and `final` are (valid, test) prediction files when those stages ran."""
    if not models:
        raise ValueError("ablation: no models given.")
    scorer = _Scorer(data_path, split_path, test_labels)
    best = min(models, key=lambda m: scorer.valid([m.tta_valid])[0])
    steps: list[tuple[str, list[str], list[str]]] = [
        (f"best single model ({best.name}), centre view", [best.centre_valid], [best.centre_test]),
        ("+ 70-view TTA", [best.tta_valid], [best.tta_test]),
    ]
    if best.fused_valid != best.tta_valid:
        steps.append(("+ feature fusion", [best.fused_valid], [best.fused_test]))
    if len(models) > 1:
        steps.append(
            (f"uniform blend of {len(models)} models", [m.fused_valid for m in models], [m.fused_test for m in models])
        )
    if ensemble:
        steps.append(("weighted ensemble", [ensemble[0]], [ensemble[1]]))
    if final:
        steps.append(("+ pseudo-labels (final)", [final[0]], [final[1]]))

    rows: list[dict[str, object]] = []
    for k, (what, valid_paths, test_paths) in enumerate(steps, start=1):
        valid_loss, valid_acc = scorer.valid(valid_paths)
        test = scorer.test(test_paths)
        row: dict[str, object] = {
            "step": k,
            "what": what,
            "valid_log_loss": round(valid_loss, 4),
            "valid_accuracy": round(valid_acc, 4),
            "delta_valid_log_loss": round(valid_loss - float(rows[-1]["valid_log_loss"]), 4) if rows else "",
            "test_log_loss": round(test[0], 4) if test else "",
            "test_accuracy": round(test[1], 4) if test else "",
            "delta_test_log_loss": round(test[0] - float(rows[-1]["test_log_loss"]), 4) if test and rows else "",
        }
        rows.append(row)
        log.info("%d. %s: valid log loss %.4f%s", k, what, valid_loss, f", test {test[0]:.4f}" if test else "")
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows
