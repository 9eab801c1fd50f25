"""The ablation table: what each stage of the pipeline bought, one row per step, with the change from the row above.

Steps (the story of the Deep Sea documentation): the best single model's centre view -> + 70-view TTA -> + feature
fusion -> uniform blend of the ensembled models -> weighted ensemble -> + pseudo-labels (the final blend) ->
+ calibration (one temperature, temperature.py). The "best
single model" is chosen the way a user would choose it, by validation log loss of its TTA prediction, never by test
labels. Validation scores come from the packed labels of the standard split; test scores only when true test labels are
given (the demo's hidden labels)."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deepsea.blending.submission import read_labels, score_probabilities
from deepsea.data.imageset import ImageSet
from deepsea.data.splits import Split
from deepsea.io import atomic_path, read_json
from deepsea.metrics import log_loss, topk_accuracy
from deepsea.predictions import average, meta_path
from deepsea.report.evaluate import validation_labels

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
    fused_valid: str  # what moves on: the fused prediction, else the TTA mean or centre view (views_choice.py)
    fused_test: str  # a bagged model's: on its bag's averaged test prediction

    def moved_on(self) -> tuple[bool, str]:
        """(whether the model is fused, which views its predictions moved on with: "tta" or "centre"), from the
        meta of what moves on (a fused prediction names the prediction it was fused from)."""
        meta = read_json(meta_path(self.fused_valid))
        fused = "fused_from" in meta
        chosen = read_json(meta_path(meta["fused_from"])) if fused else meta
        return fused, chosen.get("views_used", "tta")


class _Scorer:
    """Scores prediction files (one or several, averaged) against validation and, if known, test labels."""

    def __init__(self, data_path: str, split_path: str, test_labels: str | None) -> None:
        self.data = ImageSet.load(data_path)
        self.split = Split.from_json(read_json(split_path), split_path)
        self.split_path = split_path
        self.test_labels = test_labels
        self.test_truth = read_labels(test_labels) if test_labels else None

    def valid(self, paths: Sequence[str], ids: Sequence[str] | None = None) -> tuple[float, float, list[str]]:
        """(log loss, accuracy, the images scored): the split's validation images, or a part of them where the
        files predict only those (k-fold: the pseudo-label models' fold), or `ids`."""
        averaged = average(paths)
        if ids is not None or set(averaged.ids) < set(self.split.valid_ids):
            averaged = averaged.in_order_of(ids or averaged.ids, str(paths[0]))
            part = Split([], list(averaged.ids), self.split.seed, self.split.purpose, 1.0, [])
            y = validation_labels(
                averaged.ids, averaged.class_names, self.data, part, pred_name=str(paths[0]), where=self.split_path
            )
        else:
            y = validation_labels(
                averaged.ids,
                averaged.class_names,
                self.data,
                self.split,
                pred_name=str(paths[0]),
                where=self.split_path,
            )
        return log_loss(y, averaged.probs), topk_accuracy(y, averaged.probs, 1), averaged.ids

    def test(self, paths: Sequence[str]) -> tuple[float, float] | None:
        if self.test_truth is None or self.test_labels is None:
            return None
        scores = score_probabilities(average(paths), self.test_truth, self.test_labels, str(paths[0]))
        return scores["log_loss"], scores["accuracy"]


def _view_count(prediction: str) -> int | str:
    """The number of test-time views a prediction averaged (its meta's views), or "multi" where not recorded."""
    return len(read_json(meta_path(prediction)).get("views", [])) or "multi"


def _single_model_steps(best: ModelPredictions) -> list[tuple[str, list[str], list[str]]]:
    """The best model's rows: centre view, + TTA (noted where its centre view moved on instead), + fusion."""
    fused, views_used = best.moved_on()
    tta_note = "" if views_used == "tta" else " (not adopted: the centre view moves on)"
    steps = [
        (f"best single model ({best.name}), centre view", [best.centre_valid], [best.centre_test]),
        (f"+ {_view_count(best.tta_valid)}-view TTA{tta_note}", [best.tta_valid], [best.tta_test]),
    ]
    if fused:
        steps.append(("+ feature fusion", [best.fused_valid], [best.fused_test]))
    return steps


def _blend_steps(
    ensemble: tuple[str, str] | None, final: tuple[str, str] | None, calibrated: tuple[str, str] | None
) -> list[tuple[str, list[str], list[str]]]:
    """The rows of the stages after the single models: weighted ensemble, + pseudo-labels, + calibration."""
    steps: list[tuple[str, list[str], list[str]]] = []
    if ensemble:
        meta = read_json(meta_path(ensemble[0]))
        fitted = meta.get("adopted", "fitted") == "fitted"
        what = f"weighted ensemble ({meta.get('mean', 'arithmetic')} blend)" if fitted else "ensemble: uniform blend"
        steps.append((what + ("" if fitted else " (fitted weights not adopted)"), [ensemble[0]], [ensemble[1]]))
    if final:
        weights = read_json(meta_path(final[0])).get("weights")  # the ensemble's first, then the pseudo-labels'
        share = f", weight {1 - weights[0] / sum(weights):.2f}" if weights else ""
        steps.append((f"+ pseudo-labels (final{share})", [final[0]], [final[1]]))
    if calibrated:
        temperature = read_json(meta_path(calibrated[0]))["temperature"]
        adopted = f"temperature {temperature:.2f}" if temperature != 1.0 else "temperature 1: not adopted"
        steps.append((f"+ calibration ({adopted})", [calibrated[0]], [calibrated[1]]))
    return steps


def ablation_table(
    models: Sequence[ModelPredictions],
    data_path: str,
    split_path: str,
    out_csv: str | os.PathLike[str],
    *,
    ensemble: tuple[str, str] | None = None,
    final: tuple[str, str] | None = None,
    calibrated: tuple[str, str] | None = None,
    test_labels: str | None = None,
) -> list[dict[str, object]]:
    """Write the ablation CSV; `ensemble`, `final` and `calibrated` are (valid, test) prediction files when those
    stages ran."""
    if not models:
        raise ValueError("ablation: no models given.")
    scorer = _Scorer(data_path, split_path, test_labels)
    best = min(models, key=lambda m: scorer.valid([m.tta_valid])[0])
    steps = _single_model_steps(best)
    if len(models) > 1:
        steps.append(
            (f"uniform blend of {len(models)} models", [m.fused_valid for m in models], [m.fused_test for m in models])
        )
    steps += _blend_steps(ensemble, final, calibrated)
    rows: list[dict[str, Any]] = []
    for k, (what, valid_paths, test_paths) in enumerate(steps, start=1):
        valid_loss, valid_acc, scored = scorer.valid(valid_paths)
        previous = float(rows[-1]["valid_log_loss"]) if rows else 0.0
        if len(scored) < len(scorer.split.valid_ids):  # the step before, on the same images
            what += f" ({len(scored)} of {len(scorer.split.valid_ids)} validation images: not trained on)"
            previous = scorer.valid(steps[k - 2][1], scored)[0] if rows else 0.0
        test = scorer.test(test_paths)
        row: dict[str, object] = {
            "step": k,
            "what": what,
            "valid_log_loss": round(valid_loss, 4),
            "valid_accuracy": round(valid_acc, 4),
            "delta_valid_log_loss": round(valid_loss - previous, 4) if rows else "",
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
