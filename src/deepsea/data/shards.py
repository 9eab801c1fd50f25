"""The test set's shards for pseudo-label retraining: which test images each shard model must not learn from.

The Deep Sea blog post ("pseudo-labeling") split the test set so that no model is trained on the pseudo-labels of
the images it later predicts; `shard_test_set` makes that split, reproducibly from the sorted ids.
"""

from __future__ import annotations

import os

import numpy as np

from deepsea.errors import DeepseaError
from deepsea.io import read_json


def shard_test_set(ids: list[str] | np.ndarray, n_shards: int, seed: int) -> list[list[str]]:
    """The test ids shuffled (from sorted order, so the listing order does not matter) into `n_shards` shards of
    sizes differing by at most one."""
    if n_shards < 2:
        raise DeepseaError(f"pseudo_labels.shards: need at least 2 shards, got {n_shards}.")
    ordered = np.sort(np.asarray(ids, dtype=str))
    if len(ordered) < n_shards:
        raise DeepseaError(f"pseudo_labels.shards: {n_shards} shards need as many test images, not {len(ids)}.")
    shuffled = ordered[np.random.default_rng([seed, 7]).permutation(len(ordered))]
    return [part.tolist() for part in np.array_split(shuffled, n_shards)]


def read_shards(path: str | os.PathLike[str]) -> list[list[str]]:
    shards = read_json(path).get("shards")
    if not isinstance(shards, list) or len(shards) < 2:
        raise DeepseaError(f"{path}: not a shard file made by `deepsea shard-test`; rerun it.")
    return shards
