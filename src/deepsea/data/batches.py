"""Feeding images to a network: normalisation statistics, centre views, and augmented training batches.

Training batches are a pure function of (seed, step): which images (a seeded permutation per epoch) and how each
is augmented (a generator seeded by step and position). That makes training reproducible regardless of the number
of DataLoader workers, and lets a resumed run continue with exactly the batches an uninterrupted run would see.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import Dataset

from deepsea.data.augment import (
    CENTRE_VIEW,
    AffineParams,
    AugmentationRanges,
    InputSpec,
    sample_params,
    to_ink,
    view,
    view_uint8,
)
from deepsea.data.imageset import ImageSet


@dataclass(frozen=True)
class Normalisation:
    """Global zero-mean unit-variance statistics of the training images' centre views (the Deep Sea
    documentation, 3.1)."""

    mean: float
    std: float

    @classmethod
    def fit(cls, images: ImageSet, spec: InputSpec) -> Normalisation:
        """Statistics of the first input's centre views (one global pair, as the original)."""
        total, total_sq, count = 0.0, 0.0, 0
        for image in images:
            v = view(image, spec.size, fixed_scale=spec.fixed_scale).astype(np.float64)
            total, total_sq, count = total + v.sum(), total_sq + (v * v).sum(), count + v.size
        mean = total / count
        return cls(float(mean), float(max(np.sqrt(max(total_sq / count - mean * mean, 0.0)), 1e-6)))

    def apply(self, batch: np.ndarray) -> np.ndarray:
        """Normalise float32 ink in place (and return it): no copies on the loader's hot path."""
        batch -= np.float32(self.mean)
        batch *= np.float32(1.0 / self.std)
        return batch


def _turned(p: AffineParams, degrees: float) -> AffineParams:
    """`p` turned further by `degrees` (the same object when 0: most inputs have one unturned channel)."""
    return replace(p, rotation=p.rotation + degrees) if degrees else p


def views_batch(
    images: ImageSet,
    indices: np.ndarray,
    inputs: list[InputSpec],
    norm: Normalisation,
    params: list[AffineParams] | None = None,
) -> list[torch.Tensor]:
    """One (B, C, S, S) tensor per network input (C: its rotations, usually 1), views as given (default: centre).

    The same augmentation parameters apply to every input of an image (a multiscale model sees one view of it at
    several scales)."""
    params = params or [CENTRE_VIEW] * len(indices)
    levels = np.array([images.background(int(i)) for i in indices])
    batches = []
    for spec in inputs:
        warped = np.stack(
            [
                [
                    view_uint8(images.image(int(i)), spec.size, _turned(p, r), spec.fixed_scale, int(level))
                    for r in spec.rotations
                ]
                for i, p, level in zip(indices, params, levels, strict=True)
            ]
        )  # (B, len(spec.rotations), S, S)
        batches.append(torch.from_numpy(norm.apply(to_ink(warped, levels))))
    return batches


TRAIN_STREAM, AUGMENT_STREAM, PSEUDO_STREAM, BALANCED_STREAM = 1, 2, 3, 4  # independent streams of a seed


@functools.lru_cache(maxsize=4)
def _permutation(n: int, seed: int, stream: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, stream, epoch]).permutation(n)


def epoch_positions(n: int, batch_size: int, step: int, seed: int, stream: int) -> np.ndarray:
    """Positions in a set of `n` images of batch `step`: consecutive slices of a fresh seeded permutation every
    epoch, so every image is seen once per epoch and the batch is a pure function of (seed, stream, step)."""
    positions = np.arange(step * batch_size, (step + 1) * batch_size)
    return np.array([_permutation(n, seed, stream, int(p // n))[p % n] for p in positions], dtype=np.int64)


@dataclass(frozen=True)
class ClassIndex:
    """A training set's image positions grouped by class, built once: regrouping the labels for every batch cost
    1.2 ms a batch for 30,000 images, as much as warping the batch's 32 images."""

    by_class: np.ndarray  # positions sorted by class
    starts: np.ndarray  # where each class present begins in `by_class`
    counts: np.ndarray  # its number of images

    @classmethod
    def of(cls, labels: np.ndarray) -> ClassIndex:
        by_class = np.argsort(labels, kind="stable")
        _, starts, counts = np.unique(labels[by_class], return_index=True, return_counts=True)
        return cls(by_class, starts, counts)


def balanced_positions(index: ClassIndex, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Positions of batch `step` drawn class-balanced: each row's class uniform over the classes present, then an
    image of that class uniformly (with replacement: a class of 3 images is seen as often as one of 3,000).

    De Fauw's diabetic retinopathy solution oversampled rare classes like this and switched back to the true
    distribution "somewhere in the middle of training", against overfitting to images seen ten times as often and to
    learn the true class frequencies (which log loss rewards) last. A pure function of (labels, seed, step), as
    `epoch_positions`."""
    rng = np.random.default_rng([seed, BALANCED_STREAM, step])
    rows = rng.integers(0, len(index.starts), batch_size)
    return index.by_class[index.starts[rows] + rng.integers(0, index.counts[rows])].astype(np.int64)


def training_positions(index: ClassIndex, batch_size: int, step: int, seed: int, balanced_steps: int) -> np.ndarray:
    """The training images of batch `step`: class-balanced for the first `balanced_steps` steps, then every image
    once per epoch (the true class distribution)."""
    if step < balanced_steps:
        return balanced_positions(index, batch_size, step, seed)
    return epoch_positions(len(index.by_class), batch_size, step, seed, TRAIN_STREAM)


class AugmentedBatches(Dataset):
    """Item `step` is the training batch of that step: ([one (B,1,S,S) tensor per input], labels (B,))."""

    def __init__(
        self,
        images: ImageSet,
        inputs: list[InputSpec],
        batch_size: int,
        ranges: AugmentationRanges,
        norm: Normalisation,
        *,
        seed: int,
        balanced_steps: int = 0,
    ):
        self.images, self.inputs, self.batch_size = images, inputs, batch_size
        self.n_train = batch_size  # training images per batch (a pseudo-label batch holds fewer)
        self.ranges, self.norm, self.seed, self.balanced_steps = ranges, norm, seed, balanced_steps
        self.classes = ClassIndex.of(images.labels)

    def __len__(self) -> int:  # not used for sampling; steps are requested explicitly
        return 2**62

    def indices(self, step: int) -> np.ndarray:
        """Image positions of batch `step` (`training_positions`)."""
        return training_positions(self.classes, self.batch_size, step, self.seed, self.balanced_steps)

    def __getitem__(self, step: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        idx = self.indices(step)
        rng = np.random.default_rng([self.seed, AUGMENT_STREAM, step])
        params = [sample_params(self.ranges, rng) for _ in idx]
        x = views_batch(self.images, idx, self.inputs, self.norm, params)
        return x, torch.from_numpy(self.images.labels[idx].astype(np.int64))
