"""The linear probe (`architecture: probe`): a logistic regression on a frozen ImageNet backbone's pooled features.

On a few hundred labelled images, a linear classifier on a pretrained network's features is the strong, cheap
baseline (Kornblith, Shlens and Le 2019, "Do Better ImageNet Models Transfer Better?", whose linear evaluation is an
L2-regularised logistic regression with the penalty chosen on held-out data). Here it is an ensemble member like any
other: the fitted regression becomes the network's new head (`_fc`), so the model file predicts, takes test-time
views, fuses, ensembles and bundles as a convnet does.

The regularisation is chosen out of fold: the training images are cut into stratified folds (every view of an image
in the same fold), and the penalty with the lowest out-of-fold log loss is refitted on all of them. Features are
standardised for the fit and the standardisation is folded into the head's weights.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from tqdm import tqdm

from deepsea.data.augment import CENTRE_VIEW, AffineParams, AugmentationRanges, sample_params
from deepsea.data.batches import Normalisation, views_batch
from deepsea.data.imageset import ImageSet
from deepsea.nets.efficientnet_lite import EfficientNetLite

log = logging.getLogger(__name__)

PENALTIES = tuple(float(c) for c in np.logspace(-3, 1, 9))  # C (inverse L2 strength) on standardised features
MAX_FOLDS = 5
PROBE_STREAM = 5  # the augmented views' random stream of the entry's seed (apart from training's: data/batches.py)
BATCH = 64


@dataclass(frozen=True)
class ProbeFit:
    """The chosen penalty, its out-of-fold log loss (and SE over images), the loss of every candidate, and the
    refitted probe's log loss and accuracy on the training images' centre views."""

    penalty: float
    oof_loss: float
    oof_se: float
    losses: dict[float, float]
    train_loss: float = float("nan")
    train_accuracy: float = float("nan")


@torch.no_grad()
def extract_features(
    model: EfficientNetLite,
    images: ImageSet,
    norm: Normalisation,
    device: torch.device,
    *,
    params: list[AffineParams] | None = None,
    desc: str = "features",
) -> np.ndarray:
    """(N, 1280) pooled features of one view of every image (the centre view where `params` is None)."""
    model.eval()
    params = params or [CENTRE_VIEW] * len(images)
    out = []
    for start in tqdm(range(0, len(images), BATCH), desc=desc, unit="batch", mininterval=5.0, leave=False):
        idx = np.arange(start, min(start + BATCH, len(images)))
        (x,) = views_batch(images, idx, model.inputs, norm, [params[i] for i in idx])
        out.append(model.features(x.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model._fc.in_features), np.float32)


def training_features(
    model: EfficientNetLite,
    images: ImageSet,
    norm: Normalisation,
    device: torch.device,
    *,
    ranges: AugmentationRanges,
    train_views: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of every training image's centre view and `train_views` augmented views, with the image each row
    belongs to (so folds keep an image's views together)."""
    rng = np.random.default_rng([seed, PROBE_STREAM])
    blocks = [extract_features(model, images, norm, device, desc="probe features: centre")]
    for v in range(train_views):
        params = [sample_params(ranges, rng) for _ in range(len(images))]
        blocks.append(
            extract_features(model, images, norm, device, params=params, desc=f"probe features: view {v + 1}")
        )
    owners = np.tile(np.arange(len(images)), len(blocks))
    return np.concatenate(blocks), owners


def _regression(penalty: float) -> LogisticRegression:
    return LogisticRegression(C=penalty, max_iter=2000, tol=1e-5)


def choose_penalty(features: np.ndarray, labels: np.ndarray, owners: np.ndarray, n_classes: int, seed: int) -> ProbeFit:
    """The penalty with the lowest out-of-fold log loss over the images' centre views (rows where each image first
    appears); folds are stratified by image. With fewer than two images in some class, the middle penalty."""
    n_images = int(owners.max()) + 1
    image_labels = labels[:n_images]
    counts = np.bincount(image_labels, minlength=n_classes)
    folds = min(MAX_FOLDS, int(counts[counts > 0].min()))
    if folds < 2:
        middle = PENALTIES[len(PENALTIES) // 2]
        return ProbeFit(middle, float("nan"), float("nan"), {})
    split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n_images), image_labels)
    fold_of = np.empty(n_images, np.int64)
    for k, (_, held) in enumerate(split):
        fold_of[held] = k
    oof = {c: np.zeros((n_images, n_classes)) for c in PENALTIES}
    for k in range(folds):
        fit_rows, held = fold_of[owners] != k, np.flatnonzero(fold_of == k)
        present = np.unique(labels[fit_rows])
        for c in PENALTIES:
            model = _regression(c).fit(features[fit_rows], labels[fit_rows])
            oof[c][np.ix_(held, present)] = model.predict_proba(features[held])
    per_image = {c: -np.log(np.clip(p[np.arange(n_images), image_labels], 1e-15, 1)) for c, p in oof.items()}
    losses = {c: float(v.mean()) for c, v in per_image.items()}
    best = min(PENALTIES, key=lambda c: losses[c])
    se = float(per_image[best].std(ddof=1) / np.sqrt(n_images))
    return ProbeFit(best, losses[best], se, losses)


def fit_probe(
    model: EfficientNetLite,
    train_set: ImageSet,
    norm: Normalisation,
    device: torch.device,
    *,
    ranges: AugmentationRanges,
    train_views: int,
    seed: int,
) -> ProbeFit:
    """Fit the probe's head on `train_set`: features, the penalty chosen out of fold, the refit on all rows, and
    the regression (with the features' standardisation folded in) written into `model._fc`."""
    began = time.monotonic()
    features, owners = training_features(
        model, train_set, norm, device, ranges=ranges, train_views=train_views, seed=seed
    )
    labels = train_set.labels[owners].astype(np.int64)
    n_classes = model._fc.out_features
    mean, std = features.mean(0), features.std(0) + 1e-6
    standard = (features - mean) / std
    fit = choose_penalty(standard, labels, owners, n_classes, seed)
    regression = _regression(fit.penalty).fit(standard, labels)
    weight = np.zeros((n_classes, features.shape[1]))
    bias = np.full(n_classes, -30.0)  # a class without training images: never predicted
    weight[regression.classes_] = regression.coef_ / std
    bias[regression.classes_] = regression.intercept_ - regression.coef_ @ (mean / std)
    with torch.no_grad():
        model._fc.weight.copy_(torch.from_numpy(weight))
        model._fc.bias.copy_(torch.from_numpy(bias))
    centre = regression.predict_proba(standard[: len(train_set)])
    centre_labels = labels[: len(train_set)]
    fit = dataclasses.replace(
        fit,
        train_loss=float(log_loss(centre_labels, centre, labels=regression.classes_)),
        train_accuracy=float((regression.classes_[centre.argmax(1)] == centre_labels).mean()),
    )
    log.info(
        "probe: %d training images x %d views, C %.3g chosen out of fold (log loss %.4f +- %.4f; candidates %s) "
        "in %.0f s",
        len(train_set),
        1 + train_views,
        fit.penalty,
        fit.oof_loss,
        fit.oof_se,
        ", ".join(f"{c:.3g}: {v:.4f}" for c, v in fit.losses.items()),
        time.monotonic() - began,
    )
    return fit
