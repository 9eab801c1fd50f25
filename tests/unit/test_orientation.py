"""The upright-images check (orientation.py): real upright data scores high, the same images at random angles score
chance, the thumbnail turns over exactly with its image (else chance would not be 0.5), and the warning appears only
when a config turns images over."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from deepsea.dag.summary import data_summary, orientation_summary, turns_images_over
from deepsea.data.augment import sample_params
from deepsea.data.orientation import (
    TURNS,
    UPRIGHT_TILT,
    OrientationCheck,
    check_orientation,
    decide_orientation,
    read_orientation,
    thumbnail,
    upright_warning,
)
from deepsea.errors import ConfigError, DeepseaError
from deepsea.inference.views import TTASettings, make_views, oriented_views
from deepsea.training.settings import ModelSettings


def _digits() -> tuple[list[np.ndarray], list[int]]:
    """scikit-learn's digits (real scans, 8 x 8, 10 classes) as pack stores them: dark ink on a light background."""
    digits = load_digits()
    return [255 - (x * 255 / 16).astype(np.uint8) for x in digits.images], digits.target.tolist()


def _turned_at_random(images: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Each image turned by a random multiple of 90 degrees, half of them mirrored: orientation carries nothing."""
    rng = np.random.default_rng(seed)
    return [np.ascontiguousarray(np.rot90(x[:, ::-1] if rng.random() < 0.5 else x, rng.integers(4))) for x in images]


def test_upright_digits_score_high_and_turned_digits_score_chance() -> None:
    images, labels = _digits()
    upright = check_orientation(images, labels)
    assert upright.images == len(images) and upright.score > 0.85 and upright.looks_upright
    turned = check_orientation(_turned_at_random(images), labels)
    assert abs(turned.score - 0.5) < 0.05 and not turned.looks_upright


@pytest.mark.parametrize("shape", [(7, 13), (400, 31), (8, 8), (5, 3), (17, 212), (1, 1), (2, 50)])
def test_thumbnail_turns_over_exactly_with_its_image(shape: tuple[int, int]) -> None:
    image = np.random.default_rng(1).integers(0, 256, shape).astype(np.uint8)
    for turn in TURNS:
        np.testing.assert_array_equal(thumbnail(np.ascontiguousarray(turn(image))), turn(thumbnail(image)))
    assert thumbnail(image).shape == (16, 16)


def test_flat_images_and_singleton_classes_say_nothing() -> None:
    flat = [np.full((10, 12), 200, np.uint8) for _ in range(60)]
    check = check_orientation(flat, [i % 3 for i in range(60)])
    assert check.score == 0.5 and not check.looks_upright  # every comparison a tie
    alone = check_orientation([np.eye(9, dtype=np.uint8) * 255] * 3, [0, 1, 2])  # one image per class
    assert alone.images == 0 and not alone.looks_upright


def test_what_turns_images_over() -> None:
    default = {"augmentation": {"rotation": 360.0, "flip": True}}
    runs = {
        "cr4_ds": {"architecture": "cr4_ds", **default},
        "plain": {"architecture": "plain", **default},
        "upright_plain": {"architecture": "plain", "augmentation": {"rotation": 10.0, "flip": False}},
    }
    found = turns_images_over(runs, {"rotation": 360.0, "flip": True})
    assert [f.split(" ")[0] for f in found] == ["cr4_ds", "plain's", "the"]
    assert turns_images_over({"p": runs["upright_plain"]}, {"rotation": 10.0, "flip": False}) == []


def test_warning_only_for_upright_images_under_a_config_that_turns_them(tmp_path: Path) -> None:
    upright, chance = OrientationCheck(0.92, 1797), OrientationCheck(0.52, 1797)
    assert upright_warning(upright, []) is None and upright_warning(chance, ["x"]) is None
    assert upright_warning(OrientationCheck(0.95, 20), ["x"]) is None  # too few images to say
    warning = upright_warning(upright, ["cr4_ds is rotation-invariant (cr4_ds)", "y"])
    assert warning and "92% of 1797" in warning and ", and 1 more)" in warning
    assert "data.orientation: auto or upright" in warning
    report = {"subset": "train", "n_images": 1797, "per_class": {str(k): 1 for k in range(10)}, "min_side": 8,
              "max_side": 8, "skipped": [], "converted": {}, "upright_score": 0.92, "upright_images": 1797}  # fmt: skip
    (tmp_path / "train_report.json").write_text(json.dumps(report))
    [_, line] = data_summary([tmp_path / "train_report.json"], ["plain's augmentation flips or turns the images"])
    assert "WARNING the training images look upright" in line
    [_, line] = data_summary([tmp_path / "train_report.json"], [])
    assert "WARNING" not in line


def test_pack_reports_the_training_images_orientation(tiny_packed: dict[str, Path]) -> None:
    train = json.loads(tiny_packed["train"].with_name("train_report.json").read_text())
    assert train["upright_images"] == 160 and 0.4 < train["upright_score"] < 0.6  # the demo: random angles
    test = json.loads(tiny_packed["test"].with_name("test_report.json").read_text())
    assert test["upright_score"] is None  # no labels, no classes to compare with


UPRIGHT, CHANCE = OrientationCheck(0.92, 1400), OrientationCheck(0.53, 800)


@pytest.mark.parametrize(
    "setting, mirror, check, upright, mirrored",
    [
        ("auto", "auto", UPRIGHT, True, False),  # digits: tilted only, never mirrored
        ("auto", "auto", CHANCE, False, True),  # the demo: as before
        ("auto", "auto", None, False, True),  # no measurement (too few labels): as before
        ("auto", "auto", OrientationCheck(0.95, 20), False, True),  # too few images to say
        ("free", "auto", UPRIGHT, False, True),  # the config overrides the measurement either way
        ("upright", "auto", CHANCE, True, False),
        ("auto", "allowed", UPRIGHT, True, True),  # upright animals: a mirrored one is the same animal
        ("auto", "forbidden", CHANCE, False, False),  # free, chiral: turned to any angle, never mirrored
    ],
)
def test_orientation_decision(setting: str, mirror: str, check, upright: bool, mirrored: bool) -> None:
    orientation = decide_orientation(setting, mirror, check)
    assert (orientation.upright, orientation.mirror) == (upright, mirrored)
    rotation, flip = orientation.limit(360.0, True)
    assert rotation == (UPRIGHT_TILT if upright else 360.0) and flip == mirrored
    assert orientation.limit(4.0, False) == (4.0, False)  # never widens a range
    line = orientation.describe()
    assert line.startswith(f"orientation {'upright' if upright else 'free'} (")
    assert f"set data.orientation: {'free' if upright else 'upright'}" in line
    if setting == "auto" and check is not None:
        assert f"{check.score:.0%} of {check.images}" in line


def test_bad_orientation_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.orientation 'sideways'"):
        decide_orientation("sideways", "auto", None)
    with pytest.raises(ConfigError, match="--pack-report"):
        read_orientation("auto", "auto", None)
    (tmp_path / "report.json").write_text(json.dumps({"upright_score": "high", "upright_images": 3}))
    with pytest.raises(DeepseaError, match="report.json: no readable upright_score"):
        read_orientation("auto", "auto", tmp_path / "report.json")


def test_free_images_keep_their_settings_and_upright_ones_never_turn_over() -> None:
    """Free: the very same settings objects' values (so the demo's bytes cannot move); upright: no view or
    augmentation draw turns an image by UPRIGHT_TILT or more or mirrors it, whatever the method."""
    free, upright = decide_orientation("auto", "auto", CHANCE), decide_orientation("auto", "auto", UPRIGHT)
    settings = ModelSettings(name="m")
    assert settings.with_orientation(free) is settings
    limited = settings.with_orientation(upright).augmentation
    assert (limited.rotation, limited.flip) == (UPRIGHT_TILT, False)
    rng = np.random.default_rng(0)
    draws = [sample_params(limited, rng) for _ in range(500)]
    assert all(0 <= d.rotation < UPRIGHT_TILT and not d.flip for d in draws)
    for method in ("halton", "random", "grid"):
        views = TTASettings(method=method, views=70)
        assert make_views(oriented_views(views, free)) == make_views(views)
        turned = make_views(oriented_views(views, upright))
        assert turned and all(0 <= v.rotation < UPRIGHT_TILT and not v.flip for v in turned)


def test_closing_summary_opens_with_the_decision(tmp_path: Path) -> None:
    models = {"plain": {"architecture": "plain"}, "cr4_ds": {"architecture": "cr4_ds"}}
    auto = {"orientation": "auto", "mirror": "auto"}
    report = tmp_path / "train_report.json"
    assert orientation_summary(auto, models, report) == []  # not packed yet: nothing to say
    report.write_text(json.dumps({"upright_score": 0.92, "upright_images": 1400}))
    first, second = orientation_summary(auto, models, report)
    assert first.startswith("deepsea: orientation upright (data.orientation auto: 92% of 1400 training images")
    assert second.startswith("deepsea: cr4_ds are rotation-invariant") and "upright.yaml" in second
    assert orientation_summary(auto, {"plain": models["plain"]}, report) == [first]
    [forced] = orientation_summary({"orientation": "free", "mirror": "auto"}, models, report)
    assert forced.startswith("deepsea: orientation free (data.orientation: free)")
