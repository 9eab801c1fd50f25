"""Typed settings for one model entry of the config, and their strict construction from a dict.

The workflow validates the config against its JSON schema (which fills in defaults), then hands each stage the resolved
settings of one model as JSON on the command line. This module turns that JSON back into dataclasses and refuses unknown
keys by name, so a stage run by hand with a typo fails as clearly as the workflow does. The dataclass defaults mirror
the schema defaults (a test keeps the two equal)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepsea.data.augment import AugmentationRanges
from deepsea.data.orientation import Orientation
from deepsea.errors import ConfigError
from deepsea.nets.families import nearest_input_size
from deepsea.records import from_dict, load_json_argument


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings. lr drops by 10x at each fraction of the steps in `lr_drops` (original: 84%, 95%).

    The length is `epochs` (passes over the training images, so it follows the data: steps = ceil(epochs x training
    images / batch_size), resolved when training starts, see `with_steps`) or, for exact reproduction, `steps`; not
    both. Neither: DEFAULT_EPOCHS."""

    steps: int = 0  # minibatches; 0: from epochs
    epochs: float = 0.0  # passes over the training images; 0 (and steps 0): DEFAULT_EPOCHS
    min_steps: int = 600  # the fewest steps `epochs` resolves to (DEFAULT_MIN_STEPS): a small set trains long enough
    batch_size: int = 32
    learning_rate: float = 0.003
    lr_drops: tuple[float, ...] = (0.84, 0.95)
    optimizer: str = "sgd"  # sgd (Nesterov momentum) or adam
    momentum: float = 0.9
    weight_decay: float = 0.0
    checkpoint_every: int = 100
    eval_every: int = 100
    workers: int = 1  # DataLoader worker processes producing augmented batches
    bf16: bool = False  # bfloat16 autocast on CUDA (ignored on CPU)
    max_grad_norm: float = 0.0  # clip the gradient norm to this (0: off, as the original); a rail against divergence
    balanced_until: float = 0.0  # class-balanced batches for this fraction of the steps, then the true distribution
    # (De Fauw's oversampling of rare classes; 0: off, the original)
    snapshots: int = 0  # keep the weights at this many steps of the last `snapshot_from` of training and predict
    snapshot_from: float = 0.8  # with all of them averaged (a HackerEarth challenge write-up's snapshot ensemble;
    # 0 or 1: the final only)


DEFAULT_EPOCHS = 30.0
DEFAULT_MIN_STEPS = TrainSettings.min_steps  # 600: what 27 epochs of the demo's 720 images take (608 steps)
AUTO_SIZE_RANGE = (31, 95)  # input_size auto: within the demo's inputs and the original's 95 px (cost: its square)
# ImageNet backbones see 32x smaller maps than their input: below 64 px the last map is one pixel, and their
# features were learnt at 224 px; above 128 px a CPU step costs 4x the 64 px one (benchmarks/pretrained_step.py)
PRETRAINED_SIZE_RANGE = (64, 128)


def auto_size_range(architecture: str) -> tuple[int, int]:
    """The pixels `input_size: auto` stays within for `architecture`."""
    return PRETRAINED_SIZE_RANGE if architecture in ("pretrained", "probe") else AUTO_SIZE_RANGE


def auto_input_size(longest_side_p75: float, architecture: str, params: dict[str, Any]) -> int:
    """The input size for training images whose longest sides have 75th percentile `longest_side_p75` (the pack
    report's), so that three in four images are not shrunk (each image's longest side is scaled to the input),
    within 31-95 px (the original chose 95 px for NDSB, whose images are mostly smaller), rounded to a size the
    architecture takes (64-128 px for the ImageNet backbones). From all the packed training images, so an entry's
    fold and bag models share it."""
    low, high = auto_size_range(architecture)
    return nearest_input_size(architecture, params, min(max(longest_side_p75, low), high), at_most=high)


@dataclass(frozen=True)
class PseudoLabelSettings:
    """Pseudo-label retraining (the Deep Sea documentation, 3.5): `fraction` of every minibatch are test images with the
    ensemble's probabilities as soft targets, taken from every test shard but `shard` (of `shards`). fraction 0: off."""

    fraction: float = 0.0
    shard: int = 0
    shards: int = 0


