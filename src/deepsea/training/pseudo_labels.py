"""Pseudo-label retraining (the Deep Sea documentation, section 3.5): test images with the ensemble's probabilities
as soft targets join the training batches of a retrained convnet.

The test set is shuffled into `shards` (3 in the original); the model of shard k trains on the pseudo-labels of
every other shard, so it never learns the (pseudo-)labels of the images of shard k. Every minibatch holds
round(fraction x batch size) pseudo-labelled test images (33% by default; 67% in the original's final models) and
training images for the rest, all augmented the same way. Targets are the ensemble's probabilities, not their
argmax: the loss is the cross-entropy against a distribution (one-hot for the training images).

The shard models' test predictions are combined by `combine_shards`: `mean` averages every shard model over every
test image (the original), `held_out` takes for each test image only the model of its own shard, which never saw
that image's pseudo-label.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from deepsea.data.augment import AugmentationRanges, InputSpec, sample_params
from deepsea.data.batches import (
    AUGMENT_STREAM,
    PSEUDO_STREAM,
    ClassIndex,
    Normalisation,
    epoch_positions,
    training_positions,
    views_batch,
)
from deepsea.data.imageset import ImageSet
from deepsea.data.shards import read_shards
from deepsea.errors import DataMismatchError, DeepseaError
from deepsea.io import positions_of
from deepsea.predictions import Predictions
from deepsea.training.settings import ModelSettings, PseudoLabelSettings

log = logging.getLogger(__name__)


@dataclass
class PseudoLabelPool:
    """The pseudo-labelled test images a shard model trains on, with their soft targets (N, classes) float32."""

    images: ImageSet
    targets: np.ndarray

    @classmethod
    def build(
        cls,
        test: ImageSet,
        pseudo_labels_path: str | os.PathLike[str],
        shards: list[list[str]],
        settings: PseudoLabelSettings,
        class_names: list[str],
    ) -> PseudoLabelPool:
        """The test images of every shard but `settings.shard`, targets from the ensemble's predictions."""
        if len(shards) != settings.shards:
            raise DeepseaError(
                f"the shard file has {len(shards)} shards but the model expects {settings.shards}; rerun shard_test."
            )
        predicted = Predictions.load(pseudo_labels_path)
        if predicted.class_names != class_names:
            raise DataMismatchError(
                f"{pseudo_labels_path}: its classes differ from the training data's; rerun the ensemble."
            )
        held_out = set(shards[settings.shard])
        pool_ids = [i for k, shard in enumerate(shards) if k != settings.shard for i in shard]
        if held_out & set(pool_ids):
            raise DataMismatchError("the shard file lists an image in two shards; rerun shard_test.")
        rows, missing = positions_of(pool_ids, predicted.ids)
        if missing:
            raise DataMismatchError(
                f"{pseudo_labels_path}: no prediction for {len(missing)} test images of the shard file (first: "
                f"{missing[0]}); the shards and the ensemble were made from different test sets. Rerun both."
            )
        return cls(test.subset(test.index_of(pool_ids, "the shard file")), predicted.probs[rows].astype(np.float32))


def pseudo_labelled_per_batch(fraction: float, batch_size: int) -> int:
    """round(fraction x batch size), but at least one image of each kind in every batch."""
    return min(max(round(fraction * batch_size), 1), batch_size - 1)


class PseudoLabelBatches(Dataset):
    """Item `step`: ([one (B, C, S, S) tensor per input], soft targets (B, classes)); the first B - n_pseudo rows are
    training images (one-hot targets), the last n_pseudo pseudo-labelled test images. A pure function of
    (seed, step), as `AugmentedBatches`, so a resumed run sees the batches an uninterrupted one would."""

    def __init__(
        self,
        train: ImageSet,
        pool: PseudoLabelPool,
        inputs: list[InputSpec],
        batch_size: int,
        fraction: float,
        *,
        ranges: AugmentationRanges,
        norm: Normalisation,
        seed: int,
        balanced_steps: int = 0,
    ):
        self.train, self.pool, self.inputs, self.ranges, self.norm, self.seed = train, pool, inputs, ranges, norm, seed
        self.balanced_steps = balanced_steps  # the training rows' class balance, as `AugmentedBatches`
        self.classes = ClassIndex.of(train.labels)
        self.n_pseudo = pseudo_labelled_per_batch(fraction, batch_size)
        self.n_train = batch_size - self.n_pseudo
        self.n_classes = pool.targets.shape[1]

    def __len__(self) -> int:  # not used for sampling; steps are requested explicitly
        return 2**62

    def indices(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(training image positions, pool positions) of batch `step`; each stream walks its own permutations."""
        return (
            training_positions(self.classes, self.n_train, step, self.seed, self.balanced_steps),
            epoch_positions(len(self.pool.images), self.n_pseudo, step, self.seed, PSEUDO_STREAM),
        )

    def __getitem__(self, step: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        train_idx, pool_idx = self.indices(step)
        rng = np.random.default_rng([self.seed, AUGMENT_STREAM, step])
        params = [sample_params(self.ranges, rng) for _ in range(len(train_idx) + len(pool_idx))]
        x_train = views_batch(self.train, train_idx, self.inputs, self.norm, params[: len(train_idx)])
        x_pool = views_batch(self.pool.images, pool_idx, self.inputs, self.norm, params[len(train_idx) :])
        one_hot = np.eye(self.n_classes, dtype=np.float32)[self.train.labels[train_idx].astype(np.int64)]
        targets = np.concatenate([one_hot, self.pool.targets[pool_idx]])
        return [torch.cat(pair) for pair in zip(x_train, x_pool, strict=True)], torch.from_numpy(targets)


@dataclass(frozen=True)
class PseudoLabelInputs:
    """Files a pseudo-label model trains on besides its split: packed test images, their shards, the targets."""

    test_data: str | os.PathLike[str]
    shards: str | os.PathLike[str]
    targets: str | os.PathLike[str]


def load_pseudo_label_pool(
    settings: ModelSettings, inputs: PseudoLabelInputs | None, class_names: list[str]
) -> PseudoLabelPool | None:
    """The pseudo-labelled images of a model with pseudo_label.fraction > 0 (None for an ordinary model)."""
    p = settings.pseudo_label
    if p.fraction == 0:
        if inputs is not None:
            raise DeepseaError(f"models.{settings.name}: pseudo-label files were given but pseudo_label.fraction is 0.")
        return None
    if inputs is None:
        raise DeepseaError(
            f"models.{settings.name}: a pseudo-label model needs --test-data, --shards and --pseudo-labels."
        )
    test = ImageSet.load(inputs.test_data)
    pool = PseudoLabelPool.build(test, inputs.targets, read_shards(inputs.shards), p, class_names)
    log.info(
        "pseudo-labels: %d test images of %d shards (all but shard %d), %.0f%% of every batch, targets from %s",
        len(pool.images),
        p.shards - 1,
        p.shard,
        100 * p.fraction,
        inputs.targets,
    )
    return pool
