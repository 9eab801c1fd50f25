"""`deepsea ensemble`: weighted blending of model predictions, with model selection by cross-validation.

Weights live on the simplex (non-negative, summing to 1) as in the original: w = softmax(theta), theta fitted from zeros
with L-BFGS to minimise the validation log loss of the weighted blend (analytic gradient). Two blends: the original's
weighted arithmetic mean of the probabilities, and the weighted geometric mean (log-linear pooling: probabilities
proportional to prod_m p_m^w_m). Models that make the same mistakes with different confidence gain little from the first
and more from the second (demo: the first put 0.97 on one model and tied it; docs/results.md), so `mean: auto` takes the
one with the lower cross-validated loss. Model selection (the Deep Sea documentation, 3.4.2): the validation set is cut
into K stratified folds; on each, weights are fitted on the other folds, the models are ranked by weight, and for k =
1..M the top-k models are refitted on the other folds and scored on the held-out fold; the table of mean held-out losses
per k and blend says how many models are worth keeping and which blend generalises. The uniform blend and the unweighted
geometric (log-mean) blend are reported beside the weighted one."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from deepsea.blending.adoption import MIN_GAIN_SE, adopt_if_better
from deepsea.errors import ConfigError, DataMismatchError
from deepsea.metrics import KAGGLE_EPS, log_loss
from deepsea.predictions import Predictions

log = logging.getLogger(__name__)


MEANS = ("arithmetic", "geometric")


def blend(probs: np.ndarray, weights: np.ndarray, mean: str = "arithmetic") -> np.ndarray:
    """(M, N, C) predictions, (M,) weights -> (N, C) weighted arithmetic or (normalised) geometric mean."""
    if mean == "arithmetic":
        return np.tensordot(weights, probs, axes=1)
    return softmax(np.tensordot(weights, _log_probs(probs), axes=1), axis=1)


def geometric_blend(probs: np.ndarray) -> np.ndarray:
    """Normalised geometric mean of the models' probabilities (the 'log-mean' ensemble of De Fauw's diabetic
    retinopathy solution)."""
    return blend(probs, np.full(len(probs), 1.0 / len(probs)), "geometric")


def _log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, KAGGLE_EPS, 1.0))


def blend_loss_and_grad(
    probs: np.ndarray, labels: np.ndarray, mean: str
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """f(theta) -> (log loss on `labels` of the `mean` blend with weights softmax(theta), its gradient in theta)."""
    rows = np.arange(len(labels))
    if mean == "arithmetic":
        true_class = np.clip(probs[:, rows, labels], KAGGLE_EPS, 1.0)  # (M, N)

        def arithmetic(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w = softmax(theta)
            p = w @ true_class  # (N,) blended probability of the true class
            grad_w = -(true_class / p).mean(axis=1)  # d loss / d w
            return float(-np.mean(np.log(p))), w * (grad_w - w @ grad_w)  # chain rule through the softmax

        return arithmetic
    log_p = _log_probs(probs)  # (M, N, C)
    true_log_p = log_p[:, rows, labels]  # (M, N)

    def geometric(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = softmax(theta)
        z = np.tensordot(w, log_p, axes=1)  # (N, C) unnormalised log blend
        # loss = mean(logsumexp(z) - z[y]); d/dw_m = mean(sum_c q_c log p_mc - log p_my), q = softmax(z)
        grad_w = np.einsum("nc,mnc->m", softmax(z, axis=1), log_p) / len(labels) - true_log_p.mean(axis=1)
        return float(np.mean(logsumexp(z, axis=1)) - np.mean(w @ true_log_p)), w * (grad_w - w @ grad_w)

    return geometric


def fit_weights(probs: np.ndarray, labels: np.ndarray, mean: str = "arithmetic") -> np.ndarray:
    """Simplex weights minimising the log loss of `blend(probs, w, mean)` on `labels` (softmax-parametrised L-BFGS)."""
    n_models = probs.shape[0]
    if n_models == 1:
        return np.ones(1)
    loss_and_grad = blend_loss_and_grad(probs, labels, mean)
    result = minimize(loss_and_grad, np.zeros(n_models), jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    # softmax weights never reach a vertex of the simplex exactly: where one model alone is best, take it alone,
    # so the fitted blend is never worse on the fitting data than any single model
    candidates = [softmax(result.x), *np.eye(n_models)]
    return min(candidates, key=lambda w: log_loss(labels, blend(probs, w, mean)))


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) of every validation image, dealt round-robin per class after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        folds[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return folds


def cross_validate(
    probs: np.ndarray, labels: np.ndarray, k: int = 5, seed: int = 0, mean: str = "arithmetic"
) -> list[dict]:
    """Held-out log loss of the top-k weighted models' `mean` blend, for k = 1..M, averaged over the folds."""
    folds = stratified_folds(labels, k, seed)
    n_models = probs.shape[0]
    losses = np.zeros((k, n_models))
    for fold in range(k):
        fit, held = folds != fold, folds == fold
        if not held.any():
            continue
        order = np.argsort(-fit_weights(probs[:, fit], labels[fit], mean), kind="stable")
        for top in range(1, n_models + 1):
            chosen = order[:top]
            w = fit_weights(probs[chosen][:, fit], labels[fit], mean)
            losses[fold, top - 1] = log_loss(labels[held], blend(probs[chosen][:, held], w, mean))
    used = [f for f in range(k) if (folds == f).any()]
    return [
        {"mean": mean, "top_k": top, "cv_log_loss": float(losses[used, top - 1].mean())}
        for top in range(1, n_models + 1)
    ]


