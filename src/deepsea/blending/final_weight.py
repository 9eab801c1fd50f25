"""`deepsea fit-final-weight`: the pseudo-label models' weight in the final blend, fitted on validation.

The original's final prediction was (pseudo-label models + weighted ensemble) / 2. Pseudo-labelling gained it
0.003-0.009 on a 130,000-image test set; on a small test set the pseudo-labels teach little and the retrained models
can be worse than the ensemble that labelled them (the demo: 200 test images, and the fixed blend cost 0.019). With
`pseudo_labels.final_weight: fit` the weight w of

    final = w x mean(pseudo-label entries) + (1 - w) x ensemble

minimises the validation log loss instead. The comparison is fair only if neither side has seen the validation
labels: the pseudo-label models never train on validation images, and the ensemble enters with its out-of-fold
blend (each image blended with weights fitted on the other folds of the ensemble's CV table, with its mean), not its
in-sample one, whose optimism is as large as the gain being measured. One weight fitted on the whole validation set
is itself optimistic on few images, so whether to use it is decided on a cross-fitted blend (each image blended with
the weight fitted on the other images), and never on fewer than 50 images (MIN_DECISION_IMAGES): under k-fold the
pseudo-label models are validated on fold 0 alone, which for a small set is a dozen images, and a weight of 0.93
fitted on 14 images once passed the one-standard-error rule and lost 0.07 on the test set. The loss is convex in
w, so the bounded 1-d search finds the optimum; the ends (0: the ensemble alone, 1: the pseudo-label models alone)
are taken when they are at least as good.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from deepsea.blending.adoption import MIN_DECISION_IMAGES, MIN_GAIN_SE, adopt_if_better, labels_of
from deepsea.blending.ensemble import MEANS, out_of_fold_blend
from deepsea.errors import DataMismatchError
from deepsea.io import read_json, write_json
from deepsea.metrics import log_loss
from deepsea.predictions import common_images, load_aligned

log = logging.getLogger(__name__)


def blend_loss(ensemble: np.ndarray, pseudo: np.ndarray, labels: np.ndarray, weight: float) -> float:
    """Log loss of weight x pseudo + (1 - weight) x ensemble."""
    return log_loss(labels, weight * pseudo + (1.0 - weight) * ensemble)


def fit_final_weight(ensemble: np.ndarray, pseudo: np.ndarray, labels: np.ndarray) -> float:
    """The weight in [0, 1] of the pseudo-label prediction that minimises the blend's log loss on `labels`."""
    inner = minimize_scalar(
        lambda w: blend_loss(ensemble, pseudo, labels, w), bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-6}
    )
    return min((0.0, float(inner.x), 1.0), key=lambda w: blend_loss(ensemble, pseudo, labels, w))


