"""`deepsea fit-calibration` and `deepsea calibrate`: one temperature for the submission's prediction.

The submission's source (the final blend, the weighted ensemble, or an average of models) is calibrated with a
single temperature T (temperature scaling, Guo et al. 2017; calibration.py): p proportional to p^(1/T). T is fitted
against a validation prediction that has not seen the labels it is scored on:

- the models' validation predictions are of images they did not train on (the validation split, or under the
  kfold scheme every training image out of fold);
- the ensemble enters with its out-of-fold blend (each image blended with weights fitted on the other folds of the
  ensemble's CV table), as for `pseudo_labels.final_weight: fit` (final_weight.py), not with its in-sample blend,
  whose optimism would make it look sharper than the test prediction;
- the pseudo-label entries, which never train on validation images, enter with the final blend's own weights
  (where it gave them none, the ensemble's images are all used: under k-fold every training image).

T is adopted only where calibrating beats the uncalibrated prediction, on images the temperature was not fitted on
(each fold of the validation images tempered with the T of the other folds), by more than `decisions.min_gain_se`
standard errors of the paired per-image differences (adoption.py); else T = 1 and the prediction passes unchanged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from deepsea.blending.adoption import MIN_DECISION_IMAGES, MIN_GAIN_SE, adopt_if_better, labels_of
from deepsea.blending.calibration import fit_temperature, temper
from deepsea.blending.ensemble import stratified_folds
from deepsea.blending.final_weight import honest_blend_parts
from deepsea.errors import DataMismatchError
from deepsea.io import read_json, write_json
from deepsea.metrics import log_loss
from deepsea.predictions import Predictions, average, meta_path

log = logging.getLogger(__name__)


def _final_blend_weights(source_valid: str, n_pseudo: int) -> np.ndarray:
    """The final blend's weights (the ensemble's first, then each pseudo-label entry's) from its meta."""
    weights = read_json(meta_path(source_valid)).get("weights")
    if not isinstance(weights, list) or len(weights) != 1 + n_pseudo:
        raise DataMismatchError(
            f"fit-calibration: {meta_path(source_valid)} has no final-blend weights for the ensemble and {n_pseudo} "
            "pseudo-label entries; rerun the final blend (deepsea average)."
        )
    w = np.asarray(weights, np.float64)
    return w / w.sum()


