"""A model's class probabilities for a set of images, as one record: `Predictions`.

Every stage after training passes predictions on: TTA writes them, bagging, fusion, the ensemble, the pseudo-label
shards and the final blend read and write them, the submission and the report read them. They travel as a
`Predictions` record (probabilities, image ids, class names, meta) with one loader, one writer, one alignment and
one consistency check, so "same images, same classes" is decided in one place.

On disk a prediction is two files: `<stem>.npy` (float32, rows = ids, columns = classes) and `<stem>.meta.json`
(the ids, the class names and what made it, e.g. the TTA views or the ensemble weights). The meta file is written
first, so a present .npy always has its meta; both are declared outputs of the rule that writes them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepsea.errors import DataMismatchError, DeepseaError, NonFiniteError
from deepsea.io import atomic_path, positions_of, read_json, write_json
from deepsea.means import combine

PathLike = str | os.PathLike[str]


@dataclass
class Predictions:
    """Class probabilities of `ids` (rows) over `class_names` (columns), with what made them in `meta`."""

    probs: np.ndarray  # (images, classes), rows sum to 1
    ids: list[str]
    class_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def check(self, where: str) -> None:
        """Refuse a record whose shape disagrees with its ids and classes, or whose probabilities are not."""
        if self.probs.shape != (len(self.ids), len(self.class_names)):
            raise DataMismatchError(
                f"{where}: predictions have shape {self.probs.shape} but there are {len(self.ids)} ids and "
                f"{len(self.class_names)} classes. Delete the file and its .meta.json and rerun the prediction."
            )
        check_probabilities(self.probs, where)

    def save(self, path: PathLike) -> None:
        """Write `<path>` (.npy, float32) and its meta file, the meta first, each atomically."""
        probs = np.asarray(self.probs, dtype=np.float32)
        Predictions(probs, self.ids, self.class_names).check(str(path))
        write_json(meta_path(path), {"ids": list(self.ids), "class_names": list(self.class_names), **self.meta})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, probs)

    @classmethod
    def load(cls, path: PathLike) -> Predictions:
        """Read a prediction and its meta, refusing files that disagree or hold NaN/inf."""
        p = Path(path)
        if not p.is_file():
            raise DeepseaError(f"{p}: predictions not found. Run `snakemake {p}` first.")
        meta = read_json(meta_path(p))
        ids, class_names = meta.pop("ids"), meta.pop("class_names")
        predictions = cls(np.load(p, allow_pickle=False), ids, class_names, meta)
        predictions.check(str(p))
        return predictions

    def same_images(self, other: Predictions) -> bool:
        """Whether `other` holds the same classes in the same order and the same ids in any order."""
        return other.class_names == self.class_names and sorted(other.ids) == sorted(self.ids)

    def in_order_of(self, ids: Sequence[str], where: str) -> Predictions:
        """The rows of `ids`, in that order; an id this record lacks is refused by name."""
        rows, missing = positions_of(ids, self.ids)
        if missing:
            raise DataMismatchError(f"{where}: no prediction for {len(missing)} images (first: {missing[:3]}).")
        return Predictions(self.probs[rows], list(ids), self.class_names, self.meta)


def meta_path(path: PathLike) -> Path:
    """The meta file that belongs to a predictions .npy file."""
    p = Path(path)
    return p.with_name(p.stem + ".meta.json")


def check_probabilities(probs: np.ndarray, where: str, atol: float = 1e-3) -> None:
    """Refuse a probability matrix with NaN/inf, negative entries or rows that do not sum to 1."""
    if probs.ndim != 2:
        raise DataMismatchError(f"{where}: expected a 2-D (images x classes) array, got shape {probs.shape}.")
    finite = np.isfinite(probs).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)[:5].tolist()
        raise NonFiniteError(f"{where}: NaN or inf in {int((~finite).sum())} rows (first: {rows}). Rerun the stage.")
    if (probs < 0).any():
        raise DataMismatchError(f"{where}: negative probabilities. Rerun the stage that made it.")
    sums = probs.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise DataMismatchError(
            f"{where}: {bad.size} rows do not sum to 1 (row {int(bad[0])} sums to {sums[bad[0]]:.6f})."
        )


def load_aligned(paths: Sequence[PathLike], ids: Sequence[str] | None = None) -> Iterator[Predictions]:
    """Each file's predictions with its rows in the first file's id order; a file whose ids or classes differ from
    the first's is refused by name. `ids`: only these images, in this order, from every file (each must predict
    them; see `common_images`). One file in memory at a time."""
    first: Predictions | None = None
    for path in paths:
        predictions = Predictions.load(path)
        if ids is not None:
            predictions = predictions.in_order_of(ids, str(path))
        if first is None:
            first = predictions
        elif not first.same_images(predictions):
            raise DataMismatchError(f"{path}: its ids or classes differ from {paths[0]}'s; rerun its prediction.")
        else:
            predictions = predictions.in_order_of(first.ids, str(path))
        yield predictions


def concatenate(paths: Sequence[PathLike]) -> Predictions:
    """One prediction from files over disjoint images with the same classes (the fold models' predictions of their
    own folds: out of fold, every image once), rows sorted by id; the first file's meta is kept."""
    parts = [Predictions.load(path) for path in paths]
    ids = [i for part in parts for i in part.ids]
    if len(set(ids)) != len(ids):
        raise DataMismatchError(f"{paths[0]}...: the files share images; each image must come from one fold.")
    if any(part.class_names != parts[0].class_names for part in parts):
        raise DataMismatchError(f"{paths[0]}...: the files' classes differ; rerun their predictions.")
    order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
    probs = np.concatenate([part.probs for part in parts])[order]
    return Predictions(probs, [ids[i] for i in order], parts[0].class_names, dict(parts[0].meta))


