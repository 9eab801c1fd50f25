"""Stage 2, `deepsea split`: stratified train/validation splits, for the standard split and for bagging.

The original held out 10% of each class as validation (stratified) and made one further split per bagging seed.
A split is a pure function of (image ids, labels, fraction, seed, purpose): ids are sorted per class before the
seeded shuffle, so the split does not depend on the order the files were listed in. `purpose` ("valid" or "bag")
enters the random stream, so bag seed 0 is not the same split as the standard split with seed 0.

Small classes: a class keeps at least one image in training (every class must be learnable). A class with fewer
than 2 images therefore has no validation image; the split records such classes in `notes`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from deepsea.errors import ConfigError, DeepseaError

log = logging.getLogger(__name__)

Purpose = Literal["valid", "bag"]


@dataclass
class Split:
    """Image ids for training and validation, and how they were chosen."""

    train_ids: list[str]
    valid_ids: list[str]
    seed: int
    purpose: str
    valid_fraction: float
    notes: list[str]

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: dict, where: str = "split") -> Split:
        try:
            return cls(**obj)
        except TypeError as err:
            raise DeepseaError(f"{where}: not a split file made by `deepsea split` ({err}).") from err


SMALL_CLASS_LINES = 5  # classes with fewer than 10 images named one per log line; the rest are counted
NO_VALID_NOTE = " (no validation image: its validation metrics are undefined)"


def _purpose_key(purpose: str) -> int:
    """A stable integer for `purpose` (Python's hash() is salted per process, so it cannot be used)."""
    return int.from_bytes(hashlib.sha256(purpose.encode()).digest()[:4], "little")


def stratified_split(
    ids: list[str] | np.ndarray,
    labels: list[int] | np.ndarray,
    class_names: list[str],
    valid_fraction: float,
    seed: int,
    purpose: Purpose = "valid",
) -> Split:
    """Hold out round(fraction * n_c) images of every class c (at most n_c - 1) for validation."""
    if not 0.0 < valid_fraction < 1.0:
        raise ConfigError(f"splits.valid_fraction must be between 0 and 1 (exclusive), got {valid_fraction}.")
    ids = np.asarray(ids, dtype=str)
    labels = np.asarray(labels)
    if len(np.unique(ids)) != len(ids):
        raise DeepseaError("split: image ids are not unique; repack the data.")
    rng = np.random.default_rng([seed, _purpose_key(purpose)])
    train_ids: list[str] = []
    valid_ids: list[str] = []
    notes: list[str] = []
    for label, name in enumerate(class_names):
        members = np.sort(ids[labels == label])
        n = len(members)
        n_valid = min(int(np.floor(valid_fraction * n + 0.5)), n - 1)
        if n < 10:
            notes.append(
                f"class '{name}' has only {n} image(s): {n_valid} in validation, {n - n_valid} in training"
                + (NO_VALID_NOTE if n_valid == 0 else "")
            )
        order = rng.permutation(n)
        valid_ids += members[order[:n_valid]].tolist()
        train_ids += members[order[n_valid:]].tolist()
    for note in notes[:SMALL_CLASS_LINES]:
        log.warning("%s", note)
    if len(notes) > SMALL_CLASS_LINES:  # a long tail (NDSB's) would bury the log in one line per class
        rest = notes[SMALL_CLASS_LINES:]
        log.warning(
            "... and %d more classes with fewer than 10 images, %d of them without a validation image (every "
            "class's line is in the split file's notes)",
            len(rest),
            sum(NO_VALID_NOTE in note for note in rest),
        )
    return Split(sorted(train_ids), sorted(valid_ids), seed, purpose, valid_fraction, notes)
