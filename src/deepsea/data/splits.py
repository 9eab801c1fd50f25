"""`deepsea split`: stratified train/validation splits, for the standard split and for bagging.

The original held out 10% of each class as validation (stratified) and made one further split per bagging seed.
A split is a pure function of (image ids, labels, fraction, seed, purpose): ids are sorted per class before the
seeded shuffle, so the split does not depend on the order the files were listed in. `purpose` ("valid" or "bag")
enters the random stream, so bag seed 0 is not the same split as the standard split with seed 0.

Copies: identical images of a class (same pixels, `duplicates.py`) go to the same side, so validation never scores
an image the model trained on under another name.

Small classes: a class keeps at least one image in training (every class must be learnable). A class with fewer
than 2 images therefore has no validation image; the split records such classes in `notes`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
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
    *,
    purpose: Purpose = "valid",
    digests: Sequence[str] | None = None,
) -> Split:
    """Hold out round(fraction * n_c) images of every class c (at most n_c - 1) for validation.

    `digests` (`duplicates.pixel_digest` of each image, in the order of `ids`): identical images of a class go to
    the same side, so no image is validated on after training on its copy. A class without copies is split
    exactly as without digests; one with copies may hold out fewer images (a copy group never overfills it)."""
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
    digest_of = dict(zip(ids.tolist(), digests, strict=True)) if digests is not None else {}
    for label, name in enumerate(class_names):
        members = np.sort(ids[labels == label])
        n = len(members)
        n_valid = min(int(np.floor(valid_fraction * n + 0.5)), n - 1)
        order = rng.permutation(n)
        keys = [digest_of.get(m, m) for m in members.tolist()]
        if len(set(keys)) == n:  # no copies: the plain stratified split
            held_out = order[:n_valid]
        else:
            held_out = _whole_groups(order, keys, n_valid)
        in_valid = np.zeros(n, dtype=bool)
        in_valid[held_out] = True
        n_held = int(in_valid.sum())
        if n < 10:
            notes.append(
                f"class '{name}' has only {n} image(s): {n_held} in validation, {n - n_held} in training"
                + (NO_VALID_NOTE if n_held == 0 else "")
            )
        valid_ids += members[in_valid].tolist()
        train_ids += members[~in_valid].tolist()
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


def _whole_groups(order: np.ndarray, keys: list[str], n_valid: int) -> np.ndarray:
    """Members to hold out when some are copies of each other (equal `keys`): groups are taken in the shuffled
    `order` of their first member while they fit in `n_valid`, so copies never straddle the two sides."""
    size: dict[str, int] = {}
    for key in keys:
        size[key] = size.get(key, 0) + 1
    side: dict[str, bool] = {}
    held = 0
    for i in order.tolist():
        if keys[i] not in side:
            side[keys[i]] = held + size[keys[i]] <= n_valid
            held += size[keys[i]] if side[keys[i]] else 0
    return np.array([i for i in order.tolist() if side[keys[i]]], dtype=np.int64)


def kfold_splits(
    ids: list[str] | np.ndarray,
    labels: list[int] | np.ndarray,
    class_names: list[str],
    folds: int,
    seed: int,
    *,
    digests: Sequence[str] | None = None,
) -> list[Split]:
    """K stratified folds: split k validates on fold k and trains on the others, so every image is validated on
    exactly once, by a model that did not train on it (out-of-fold predictions).

    Within each class the images are shuffled (ids sorted first, as `stratified_split`) and dealt to the folds in
    turn, continuing from where the previous class stopped, so the folds' sizes differ by at most one. Identical
    images (equal `digests`) are dealt as one group, into one fold. A class with fewer images than folds leaves
    some folds without it; their models never see that class, which the notes record."""
    if folds < 2:
        raise ConfigError(f"splits.folds: at least 2, got {folds}.")
    ids = np.asarray(ids, dtype=str)
    labels = np.asarray(labels)
    if len(np.unique(ids)) != len(ids):
        raise DeepseaError("split: image ids are not unique; repack the data.")
    rng = np.random.default_rng([seed, _purpose_key("kfold")])
    digest_of = dict(zip(ids.tolist(), digests, strict=True)) if digests is not None else {}
    fold_of: dict[str, int] = {}
    notes: list[str] = []
    next_fold = 0
    for label, name in enumerate(class_names):
        members = np.sort(ids[labels == label]).tolist()
        groups: dict[str, list[str]] = {}
        for member in [members[i] for i in rng.permutation(len(members))]:
            groups.setdefault(digest_of.get(member, member), []).append(member)
        for group in groups.values():  # in the shuffled order of each group's first member
            fold_of.update(dict.fromkeys(group, next_fold))
            next_fold = (next_fold + 1) % folds
        if 0 < len(groups) < folds:
            notes.append(f"class '{name}' has {len(members)} image(s): {folds - len(groups)} fold models never see it")
    for note in notes[:SMALL_CLASS_LINES]:
        log.warning("%s", note)
    everyone = sorted(fold_of)
    return [
        Split(
            train_ids=[i for i in everyone if fold_of[i] != k],
            valid_ids=[i for i in everyone if fold_of[i] == k],
            seed=seed,
            purpose=f"fold_{k}",
            valid_fraction=1.0 / folds,
            notes=notes,
        )
        for k in range(folds)
    ]


def all_images_split(splits: Sequence[Split]) -> Split:
    """The validation set of a k-fold scheme: every image, each predicted by the model of its own fold."""
    every = sorted(i for split in splits for i in split.valid_ids)
    return Split([], every, splits[0].seed, "out_of_fold", 1.0, splits[0].notes)