def out_of_fold_blend(
    probs: np.ndarray, labels: np.ndarray, k: int = 5, seed: int = 0, mean: str = "arithmetic"
) -> np.ndarray:
    """Every validation image's `mean` blend of all models with weights fitted on the other folds (the folds of
    `cross_validate`).

    An honest validation prediction of the ensemble: the in-sample blend is optimistic by what fitting M weights on
    the same images buys (demo: 0.200 in-sample against 0.212 cross-validated), as much as pseudo-labelling gained
    the original (0.003-0.009), so the final blend's weight is fitted against this, not against the in-sample blend.
    """
    folds = stratified_folds(labels, k, seed)
    out = np.empty(probs.shape[1:])
    for fold in np.unique(folds):
        fit, held = folds != fold, folds == fold
        weights = fit_weights(probs[:, fit], labels[fit], mean) if fit.any() else np.full(len(probs), 1 / len(probs))
        out[held] = blend(probs[:, held], weights, mean)
    return out


def _stack_same_images(names: list[str], sets: list[Predictions], subset: str) -> np.ndarray:
    """The models' predictions of one subset stacked (models, images, classes), rows in the first model's id order;
    a model over other ids or classes is refused by name."""
    first = sets[0]
    for name, predicted in zip(names, sets, strict=True):
        if not first.same_images(predicted):
            raise DataMismatchError(
                f"ensemble: the predictions of '{name}' are not over the same validation/test ids and classes as "
                f"'{names[0]}' ({subset}); every ensembled model must be evaluated on the standard split."
            )
    return np.stack([predicted.in_order_of(first.ids, subset).probs for predicted in sets])


