"""`deepsea choose-views`: whether a model's predictions move on as the mean over its test-time views or as its
centre view alone, decided on images it did not train on.

Test-time augmentation helped every model of the Deep Sea solution (the Deep Sea documentation, 3.4.1: 70
quasi-random views), but on small real data it can hurt: a model trained on a few hundred images, or classes told
apart by orientation or size, can score worse averaged over rotated and zoomed views than on the plain image. So
the choice is made like every fitted one (adoption.py): the TTA mean, the uniform average over the views, is the
simple choice; the centre view alone (all weight on one view) replaces it only where it beats it by more than
`min_gain_se` paired standard errors on the model's validation images (out of fold under the k-fold scheme, where
every training image counts), for every subset of that model. Measured both ways (docs/results.md): requiring the
views to prove themselves instead turned TTA off where it was better by under one standard error and cost the
test loss on the demo's bags and on digits. `tta.choice: views` skips the test and always uses the views' mean,
as the original did.
"""

from __future__ import annotations

import logging
import os

from deepsea.blending.adoption import MIN_GAIN_SE, Adoption, adopt_if_better, labels_of
from deepsea.errors import ConfigError, DataMismatchError
from deepsea.predictions import Predictions

log = logging.getLogger(__name__)

CHOICES = ("auto", "views")


def views_adoption(
    tta_valid: Predictions, centre_valid: Predictions, labels_path: str | os.PathLike[str], min_gain_se: float
) -> Adoption:
    """The comparison of the centre view alone (the fitted choice) with the views' mean (the simple one) on the same
    validation images."""
    if tta_valid.ids != centre_valid.ids or tta_valid.class_names != centre_valid.class_names:
        raise DataMismatchError(
            "choose-views: the views' and the centre view's validation predictions are not of the same images and "
            "classes; rerun the model's predictions."
        )
    labels = labels_of(tta_valid, labels_path, "choose-views")
    return adopt_if_better(
        labels, centre_valid.probs, tta_valid.probs, min_gain_se, "the TTA mean", candidate="the centre view alone"
    )


def choose_views(
    valid: tuple[str | os.PathLike[str], str | os.PathLike[str]],
    subset: tuple[str | os.PathLike[str], str | os.PathLike[str]],
    data_path: str | os.PathLike[str],
    *,
    choice: str = "auto",
    min_gain_se: float = MIN_GAIN_SE,
) -> Predictions:
    """The predictions of one subset that move on: `subset` = (views' mean, centre view) of that subset, chosen
    between by `valid` = (views' mean, centre view) of the validation images, with the decision in the meta."""
    if choice not in CHOICES:
        raise ConfigError(f"choose-views: choice '{choice}' is not one of {', '.join(CHOICES)}.")
    adoption = views_adoption(Predictions.load(valid[0]), Predictions.load(valid[1]), data_path, min_gain_se)
    use_views = choice == "views" or adoption.adopted != "fitted"
    chosen = Predictions.load(subset[0] if use_views else subset[1])
    why = "tta.choice: views" if choice == "views" else adoption.reason
    chosen.meta = {
        **chosen.meta,
        "views_used": "tta" if use_views else "centre",
        "views_choice": {"choice": choice, "reason": why, "adoption": adoption.to_json()},
        "chosen_from": [str(subset[0]), str(subset[1])],
    }
    log.info("%s: the %s (%s)", subset[0], "TTA mean" if use_views else "centre view", why)
    return chosen