def cross_fitted_blend(
    ensemble: np.ndarray, pseudo: np.ndarray, labels: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """Every image blended with the weight fitted on the other folds' images (at most `folds` folds, seeded)."""
    order = np.random.default_rng([seed, len(labels)]).permutation(len(labels))
    blended = np.empty_like(ensemble)
    for held in np.array_split(order, max(2, min(folds, len(labels)))):
        rest = np.setdiff1d(order, held)
        w = fit_final_weight(ensemble[rest], pseudo[rest], labels[rest])
        blended[held] = w * pseudo[held] + (1 - w) * ensemble[held]
    return blended


def honest_ensemble(
    models: np.ndarray, labels: np.ndarray, adopted: str, *, folds: int, seed: int, mean: str
) -> np.ndarray:
    """The ensemble's validation prediction as if it had not seen these labels: its out-of-fold blend where its
    weights were fitted, the plain mean where it adopted the uniform blend (nothing fitted: honest as it is)."""
    if adopted == "fitted":
        return out_of_fold_blend(models, labels, folds, seed, mean)
    return models.mean(axis=0)


def ensemble_blend(weights_path: str | os.PathLike[str]) -> tuple[str, str]:
    """(the mean of the ensemble's fitted blend, whether it adopted the fitted weights) from its weights.json."""
    summary = read_json(weights_path)
    adoption = summary.get("adoption", {})
    mean = adoption.get("fitted_mean", summary.get("mean"))
    if mean not in MEANS:
        raise DataMismatchError(f"{weights_path} names no blend mean; rerun the ensemble (deepsea ensemble).")
    return mean, adoption.get("adopted", "fitted")


@dataclass(frozen=True)
class HonestBlendParts:
    """The final blend's validation ingredients as if none had seen the labels, on the images they all predict."""

    ensemble: np.ndarray  # the ensemble's out-of-fold blend (honest_ensemble), float64
    pseudo: list[np.ndarray]  # each pseudo-label entry's validation prediction, the same rows
    labels: np.ndarray
    ids: list[str]
    mean: str  # the ensemble's blend mean


def honest_blend_parts(
    ensemble_valid_paths: Sequence[str],
    ensemble_weights_path: str | os.PathLike[str],
    pseudo_label_paths: Sequence[str],
    data_path: str | os.PathLike[str],
    *,
    folds: int,
    seed: int,
    command: str,
) -> HonestBlendParts:
    """Load the ensembled models' and pseudo-label entries' validation predictions on the images they all have
    (all of them under a hold-out split; under k-fold the pseudo-label models' fold 0, the only images they did not
    train on) and blend the models out of fold with the ensemble's mean; `command` names the stage in errors.
    What fit-final-weight and fit-calibration (temperature.py) fit on."""
    mean, adopted = ensemble_blend(ensemble_weights_path)
    paths = [*ensemble_valid_paths, *pseudo_label_paths]
    predictions = list(load_aligned(paths, common_images(paths)))
    labels = labels_of(predictions[0], data_path, command)
    n_models = len(ensemble_valid_paths)
    models = np.stack([p.probs.astype(np.float64) for p in predictions[:n_models]])
    ensemble = honest_ensemble(models, labels, adopted, folds=folds, seed=seed, mean=mean)
    pseudo = [p.probs.astype(np.float64) for p in predictions[n_models:]]
    return HonestBlendParts(ensemble, pseudo, labels, predictions[0].ids, mean)


def run_fit_final_weight(
    ensemble_valid_paths: list[str],
    ensemble_weights_path: str | os.PathLike[str],
    pseudo_label_paths: list[str],
    data_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    folds: int = 5,
    seed: int = 0,
    min_gain_se: float = MIN_GAIN_SE,
) -> dict:
    """File-level stage: blend the ensembled models' validation predictions out of fold (the ensemble's folds and mean;
    the uniform blend where the ensemble adopted it), fit the weight against the pseudo-label entries' mean, keep it
    only where it beats the ensemble alone by more than `min_gain_se` standard errors (adoption.py), and write the
    weight used, with the losses it chose between, as JSON; `deepsea average --weights-from` reads its `weights` (the
    ensemble's first, then one share per pseudo-label entry, the order of the final blend's inputs).

    The out-of-fold blend is computed here rather than by the ensemble stage so that the ensemble's outputs, which
    the (costly) pseudo-label models train on, are the same whether or not the weight is fitted."""
    if not pseudo_label_paths:
        raise DataMismatchError("fit-final-weight: give at least one pseudo-label entry's validation prediction.")
    parts = honest_blend_parts(
        ensemble_valid_paths, ensemble_weights_path, pseudo_label_paths, data_path, folds=folds, seed=seed,
        command="fit-final-weight",
    )  # fmt: skip
    ensemble, pseudo, labels, mean = parts.ensemble, np.mean(parts.pseudo, axis=0), parts.labels, parts.mean
    fitted = fit_final_weight(ensemble, pseudo, labels)
    # adopted only where, cross-fitted, it clearly beats the ensemble alone on enough images (pseudo-labels are the
    # one stage trained on the ensemble's own guesses: it must show a gain beyond noise to join the submission)
    blended = cross_fitted_blend(ensemble, pseudo, labels, folds, seed)
    adoption = adopt_if_better(labels, blended, ensemble, min_gain_se, simple="ensemble alone",
                               candidate="the cross-fitted weight", min_images=MIN_DECISION_IMAGES)  # fmt: skip
    weight = fitted if adoption.adopted == "fitted" else 0.0
    n = len(pseudo_label_paths)
    result = {
        "final_weight": weight,
        "fitted_weight": fitted,
        "adoption": adoption.to_json(),
        "weights": [1.0 - weight] + [weight / n] * n,
        "ensemble": {"models": list(map(str, ensemble_valid_paths)), "mean": mean, "folds": folds, "seed": seed},
        "pseudo_labels": list(map(str, pseudo_label_paths)),
        "valid_images": len(labels),
        "valid_log_loss": {
            "ensemble_out_of_fold": blend_loss(ensemble, pseudo, labels, 0.0),
            "pseudo_labels": blend_loss(ensemble, pseudo, labels, 1.0),
            "half_and_half": blend_loss(ensemble, pseudo, labels, 0.5),
            "fitted": blend_loss(ensemble, pseudo, labels, fitted),
            "used": blend_loss(ensemble, pseudo, labels, weight),
        },
    }
    write_json(out_path, result)
    _log_fit(result, out_path)
    return result


def _log_fit(result: dict, out_path: str | os.PathLike[str]) -> None:
    losses = result["valid_log_loss"]
    log.info(
        "final blend: pseudo-label weight %.3f (fitted %.3f; validation log loss %.4f; ensemble out-of-fold %.4f, "
        "pseudo-label models %.4f, half and half %.4f) -> %s",
        result["final_weight"],
        result["fitted_weight"],
        losses["used"],
        losses["ensemble_out_of_fold"],
        losses["pseudo_labels"],
        losses["half_and_half"],
        out_path,
    )
    log.info("final blend weight: %s", result["adoption"]["reason"].replace("fitted blend", "fitted weight"))
