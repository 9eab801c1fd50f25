"""The training length: `train.epochs` follows the data, `train.steps` reproduces a run exactly, never both."""

from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import train_tiny
from deepsea.data.imageset import ImageSet
from deepsea.data.splits import Split
from deepsea.errors import ConfigError
from deepsea.io import read_json
from deepsea.training.model_file import load_model
from deepsea.training.settings import (
    DEFAULT_EPOCHS,
    DEFAULT_MIN_STEPS,
    ModelSettings,
    TrainSettings,
    load_model_settings,
)


def _settings(**train: float) -> ModelSettings:
    return load_model_settings(json.dumps({"name": "m", "train": train}))


_RNG = np.random.default_rng(0)
_CASES = [
    (float(_RNG.uniform(0.1, 500)), int(_RNG.integers(1, 100_000)), int(_RNG.integers(1, 256))) for _ in range(50)
]


@pytest.mark.parametrize(("epochs", "images", "batch"), _CASES)
def test_epochs_become_the_fewest_steps_that_pass_over_the_images_that_often(
    epochs: float, images: int, batch: int
) -> None:
    resolved = _settings(epochs=epochs, batch_size=batch, min_steps=0).with_steps(images).train
    assert resolved.steps * batch >= epochs * images  # at least that many passes ...
    assert (resolved.steps - 1) * batch < epochs * images or resolved.steps == 1  # ... and not a step more
    assert resolved.epochs == epochs  # the model file records what it was asked for
    floored = _settings(epochs=epochs, batch_size=batch).with_steps(images).train
    assert floored.steps == max(DEFAULT_MIN_STEPS, resolved.steps)  # the floor: a small set trains long enough


def test_the_demos_length_in_epochs_and_the_default() -> None:
    assert _settings(epochs=27).with_steps(720).train.steps == 608  # the demo: 720 training images, 32 a batch
    assert _settings().with_steps(720).train.steps == math.ceil(DEFAULT_EPOCHS * 720 / 32)  # neither given
    assert _settings(epochs=27).with_steps(70).train.steps == DEFAULT_MIN_STEPS  # a small set: the floor


def test_steps_stay_steps_whatever_the_data() -> None:
    settings = _settings(steps=600)
    assert settings.with_steps(10) is settings and settings.with_steps(100_000) is settings


def test_steps_and_epochs_together_are_refused_by_key() -> None:
    with pytest.raises(ConfigError, match=r"models\.m\.train: give epochs .* or steps .*not both"):
        _settings(steps=600, epochs=27)


def test_a_steps_config_is_serialised_as_before_epochs_existed() -> None:
    """The settings a model file stores, for a config that says steps, are byte for byte those of the version
    before `epochs` (sha256 computed there), so such a config trains byte-identical model files (docs/results.md:
    checked on a trained model too)."""
    text = _settings(steps=40).to_json()
    assert "epochs" not in json.loads(text)["train"]
    assert hashlib.sha256(text.encode()).hexdigest() == (
        "0a54067ea72fac7f20f299d5ea882cbfb5f83a5f838a5688b7a19f355024208f"
    )
    assert set(TrainSettings().__dataclass_fields__) - set(json.loads(text)["train"]) == {"epochs", "min_steps"}


def test_a_model_trained_for_epochs_records_its_steps(tiny_packed, tmp_path: Path) -> None:
    split = Split.from_json(read_json(tiny_packed["split"]), "split")
    n_train = len(split.train_ids)
    settings = {
        "name": "m",
        "architecture": "plain",
        "input_size": 16,
        "params": {"widths": [4, 8], "dense": 8},
        "train": {"epochs": 2.5, "min_steps": 0, "batch_size": 16, "workers": 0, "eval_every": 5},
    }
    model_path = train_tiny(settings, tiny_packed, tmp_path)
    _, trained, _, _ = load_model(model_path, "cpu")
    assert trained.train.steps == math.ceil(2.5 * n_train / 16) and trained.train.epochs == 2.5
    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert int(rows[-1]["step"]) == trained.train.steps
    assert float(rows[-1]["epoch"]) == pytest.approx(trained.train.steps * 16 / n_train, abs=0.01)
    assert len(ImageSet.load(tiny_packed["train"])) > n_train  # the validation images are not counted