@dataclass(frozen=True)
class ModelSettings:
    """One model entry: architecture, input size, which split it trains on, training and augmentation."""

    name: str
    architecture: str = "plain"
    input_size: int | str = 32  # pixels, or "auto": from the training images' sizes (`with_input_size`)
    params: dict[str, Any] = field(default_factory=dict)  # architecture-specific (widths, dense units, ...)
    split: str = "valid"  # "valid" (the standard split), "bag_<seed>" or "fold_<k>"
    seed: int = 0
    preinit: str = ""  # name of a model entry whose trained convolution layers initialise this one
    train: TrainSettings = field(default_factory=TrainSettings)
    augmentation: AugmentationRanges = field(default_factory=AugmentationRanges)
    pseudo_label: PseudoLabelSettings = field(default_factory=PseudoLabelSettings)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict; `train.epochs` only where it was set, so that a model trained for a given number
        of steps is written byte for byte as before epochs existed."""
        data = dataclasses.asdict(self)
        if not self.train.epochs:
            del data["train"]["epochs"]
        if self.train.min_steps == DEFAULT_MIN_STEPS:  # as before the floor existed: the same model files
            del data["train"]["min_steps"]
        return data

    def with_input_size(self, p75: float) -> ModelSettings:
        """These settings with `input_size: auto` resolved for training images whose longest sides have 75th
        percentile `p75` (`auto_input_size`); a size in pixels stays."""
        if self.input_size != "auto":
            return self
        return dataclasses.replace(self, input_size=auto_input_size(p75, self.architecture, self.params))

    @property
    def pixels(self) -> int:
        """The input size in pixels, once resolved (a model file always holds it resolved)."""
        if not isinstance(self.input_size, int):
            raise ConfigError(f"models.{self.name}.input_size: '{self.input_size}' is resolved when training starts.")
        return self.input_size

    def with_orientation(self, orientation: Orientation) -> ModelSettings:
        """These settings with the augmentation's rotation and flip limited to `orientation` (data.orientation and
        data.mirror, resolved for the training images: data/orientation.py); unchanged for free images."""
        rotation, flip = orientation.limit(self.augmentation.rotation, self.augmentation.flip)
        if (rotation, flip) == (self.augmentation.rotation, self.augmentation.flip):
            return self
        return dataclasses.replace(
            self, augmentation=dataclasses.replace(self.augmentation, rotation=rotation, flip=flip)
        )

    def with_steps(self, train_images: int) -> ModelSettings:
        """These settings with the training length in steps, resolved from `epochs` for `train_images` training
        images (each step is `batch_size` images: a pseudo-label model's batches mix test images in, so it passes
        over its labelled images fewer times than `epochs` and costs what its base model costs), and at least
        `min_steps`: 27 epochs of 70 images are 60 steps, after which a convnet has learned next to nothing."""
        t = self.train
        if t.steps:
            return self
        epochs = t.epochs or DEFAULT_EPOCHS
        steps = max(1, t.min_steps, math.ceil(epochs * train_images / t.batch_size))
        return dataclasses.replace(self, train=dataclasses.replace(t, steps=steps, epochs=epochs))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


FOLD_STREAM = 1  # fold models' seeds: SeedSequence([entry seed, fold, 1]), apart from bag members' ([seed, bag])


def bag_member_seed(entry_seed: int, bag_seed: int) -> int:
    """The training seed of an entry's bag member `bag_seed`: its own weight initialisation, minibatch order and
    augmentation draws. With the entry's seed the members were clones from one start that differed only in their
    split; deep ensembles get most of their diversity from independent starts. A hash of both numbers (not
    `entry_seed + bag_seed`) keeps bag 0 from being the standard member's twin and members of one bag apart."""
    return int(np.random.SeedSequence([entry_seed, bag_seed]).generate_state(1)[0])


def fold_member_seed(entry_seed: int, fold: int) -> int:
    """The training seed of an entry's model of fold `fold` (k-fold scheme): its own start, as a bag member's, from
    another stream than the bag members' seeds."""
    return int(np.random.SeedSequence([entry_seed, fold, FOLD_STREAM]).generate_state(1)[0])


def load_model_settings(text_or_path: str) -> ModelSettings:
    """Parse model settings given as a JSON string or as the path of a JSON file."""
    data = load_json_argument(text_or_path, "--settings")
    settings = from_dict(ModelSettings, data, f"models.{data.get('name', '?')}")
    validate_model_settings(settings)
    return settings


def validate_model_settings(s: ModelSettings) -> None:
    """Range checks the schema cannot express across keys, with the key and the fix named."""
    where = f"models.{s.name}"
    if s.input_size != "auto" and (not isinstance(s.input_size, int) or s.input_size < 8):
        raise ConfigError(
            f"{where}.input_size: {s.input_size!r} is not a size; give pixels, at least 8 (the original: 95), or "
            "auto (from the training images)."
        )
    t = s.train
    if t.learning_rate <= 0:
        raise ConfigError(f"{where}.train.learning_rate: must be positive, got {t.learning_rate}.")
    if t.steps < 0 or t.epochs < 0 or t.batch_size < 1:
        raise ConfigError(f"{where}.train: steps and epochs must not be negative, batch_size at least 1.")
    if t.steps and t.epochs:
        raise ConfigError(
            f"{where}.train: give epochs (the length in passes over the training images) or steps (exact "
            f"minibatches, to reproduce a run), not both; got steps {t.steps} and epochs {t.epochs:g}."
        )
    if any(not 0 < f < 1 for f in t.lr_drops) or list(t.lr_drops) != sorted(t.lr_drops):
        raise ConfigError(f"{where}.train.lr_drops: increasing fractions of the steps in (0, 1), e.g. [0.84, 0.95].")
    if t.optimizer not in ("sgd", "adam"):
        raise ConfigError(f"{where}.train.optimizer: 'sgd' or 'adam', got '{t.optimizer}'.")
    p = s.pseudo_label
    if p.fraction and not (0 < p.fraction < 1 and p.shards >= 2 and 0 <= p.shard < p.shards):
        raise ConfigError(
            f"{where}.pseudo_label: fraction must be in (0, 1) and shard in [0, shards) with shards >= 2; got "
            f"fraction {p.fraction}, shard {p.shard} of {p.shards} (pseudo_labels.shards sets the count)."
        )
    kind, _, number = s.split.partition("_")
    if s.split != "valid" and not (kind in ("bag", "fold") and number.isdigit()):
        raise ConfigError(f"{where}.split: 'valid', 'bag_<seed>' or 'fold_<k>', got '{s.split}'.")