def ensemble(
    names: list[str],
    valid: list[Predictions],
    test: list[Predictions],
    labels_of: dict[str, int],
    *,
    folds: int = 5,
    seed: int = 0,
    mean: str = "auto",
    min_gain_se: float = MIN_GAIN_SE,
) -> dict:
    """Fit weights on validation predictions; return weights, the blends' scores, the CV table and predictions.

    `mean`: 'arithmetic', 'geometric', or 'auto': the one whose blend of all models has the lower cross-validated
    loss (ties go to the original's arithmetic mean). Both are fitted and reported either way. The fitted weights
    are used only where their out-of-fold blend beats the uniform blend by more than `min_gain_se` standard errors
    (adoption.py); otherwise the ensemble is the uniform arithmetic blend, and `adoption` says why.
    """
    if mean not in (*MEANS, "auto"):
        raise ConfigError(f"ensemble.mean: 'auto', 'arithmetic' or 'geometric', got '{mean}'.")
    p_valid, p_test = _stack_same_images(names, valid, "validation"), _stack_same_images(names, test, "test")
    if valid[0].class_names != test[0].class_names:
        raise DataMismatchError(f"ensemble: '{names[0]}''s validation and test predictions have different classes.")
    ids, test_ids, classes = valid[0].ids, test[0].ids, valid[0].class_names
    y = np.array([labels_of[i] for i in ids])
    uniform = np.full(len(names), 1.0 / len(names))
    fitted = {m: fit_weights(p_valid, y, m) for m in MEANS}
    cv = [row for m in MEANS for row in cross_validate(p_valid, y, folds, seed, m)]
    cv_all = {row["mean"]: row["cv_log_loss"] for row in cv if row["top_k"] == len(names)}
    chosen = mean if mean != "auto" else min(MEANS, key=lambda m: (cv_all[m], MEANS.index(m)))
    # the fitted weights only where their out-of-fold blend beats equal weights by more than its standard error
    oof, uniform_valid = out_of_fold_blend(p_valid, y, folds, seed, chosen), blend(p_valid, uniform)
    adoption = adopt_if_better(y, oof, uniform_valid, min_gain_se)
    used_mean, weights = (chosen, fitted[chosen]) if adoption.adopted == "fitted" else ("arithmetic", uniform)
    weighted_valid = {m: blend(p_valid, fitted[m], m) for m in MEANS}
    weighted_loss = {m: log_loss(y, weighted_valid[m]) for m in MEANS}
    return {
        "mean": used_mean,
        "weights": dict(zip(names, weights.tolist(), strict=True)),
        "adoption": {**adoption.to_json(), "fitted_mean": chosen},
        "valid_log_loss": {
            "weighted": weighted_loss[chosen],
            "weighted_out_of_fold": log_loss(y, oof),
            **{f"weighted_{m}": weighted_loss[m] for m in MEANS},
            "uniform": log_loss(y, uniform_valid),
            "geometric": log_loss(y, geometric_blend(p_valid)),
            "used": log_loss(y, blend(p_valid, weights, used_mean)),
            **{f"model:{n}": log_loss(y, p_valid[m]) for m, n in enumerate(names)},
        },
        "weights_by_mean": {m: dict(zip(names, fitted[m].tolist(), strict=True)) for m in MEANS},
        "cv": cv,
        "valid": Predictions(blend(p_valid, weights, used_mean), ids, classes),
        "test": Predictions(blend(p_test, weights, used_mean), test_ids, classes),
    }


def run_ensemble(
    names: list[str],
    valid_paths: list[str],
    test_paths: list[str],
    data_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    folds: int = 5,
    seed: int = 0,
    mean: str = "auto",
    min_gain_se: float = MIN_GAIN_SE,
) -> dict:
    """File-level stage: load predictions, fit, write weights.json, cv.csv, valid.npy and test.npy."""
    from pathlib import Path

    from deepsea.data.imageset import ImageSet
    from deepsea.io import atomic_path, write_json

    if not (len(names) == len(valid_paths) == len(test_paths)):
        raise DataMismatchError("ensemble: give one name, one valid and one test prediction per model.")
    data = ImageSet.load(data_path)
    labels_of = dict(zip(data.ids.tolist(), data.labels.tolist(), strict=True))
    result = ensemble(
        names,
        [Predictions.load(p) for p in valid_paths],
        [Predictions.load(p) for p in test_paths],
        labels_of,
        folds=folds,
        seed=seed,
        mean=mean,
        min_gain_se=min_gain_se,
    )
    out = Path(out_dir)
    for subset in ("valid", "test"):
        result[subset].meta = {
            "ensemble": result["weights"],
            "mean": result["mean"],
            "adopted": result["adoption"]["adopted"],
        }
        result[subset].save(out / f"{subset}.npy")
    with atomic_path(out / "cv.csv") as tmp:
        rows = "".join(f"{r['mean']},{r['top_k']},{r['cv_log_loss']:.6f}\n" for r in result["cv"])
        tmp.write_text("mean,top_k,cv_log_loss\n" + rows)
    summary = {k: result[k] for k in ("mean", "weights", "adoption", "valid_log_loss", "weights_by_mean", "cv")}
    write_json(out / "weights.json", summary)
    log.info(
        "ensemble of %d models: %s blend, valid log loss %.4f (fitted %s blend: in-sample %.4f, out of fold %.4f; "
        "uniform %.4f); weights %s",
        len(names),
        result["mean"],
        result["valid_log_loss"]["used"],
        result["adoption"]["fitted_mean"],
        result["valid_log_loss"]["weighted"],
        result["valid_log_loss"]["weighted_out_of_fold"],
        result["valid_log_loss"]["uniform"],
        {k: round(v, 3) for k, v in result["weights"].items()},
    )
    log.info("ensemble weights: %s", result["adoption"]["reason"])
    return summary