def honest_validation(
    source_valid: Sequence[str],
    ensemble: tuple[Sequence[str], str] | None,
    pseudo_label_paths: Sequence[str],
    data_path: str | os.PathLike[str],
    *,
    folds: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(probabilities, labels, ids) of the source's validation prediction as if nothing in it had seen the labels.
    `ensemble`: (the ensembled models' validation predictions, the ensemble's weights.json) where the source has a
    weighted ensemble (rebuilt from final_weight.honest_blend_parts, with the final blend's own weights from the
    meta of `source_valid`); without one the source is an average of `source_valid` (fitted on nothing: honest as it
    is). Where the final blend gives the pseudo-label entries no weight, the prediction is the ensemble's on every
    image it has: under k-fold all the training images out of fold, not only fold 0's that the pseudo-label models
    did not train on (on a small set a dozen images, too few to decide a temperature on)."""
    if ensemble is None:
        averaged = average(source_valid)
        return averaged.probs.astype(np.float64), labels_of(averaged, data_path, "fit-calibration"), averaged.ids
    model_paths, weights_path = ensemble
    w = _final_blend_weights(source_valid[0], len(pseudo_label_paths)) if pseudo_label_paths else np.ones(1)
    if not w[1:].any():  # the final blend is the ensemble alone: fit on all its images (under k-fold, not fold 0's)
        pseudo_label_paths = []
    parts = honest_blend_parts(
        model_paths, weights_path, pseudo_label_paths, data_path, folds=folds, seed=seed, command="fit-calibration"
    )
    probs = parts.ensemble
    if pseudo_label_paths:
        probs = w[0] * probs + sum(wk * p for wk, p in zip(w[1:], parts.pseudo, strict=True))
    return probs, parts.labels, parts.ids


def out_of_fold_tempered(probs: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Every image tempered with the temperature fitted on the other folds (the ensemble's stratified folds): what
    calibration is worth on images its temperature was not fitted on."""
    assignment = stratified_folds(labels, folds, seed)
    out = np.empty(probs.shape)
    for fold in np.unique(assignment):
        fit, held = assignment != fold, assignment == fold
        temperature = fit_temperature(probs[fit], labels[fit]).temperature if fit.any() else 1.0
        out[held] = temper(probs[held], temperature)
    return out


def fit_calibration(
    probs: np.ndarray, labels: np.ndarray, *, folds: int = 5, seed: int = 0, min_gain_se: float = MIN_GAIN_SE
) -> dict:
    """The temperature to use, with the losses it chose between: the one fitted on all `probs`, where calibrating
    out of fold (out_of_fold_tempered) beats the uncalibrated prediction by more than `min_gain_se` standard errors
    on at least MIN_DECISION_IMAGES images; else 1."""
    fitted = fit_temperature(probs, labels)
    adoption = adopt_if_better(
        labels,
        out_of_fold_tempered(probs, labels, folds, seed),
        probs,
        min_gain_se,
        simple="uncalibrated",
        candidate="a temperature fitted on the other folds",
        min_images=MIN_DECISION_IMAGES,
    )
    temperature = fitted.temperature if adoption.adopted == "fitted" else 1.0
    return {
        "temperature": temperature,
        "fitted_temperature": fitted.temperature,
        "adoption": adoption.to_json(),
        "valid_images": int(len(labels)),
        "valid_log_loss": {
            "uncalibrated": log_loss(labels, probs),
            "out_of_fold": adoption.fitted_log_loss,
            "fitted_in_sample": fitted.log_loss_after,
            "used": log_loss(labels, temper(probs, temperature)),
        },
    }


def run_fit_calibration(
    source_valid: Sequence[str],
    ensemble: tuple[Sequence[str], str] | None,
    pseudo_label_paths: Sequence[str],
    data_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    folds: int = 5,
    seed: int = 0,
    min_gain_se: float = MIN_GAIN_SE,
) -> dict:
    """File-level stage: fit the temperature on the source's honest validation prediction and write it as JSON
    (what `deepsea calibrate` and the model bundle read)."""
    probs, labels, _ = honest_validation(source_valid, ensemble, pseudo_label_paths, data_path, folds=folds, seed=seed)
    result = fit_calibration(probs, labels, folds=folds, seed=seed, min_gain_se=min_gain_se)
    result["stage"] = list(map(str, source_valid))
    result["honest"] = "out-of-fold ensemble blend" if ensemble else "average of the stage's predictions"
    write_json(out_path, result)
    losses = result["valid_log_loss"]
    log.info(
        "calibration: temperature %.3f (fitted %.3f); validation log loss %.4f uncalibrated, %.4f calibrated out of "
        "fold, %.4f used -> %s",
        result["temperature"],
        result["fitted_temperature"],
        losses["uncalibrated"],
        losses["out_of_fold"],
        losses["used"],
        out_path,
    )
    log.info("calibration: %s", result["adoption"]["reason"])
    return result


def read_temperature(path: str | os.PathLike[str]) -> float:
    """The temperature a calibration JSON says to use."""
    temperature = read_json(path).get("temperature")
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        raise DataMismatchError(f"{path}: no positive 'temperature'; rerun `deepsea fit-calibration`.")
    return float(temperature)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities tempered by T (float32); at T = 1 the very same ones (nothing renormalised), so that an
    unadopted temperature changes no bit of the submission. Also what a model bundle applies (deploy/pipeline.py)."""
    return np.asarray(probs if temperature == 1.0 else temper(probs, temperature), np.float32)


def calibrated(predictions: Predictions, temperature: float) -> Predictions:
    """The predictions tempered by T (apply_temperature)."""
    return Predictions(apply_temperature(predictions.probs, temperature), predictions.ids, predictions.class_names)


def run_calibrate(
    pred_paths: Sequence[str], calibration_path: str | os.PathLike[str], out_path: str | os.PathLike[str]
) -> Predictions:
    """File-level stage: average the source's predictions of a subset (one file for the final blend or the
    ensemble) and apply the fitted temperature."""
    temperature = read_temperature(calibration_path)
    result = calibrated(average(pred_paths), temperature)
    result.meta = {"calibrated_from": list(pred_paths), "temperature": temperature}
    result.save(out_path)
    log.info("calibrated %s with temperature %.3f -> %s", ", ".join(pred_paths), temperature, out_path)
    return result
