"""Handcrafted features checked against geometry and against scikit-image, and bad images filled and reported."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from deepsea.data.features import FeatureSettings, extract_features, haralick_features, moment_features
from deepsea.data.imageset import ImageSet
from deepsea.errors import ConfigError


@pytest.mark.parametrize(("a", "b", "angle"), [(30, 12, 30), (20, 15, -50), (40, 8, 90)])
def test_moments_of_an_ellipse_recover_axes_and_orientation(a: int, b: int, angle: float) -> None:
    image = np.full((120, 140), 255, np.uint8)
    cv2.ellipse(image, (75, 60), (a, b), angle, 0, 360, 0, -1)  # dark filled ellipse, semi-axes a, b
    m = moment_features(image, FeatureSettings())
    # cv2 fills the boundary pixels too, so a rasterised axis spans 2a + 1 pixels
    assert m["major_axis"] == pytest.approx(2 * a + 1, abs=0.8)
    assert m["minor_axis"] == pytest.approx(2 * b + 1, abs=0.8)
    orientation = math.degrees(m["orientation"])
    assert min(abs(orientation - angle) % 180, 180 - abs(orientation - angle) % 180) < 1.5
    assert m["eccentricity"] == pytest.approx(math.sqrt(1 - ((2 * b + 1) / (2 * a + 1)) ** 2), abs=0.02)
    assert m["centroid_dx"] == pytest.approx(75 - 139 / 2, abs=0.3) and m["centroid_dy"] == pytest.approx(0.5, abs=0.3)


@pytest.mark.parametrize("levels", [8, 32])
def test_haralick_matches_scikit_image(levels: int) -> None:
    image = np.random.default_rng(levels).integers(0, 256, (40, 50)).astype(np.uint8)
    features = haralick_features(image, FeatureSettings(haralick_levels=levels))
    quantised = ((255 - image).astype(np.uint16) * levels // 256).astype(np.uint8)
    for d, angle in enumerate([0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]):  # mahotas' four directions
        glcm = graycomatrix(quantised, [1], [angle], levels=levels, symmetric=True, normed=True)
        assert features[f"haralick_contrast_d{d}"] == pytest.approx(graycoprops(glcm, "contrast")[0, 0], rel=1e-9)
        assert features[f"haralick_asm_d{d}"] == pytest.approx(graycoprops(glcm, "ASM")[0, 0], rel=1e-9)


def test_constant_and_blank_images_are_filled_and_reported(tmp_path: Path) -> None:
    organism = np.full((30, 40), 250, np.uint8)
    cv2.circle(organism, (20, 15), 8, 30, -1)
    constant = np.full((12, 12), 90, np.uint8)  # gray everywhere: Haralick is defined (finite), moments too
    blank = np.full((20, 20), 255, np.uint8)  # no ink at all: moments are undefined
    ImageSet.from_images([organism, constant, blank], ["ok.jpg", "gray.jpg", "blank.jpg"], [-1] * 3, []).save(
        tmp_path / "set.npz"
    )
    values = extract_features(tmp_path / "set.npz", tmp_path / "f.npz", tmp_path / "r.json", FeatureSettings())
    assert np.isfinite(values).all() and values.shape[0] == 3
    report = json.loads((tmp_path / "r.json").read_text())
    assert {(p["id"], p["group"]) for p in report["filled_with_zero"]} == {("blank.jpg", "moments")}
    with np.load(tmp_path / "f.npz") as f:
        names, ids = f["names"].tolist(), f["ids"].tolist()
    assert ids == ["ok.jpg", "gray.jpg", "blank.jpg"]
    assert values[2, names.index("major_axis")] == 0.0 and values[0, names.index("major_axis")] > 10
    assert values[0, names.index("height")] == 30 and values[0, names.index("width")] == 40
    assert len(names) == 4 + 13 + 65  # size, moments (6 + 7 nu), haralick (13 x 4 + 13 means)


def test_unknown_group_named(tmp_path: Path) -> None:
    ImageSet.from_images([np.zeros((4, 4), np.uint8)], ["a"], [-1], []).save(tmp_path / "s.npz")
    with pytest.raises(ConfigError, match=r"features.groups: unknown \['texture'\]"):
        extract_features(tmp_path / "s.npz", tmp_path / "f.npz", tmp_path / "r.json", FeatureSettings(("texture",)))


def test_all_optional_groups_run(tmp_path: Path, tiny_packed) -> None:
    groups = ("size", "moments", "haralick", "hu", "zernike", "lbp", "pftas")
    values = extract_features(
        tiny_packed["test"], tmp_path / "f.npz", tmp_path / "r.json", FeatureSettings(groups), workers=2, chunk=16
    )
    assert values.shape[0] == 40 and values.shape[1] > 150 and np.isfinite(values).all()
