"""`deepsea evaluate`: validation scores of one prediction file, beside the class-prior baseline.

The prior baseline (predict the training class frequencies for every image) is what a model that learned nothing
scores; every report shows it so that "the model learned something" is a number, not a hope. Given the centre-view
predictions too, the report shows both and the gain of test-time augmentation. The confusion matrix counts
(true class, predicted class) pairs of the validation images.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from deepsea.data.imageset import ImageSet
from deepsea.data.splits import Split
from deepsea.errors import DataMismatchError
from deepsea.io import read_json, write_json
from deepsea.metrics import class_prior, image_log_losses, log_loss, paired_standard_error, score
from deepsea.predictions import Predictions, meta_path
from deepsea.report.learning import still_learning

log = logging.getLogger(__name__)


def evaluate(
    pred_path: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    split_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    centre_path: str | os.PathLike[str] | None = None,
    tta_path: str | os.PathLike[str] | None = None,
    unfused_path: str | os.PathLike[str] | None = None,
    train_logs: Sequence[str | os.PathLike[str]] = (),
) -> dict[str, Any]:
    """Score validation predictions against the packed labels; write and return the scores. `pred_path` is what
    moves on; given the TTA mean and the centre view it was chosen from (views_choice.py), both are scored too;
    given the model's training logs, whether it was still learning when training stopped (learning.py)."""
    data = ImageSet.load(data_path)
    split = Split.from_json(read_json(split_path), str(split_path))
    labels, probs, class_names = _validation_predictions(pred_path, data, split, str(split_path))
    # the training images' class frequencies; out of fold (k-fold: no training ids) every image's own
    trained_on = split.train_ids or split.valid_ids
    prior = class_prior(data.labels[data.index_of(trained_on, str(split_path))], len(class_names))
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((len(class_names), len(class_names)), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    result: dict[str, Any] = {
        "predictions": str(pred_path),
        "valid": score(labels, probs),
        "class_prior": score(labels, np.tile(prior, (len(labels), 1))),
        "confusion": {"classes": class_names, "rows_true_columns_predicted": confusion.tolist()},
    }

    def load(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
        return _validation_predictions(path, data, split, str(split_path))[:2]

    tta = load(tta_path) if tta_path else (labels, probs)
    if centre_path:  # the same images one step earlier: what TTA, what fusion gained
        _add_gain(result, ("centre", "tta_gain"), load(centre_path), tta)
    if unfused_path:
        _add_gain(result, ("unfused", "fusion_gain"), load(unfused_path), (labels, probs))
    if tta_path:
        result["tta"] = score(*tta)
        result["views_used"] = read_json(meta_path(pred_path)).get("views_used", "tta")
    learning = still_learning(train_logs) if train_logs else None
    if learning is not None:
        result["learning"] = learning
    result["warnings"] = diagnose(result)
    write_json(out, result)
    log.info(
        "%s: %s, class prior %.4f, top-1 accuracy %.3f",
        pred_path,
        _scores_message(result),
        result["class_prior"]["log_loss"],
        result["valid"]["top1_accuracy"],
    )
    for warning in result["warnings"]:
        log.warning("%s: %s; %s", pred_path, warning["problem"], warning["fix"])
    return result


def _add_gain(
    result: dict[str, Any],
    names: tuple[str, str],
    before: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray],
) -> None:
    """Score the step before (`names` = its key, the gain's key) and what the step gained, with its standard error."""
    name, gain = names
    result[name] = score(*before)
    result[gain] = result[name]["log_loss"] - log_loss(*after)
    result[f"{gain}_se"] = _gain_se(*before, *after)


def _scores_message(result: dict[str, Any]) -> str:
    """'valid log loss 0.1234 (TTA mean 0.1234, centre view 0.1300: TTA mean used)' for the log."""
    message = f"valid log loss {result['valid']['log_loss']:.4f}"
    parts = [f"{label} {result[key]['log_loss']:.4f}" for key, label in _STEP_LABELS.items() if key in result]
    if "views_used" in result:
        parts[-1] += f": {'TTA mean' if result['views_used'] == 'tta' else 'centre view'} used"
    return message + (f" ({', '.join(parts)})" if parts else "")


_STEP_LABELS = {"unfused": "unfused", "tta": "TTA mean", "centre": "centre view"}


def _gain_se(labels_before: np.ndarray, before: np.ndarray, labels: np.ndarray, after: np.ndarray) -> float:
    """Standard error of a gain in log loss between two predictions of the validation images (rows in the
    split's order, see `_validation_predictions`)."""
    assert np.array_equal(labels_before, labels), "rows of both predictions follow the split's validation ids"
    return paired_standard_error(image_log_losses(labels_before, before), image_log_losses(labels, after))


NOISE_SE = 2.0  # a step is "worse" only when it costs more than this many standard errors of its per-image change


def _significantly_worse(result: dict, gain: str) -> bool:
    """True when `result[gain]` is a loss beyond chance: a handful of validation images can make a step look worse
    by a hair (a digits model at log loss 0.013 was 'hurt' by TTA by 0.0006 over 140 images), and a warning for
    that would send users changing settings that are fine."""
    value = result.get(gain, 0.0)
    return value < 0 and -value > NOISE_SE * result.get(f"{gain}_se", 0.0)


def _worse_by(result: dict, gain: str) -> str:
    """'worse by 0.0123 +- 0.0040 over the 80 images': the loss, its standard error, the images it rests on."""
    se, n = result.get(f"{gain}_se", 0.0), result["valid"]["n_images"]
    return f"worse by {-result[gain]:.4f} +- {se:.4f} over the {n} images"


def diagnose(result: dict) -> list[dict[str, str]]:
    """Warnings for scores that mean a setting needs changing: each a `problem` (with the numbers) and a `fix`
    (the config keys to try), kept apart so that a run summary can give a fix shared by many models once.

    The defaults are sized for the demo. On other data an undertrained model can show it first as a TTA that makes
    things worse (a 121-class set of 1,145 images, docs/results.md, 2026-11-24: at 600 steps TTA was
    worse for five of eight models, by up to 0.041; 4,000 steps of plain, 0.10 better), so the pipeline says so here
    instead of leaving a negative number in a table."""
    loss, prior = result["valid"]["log_loss"], result["class_prior"]["log_loss"]
    warnings = []
    if loss >= prior:
        warnings.append(
            {
                "problem": f"validation log loss {loss:.4f} is no better than predicting the class frequencies "
                f"({prior:.4f}): the model learned nothing useful",
                "fix": "check its training log for a stalled or diverging loss, and its train.learning_rate and "
                "train.epochs",
            }
        )
    if result.get("learning", {}).get("still_learning"):
        warnings.append(_still_learning_warning(result["learning"]))
    if _significantly_worse(result, "tta_gain"):
        averaged = result.get("tta", result["valid"])["log_loss"]
        kept = "; its centre view moves on instead" if result.get("views_used") == "centre" else ""
        warnings.append(
            {
                "problem": "test-time augmentation made the validation log loss worse "
                f"({result['centre']['log_loss']:.4f} for the centre view, {averaged:.4f} averaged over the views: "
                f"{_worse_by(result, 'tta_gain')}){kept}",
                "fix": "usually the model is undertrained (raise its train.epochs: its training log says how many "
                "epochs it saw) or a view changes what tells your classes apart (narrow tta.zoom, tta.stretch or "
                "tta.rotation, or set tta.method: centre; where orientation tells classes apart, e.g. digits: "
                "data.orientation: upright)",
            }
        )
    if _significantly_worse(result, "fusion_gain"):
        warnings.append(
            {
                "problem": "fusing the handcrafted features made the validation log loss worse "
                f"({result['unfused']['log_loss']:.4f} unfused, {loss:.4f} fused: {_worse_by(result, 'fusion_gain')})",
                "fix": "try other fusion.groups or a larger weight_decay in them, or drop the model from fusion.models",
            }
        )
    return warnings


def _still_learning_warning(learning: dict[str, Any]) -> dict[str, str]:
    folds = f" (the median of {learning['logs']} fold models)" if learning["logs"] > 1 else ""
    return {
        "problem": f"the validation loss was still falling at the end of training: by {learning['median_fall']:.0%} "
        f"over steps {learning['from_step']:.0f}-{learning['to_step']:.0f} at the full learning rate "
        f"({learning['valid_loss_from']:.3f} -> {learning['valid_loss_to']:.3f}){folds}, "
        f"{learning['epochs']:.1f} epochs in all",
        "fix": "train longer: raise its train.epochs (its learning curve is in the report)",
    }


def validation_predictions(
    pred_path: str | os.PathLike[str], data_path: str | os.PathLike[str], split_path: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(labels, probabilities, class names) of a validation prediction file, checked against data and split."""
    data = ImageSet.load(data_path)
    split = Split.from_json(read_json(split_path), str(split_path))
    return _validation_predictions(pred_path, data, split, str(split_path))


def _validation_predictions(
    pred_path: str | os.PathLike[str], data: ImageSet, split: Split, where: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(labels, probabilities, class names) of a validation prediction file, checked against the split."""
    predicted = Predictions.load(pred_path)
    validation_labels(predicted.ids, predicted.class_names, data, split, pred_name=str(pred_path), where=where)
    in_split_order = predicted.in_order_of(split.valid_ids, str(pred_path))  # files compare by row
    labels = data.labels[data.index_of(in_split_order.ids, str(pred_path))]
    return labels, in_split_order.probs, predicted.class_names


def validation_labels(
    ids: list[str], class_names: list[str], data: ImageSet, split: Split, *, pred_name: str, where: str
) -> np.ndarray:
    """The packed labels of prediction rows `ids`, once they are checked to be exactly the validation images of
    the split `where` over the packed data's classes."""
    if class_names != data.class_names:
        raise DataMismatchError(f"{pred_name}: its classes differ from the packed data's; rerun the prediction.")
    if sorted(ids) != sorted(split.valid_ids):
        raise DataMismatchError(f"{pred_name}: its image ids are not the validation ids of {where}; rerun it.")
    return data.labels[data.index_of(ids, pred_name)]
