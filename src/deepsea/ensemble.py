"""Stage 9, `deepsea ensemble`: weighted blending of model predictions, with model selection by cross-validation.

Weights live on the simplex (non-negative, summing to 1) as in the original: w = softmax(theta), theta fitted from
zeros with L-BFGS to minimise the validation log loss of the weighted arithmetic blend (analytic gradient). Model
selection (seed 000, 3.4.2): the validation set is cut into K stratified folds; on each, weights are fitted on the
other folds, the models are ranked by weight, and for k = 1..M the top-k models are refitted on the other folds and
scored on the held-out fold; the table of mean held-out losses per k says how many models are worth keeping. The
uniform blend and the geometric (log-mean) blend are reported beside the weighted one.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax

from deepsea.errors import DataMismatchError
from deepsea.io import positions_of
from deepsea.metrics import KAGGLE_EPS, log_loss

log = logging.getLogger(__name__)


def blend(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(M, N, C) predictions, (M,) weights -> (N, C) weighted arithmetic mean."""
    return np.tensordot(weights, probs, axes=1)


def geometric_blend(probs: np.ndarray) -> np.ndarray:
    """Normalised geometric mean of the models' probabilities (the 'log-mean' ensemble of seed 002)."""
    z = np.log(np.clip(probs, KAGGLE_EPS, 1.0)).mean(axis=0)
    out = np.exp(z - z.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def fit_weights(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Simplex weights minimising the log loss of `blend(probs, w)` on `labels` (softmax-parametrised L-BFGS)."""
    n_models = probs.shape[0]
    if n_models == 1:
        return np.ones(1)
    true_class = np.clip(probs[:, np.arange(len(labels)), labels], KAGGLE_EPS, 1.0)  # (M, N)

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = softmax(theta)
        p = w @ true_class  # (N,) blended probability of the true class
        loss = -np.mean(np.log(p))
        grad_w = -(true_class / p).mean(axis=1)  # d loss / d w
        return loss, w * (grad_w - w @ grad_w)  # chain rule through the softmax

    result = minimize(loss_and_grad, np.zeros(n_models), jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    # softmax weights never reach a vertex of the simplex exactly: where one model alone is best, take it alone,
    # so the fitted blend is never worse on the fitting data than any single model
    candidates = [softmax(result.x), *np.eye(n_models)]
    return min(candidates, key=lambda w: -np.mean(np.log(w @ true_class)))


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


def cross_validate(probs: np.ndarray, labels: np.ndarray, k: int = 5, seed: int = 0) -> list[dict]:
    """Held-out log loss of the top-k weighted models, for k = 1..M, averaged over the folds."""
    folds = stratified_folds(labels, k, seed)
    n_models = probs.shape[0]
    losses = np.zeros((k, n_models))
    for fold in range(k):
        fit, held = folds != fold, folds == fold
        if not held.any():
            continue
        order = np.argsort(-fit_weights(probs[:, fit], labels[fit]), kind="stable")
        for top in range(1, n_models + 1):
            chosen = order[:top]
            w = fit_weights(probs[chosen][:, fit], labels[fit])
            losses[fold, top - 1] = log_loss(labels[held], blend(probs[chosen][:, held], w))
    used = [f for f in range(k) if (folds == f).any()]
    return [{"top_k": top, "cv_log_loss": float(losses[used, top - 1].mean())} for top in range(1, n_models + 1)]


def ensemble(
    names: list[str],
    valid: list[tuple[np.ndarray, list[str], list[str]]],
    test: list[tuple[np.ndarray, list[str], list[str]]],
    labels_of: dict[str, int],
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """Fit weights on validation predictions; return weights, the blends' scores, the CV table and predictions."""
    ids, classes = valid[0][1], valid[0][2]
    test_ids = test[0][1]
    for name, (_, v_ids, v_classes), (_, t_ids, t_classes) in zip(names, valid, test, strict=True):
        if (
            sorted(v_ids) != sorted(ids)
            or sorted(t_ids) != sorted(test_ids)
            or v_classes != classes
            or t_classes != classes
        ):
            raise DataMismatchError(
                f"ensemble: the predictions of '{name}' are not over the same validation/test ids and classes as "
                f"'{names[0]}'; every ensembled model must be evaluated on the standard split."
            )

    def aligned(sets: list, order: list[str]) -> np.ndarray:
        return np.stack([p[positions_of(order, set_ids)[0]] for p, set_ids, _ in sets])

    p_valid, p_test = aligned(valid, ids), aligned(test, test_ids)
    y = np.array([labels_of[i] for i in ids])
    weights = fit_weights(p_valid, y)
    uniform = np.full(len(names), 1.0 / len(names))
    return {
        "weights": dict(zip(names, weights.tolist(), strict=True)),
        "valid_log_loss": {
            "weighted": log_loss(y, blend(p_valid, weights)),
            "uniform": log_loss(y, blend(p_valid, uniform)),
            "geometric": log_loss(y, geometric_blend(p_valid)),
            **{f"model:{n}": log_loss(y, p_valid[m]) for m, n in enumerate(names)},
        },
        "cv": cross_validate(p_valid, y, folds, seed),
        "valid": (blend(p_valid, weights), ids, classes),
        "test": (blend(p_test, weights), test_ids, classes),
    }


def run_ensemble(
    names: list[str],
    valid_paths: list[str],
    test_paths: list[str],
    data_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """File-level stage: load predictions, fit, write weights.json, cv.csv, valid.npy and test.npy."""
    from pathlib import Path

    from deepsea.imageset import ImageSet
    from deepsea.io import atomic_path, load_predictions, save_predictions, write_json

    if not (len(names) == len(valid_paths) == len(test_paths)):
        raise DataMismatchError("ensemble: give one name, one valid and one test prediction per model.")
    data = ImageSet.load(data_path)
    labels_of = dict(zip(data.ids.tolist(), data.labels.tolist(), strict=True))
    result = ensemble(
        names,
        [load_predictions(p) for p in valid_paths],
        [load_predictions(p) for p in test_paths],
        labels_of,
        folds,
        seed,
    )
    out = Path(out_dir)
    for subset in ("valid", "test"):
        probs, ids, classes = result[subset]
        save_predictions(out / f"{subset}.npy", probs, ids, classes, ensemble=result["weights"])
    with atomic_path(out / "cv.csv") as tmp:
        tmp.write_text("top_k,cv_log_loss\n" + "".join(f"{r['top_k']},{r['cv_log_loss']:.6f}\n" for r in result["cv"]))
    summary = {k: result[k] for k in ("weights", "valid_log_loss", "cv")}
    write_json(out / "weights.json", summary)
    log.info(
        "ensemble of %d models: valid log loss weighted %.4f, uniform %.4f, geometric %.4f; weights %s",
        len(names),
        result["valid_log_loss"]["weighted"],
        result["valid_log_loss"]["uniform"],
        result["valid_log_loss"]["geometric"],
        {k: round(v, 3) for k, v in result["weights"].items()},
    )
    return summary
