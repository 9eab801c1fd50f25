"""Whether a fitted blend has earned its place: adopt it only where it beats the uniform choice by more than its
standard error, image by image, on predictions it was not fitted on.

On a small validation set a fitted blend mostly fits noise: with about one image per class, an ensemble's weights can
put everything on the model that happened to be luckiest there, which is then the worst on new images. The original
Deep Sea team already found their 10% split (3,000 images) noisy for such choices. So every fitted choice here is
compared with the simple one (equal weights) on the same images, out of fold, and adopted only when its mean
per-image gain exceeds `min_gain_se` paired standard errors; otherwise the uniform blend is used. The record says
which, with the numbers, for the log, the closing summary and the report.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from deepsea.data.imageset import ImageSet
from deepsea.errors import DataMismatchError
from deepsea.io import positions_of
from deepsea.metrics import image_log_losses, paired_standard_error
from deepsea.predictions import Predictions

MIN_GAIN_SE = 1.0  # the default: a fitted blend must gain more than one standard error
# Fewer honest validation images than this and a fitted choice (the pseudo-label weight, the temperature) is not
# adopted whatever its gain: a standard error from a dozen images is itself noise (docs/results.md, 2026-12-07: a
# temperature fitted on 14 images of a real plankton set made its test log loss 3.4x worse).
MIN_DECISION_IMAGES = 50


@dataclass(frozen=True)
class Adoption:
    """The comparison of a fitted blend with the uniform one on the same images, and what was adopted."""

    adopted: str  # "fitted", or the simple choice's name ("uniform"; the final blend: "ensemble alone")
    fitted_log_loss: float  # out of fold (or fitted on other images)
    uniform_log_loss: float  # the simple choice's
    gain: float  # simple minus fitted: positive where the fitted blend is better
    gain_se: float  # paired standard error of the per-image differences
    min_gain_se: float
    images: int

    simple: str = "uniform"  # what the simple choice is
    candidate: str = "the fitted blend"  # what competes with it
    min_images: int = 0  # fewer images than this: the simple choice, whatever the gain

    @property
    def reason(self) -> str:
        clear = self.gain > 0 and self.gain > self.min_gain_se * self.gain_se
        verdict = "more" if clear else "not more"
        simple = "the uniform one" if self.simple == "uniform" else self.simple
        few = f"; too few images to decide (fewer than {self.min_images})" if self.images < self.min_images else ""
        return (
            f"{self.adopted}: {self.candidate} gains {self.gain:+.4f} log loss over {simple} on {self.images} "
            f"images it was not fitted on, {verdict} than {self.min_gain_se:g} x its standard error "
            f"{self.gain_se:.4f}{few}"
        )

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "reason": self.reason}


def adopt_if_better(
    labels: np.ndarray,
    fitted: np.ndarray,
    uniform: np.ndarray,
    min_gain_se: float,
    simple: str = "uniform",
    *,
    candidate: str = "the fitted blend",
    min_images: int = 0,
) -> Adoption:
    """Compare the fitted blend's (out-of-fold) probabilities with the simple choice's (`uniform`, named `simple`)
    on the same labelled images; `candidate` names the fitted one in the reason. On fewer than `min_images` images
    the simple choice stands whatever the gain (a standard error from a dozen images is itself noise)."""
    fitted_losses, uniform_losses = image_log_losses(labels, fitted), image_log_losses(labels, uniform)
    gain = float(np.mean(uniform_losses - fitted_losses)) if len(labels) else 0.0
    se = paired_standard_error(uniform_losses, fitted_losses)
    better = gain > 0 and gain > min_gain_se * se and len(labels) >= min_images
    return Adoption(
        adopted="fitted" if better else simple,
        fitted_log_loss=float(np.mean(fitted_losses)) if len(labels) else float("nan"),
        uniform_log_loss=float(np.mean(uniform_losses)) if len(labels) else float("nan"),
        gain=gain,
        gain_se=se,
        min_gain_se=min_gain_se,
        images=int(len(labels)),
        simple=simple,
        candidate=candidate,
        min_images=min_images,
    )


def labels_of(predicted: Predictions, data_path: str | os.PathLike[str], command: str) -> np.ndarray:
    """The packed labels of the rows of `predicted` (validation or out-of-fold images of the training set), whose
    ids and classes must be the packed training set's; `command` names the stage in the error."""
    data = ImageSet.load(data_path)
    rows, missing = positions_of(predicted.ids, data.ids.tolist())
    if missing:
        raise DataMismatchError(
            f"{command}: {len(missing)} validation ids (e.g. '{missing[0]}') are not in {data_path}; the "
            "predictions must be over validation images of this training set."
        )
    if list(predicted.class_names) != list(data.class_names):
        raise DataMismatchError(f"{command}: the predictions' classes are not those of {data_path}.")
    return data.labels[rows]
