"""One prediction from the pseudo-label shard models (the Deep Sea blog post, "pseudo-labeling").

The model of shard k trained on the pseudo-labels of every other shard. `mean` averages every shard model over
every image (the original); `held_out` takes for each test image only the model of its own shard, which never saw
that image's pseudo-label.
"""

from __future__ import annotations

import os

import numpy as np

from deepsea.errors import DeepseaError
from deepsea.io import positions_of
from deepsea.predictions import Predictions, load_aligned

COMBINE_MODES = ("mean", "held_out")


def shard_mean(stacked: np.ndarray) -> np.ndarray:
    """The `mean` combination of (models, images, classes) float64 shard predictions: what a model bundle applies
    to new images, which no shard model trained on (deepsea/deploy/classify.py)."""
    return stacked.mean(axis=0)


def combine_shards(paths: list[str | os.PathLike[str]], shards: list[list[str]] | None, mode: str) -> Predictions:
    """One test prediction from the shard models' (`paths[k]` is shard k's model): `mean` over all models, or
    `held_out`: each image from the model of its own shard (images in no shard, e.g. validation: the mean)."""
    if mode not in COMBINE_MODES:
        raise DeepseaError(f"pseudo_labels.combine: one of {COMBINE_MODES}, got '{mode}'.")
    aligned = list(load_aligned(paths))
    ids0 = aligned[0].ids
    stacked = np.stack([p.probs.astype(np.float64) for p in aligned])  # (models, images, classes)
    combined = shard_mean(stacked)
    if mode == "held_out":
        if shards is None or len(shards) != len(paths):
            raise DeepseaError(f"held_out needs the shard file and one prediction per shard ({len(paths)} given).")
        for k, shard in enumerate(shards):
            rows, _ = positions_of(shard, ids0)
            rows = rows[rows >= 0]
            combined[rows] = stacked[k, rows]
    return Predictions(combined.astype(np.float32), ids0, aligned[0].class_names)
