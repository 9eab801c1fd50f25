"""Stage 6, `deepsea evaluate`: validation scores of one prediction file, beside the class-prior baseline.

The prior baseline (predict the training class frequencies for every image) is what a model that learned nothing
scores; every report shows it so that "the model learned something" is a number, not a hope.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from deepsea.errors import DataMismatchError
from deepsea.imageset import ImageSet
from deepsea.io import load_predictions, read_json, write_json
from deepsea.metrics import class_prior, score
from deepsea.splits import Split

log = logging.getLogger(__name__)


def evaluate(
    pred_path: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    split_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
) -> dict:
    """Score validation predictions against the packed labels; write and return the scores."""
    probs, ids, class_names = load_predictions(pred_path)
    data = ImageSet.load(data_path)
    if class_names != data.class_names:
        raise DataMismatchError(f"{pred_path}: its classes differ from {data_path}'s; rerun the prediction.")
    split = Split.from_json(read_json(split_path), str(split_path))
    if sorted(ids) != sorted(split.valid_ids):
        raise DataMismatchError(
            f"{pred_path}: its image ids are not the validation ids of {split_path}; rerun the prediction."
        )
    labels = data.labels[data.index_of(ids, str(pred_path))]
    prior = class_prior(data.labels[data.index_of(split.train_ids, str(split_path))], len(class_names))
    result = {
        "predictions": str(pred_path),
        "valid": score(labels, probs),
        "class_prior": score(labels, np.tile(prior, (len(labels), 1))),
    }
    write_json(out, result)
    log.info(
        "%s: valid log loss %.4f (class prior %.4f), top-1 accuracy %.3f",
        pred_path,
        result["valid"]["log_loss"],
        result["class_prior"]["log_loss"],
        result["valid"]["top1_accuracy"],
    )
    return result