def common_images(paths: Sequence[PathLike]) -> list[str]:
    """The ids every file predicts, in the first file's order (a blend of predictions over different images); read
    from the meta files only."""
    first, *rest = (read_json(meta_path(path)).get("ids", []) for path in paths)
    shared = set(first).intersection(*map(set, rest))
    return [i for i in first if i in shared]


def average(
    paths: Sequence[PathLike],
    weights: Sequence[float] | None = None,
    mean: str = "arithmetic",
    ids: Sequence[str] | None = None,
) -> Predictions:
    """Mean of prediction files over the same ids (any order) and the same classes; `weights` (non-negative,
    normalised to sum 1) make it a weighted mean. `mean`: arithmetic (of the probabilities, one file in memory at a
    time), geometric or logit (as `means.combine` averages TTA views: a bag's members are averaged like one
    model's views). `ids`: only these images, in this order (every file must predict them; see `common_images`).
    The result's meta is empty: the caller says what made it."""
    weights = [1.0] * len(paths) if weights is None else list(weights)
    if len(weights) != len(paths) or min(weights) < 0 or sum(weights) <= 0:
        raise DataMismatchError(f"average: need one non-negative weight per file, not all 0; got {weights}.")
    members = load_aligned(paths, ids)
    first = next(members)
    rest = (member.probs for member in members)  # one file in memory at a time for the arithmetic mean
    probs = average_probs(itertools.chain([first.probs], rest), weights, mean)
    return Predictions(probs, first.ids, first.class_names)


def average_probs(probs: Iterable[np.ndarray], weights: Sequence[float], mean: str = "arithmetic") -> np.ndarray:
    """The weighted mean (float32) of aligned (images x classes) probabilities, as `average` takes it of files: also
    what a model bundle makes of a chunk of new images (deepsea/deploy/classify.py), the same arithmetic."""
    if mean != "arithmetic":
        log_probs = np.stack([np.log(np.clip(p.astype(np.float64), 1e-15, 1.0)) for p in probs], axis=1)
        return combine(log_probs, mean, np.asarray(weights)).astype(np.float32)
    total: np.ndarray | None = None
    for p, weight in zip(probs, weights, strict=True):
        total = weight * p.astype(np.float64) if total is None else total + weight * p.astype(np.float64)
    assert total is not None
    return (total / sum(weights)).astype(np.float32)
