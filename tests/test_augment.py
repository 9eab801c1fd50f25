"""Affine transforms: the composed matrix equals the separate steps; the centre view rescales the largest side."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deepsea.data.augment import AffineParams, AugmentationRanges, compose_affine, sample_params, view


def _apply(m: np.ndarray, x: float, y: float) -> np.ndarray:
    return m @ np.array([x, y, 1.0])


def test_centre_view_maps_centre_and_largest_side() -> None:
    m = compose_affine(height=50, width=100, size=32)
    np.testing.assert_allclose(_apply(m, 49.5, 24.5), [15.5, 15.5])  # centre -> centre
    np.testing.assert_allclose(_apply(m, 99, 24.5) - _apply(m, 0, 24.5), [99 * 32 / 100, 0])  # width -> size


def test_rotation_by_90_is_exact_transpose_flip() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (31, 31), dtype=np.uint8)
    rotated = view(image, 31, AffineParams(rotation=90))
    np.testing.assert_allclose(rotated, (255 - np.rot90(image, 1)) / 255.0, atol=1e-6)


def test_composed_equals_sequence_of_separate_transforms() -> None:
    """One warp with the composed matrix == rescale, then rotate/zoom with OpenCV's own matrix, then shift."""
    image = np.full((40, 80), 255, np.uint8)
    cv2.ellipse(image, (30, 20), (20, 8), 15, 0, 360, 0, -1)
    cv2.circle(image, (60, 12), 5, 60, -1)
    size = 64
    p = AffineParams(rotation=30.0, zoom=1.25, shift_x=3.0, shift_y=-2.0)
    composed = view(image, size, p)
    # the same thing step by step, each step a separate transform with OpenCV's helpers
    rescaled = view(image, size)  # ink, largest side -> size
    c = (size - 1) / 2.0
    rot = cv2.getRotationMatrix2D((c, c), 30.0, 1.25)  # OpenCV: counter-clockwise, about the centre
    rot[:, 2] += [3.0, -2.0]
    stepwise = cv2.warpAffine(rescaled, rot, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    # two interpolations vs one: compare where both are away from edges, with a loose tolerance
    assert np.abs(composed - stepwise).mean() < 0.01
    assert np.corrcoef(composed.ravel(), stepwise.ravel())[0, 1] > 0.98


def test_flip_and_stretch() -> None:
    m = compose_affine(10, 10, 10, AffineParams(flip=True))
    np.testing.assert_allclose(_apply(m, 0, 4.5), [9, 4.5])
    m = compose_affine(10, 10, 10, AffineParams(stretch=2.0))
    np.testing.assert_allclose(_apply(m, 9, 9) - _apply(m, 0, 0), [18, 4.5])


def test_sampled_params_stay_in_ranges() -> None:
    ranges = AugmentationRanges()
    rng = np.random.default_rng(1)
    draws = [sample_params(ranges, rng) for _ in range(2000)]
    assert all(0 <= d.rotation < 360 and abs(d.shift_x) <= 10 and abs(d.shear) <= 20 for d in draws)
    assert all(1 / 1.6 <= d.zoom <= 1.6 and 1 / 1.3 <= d.stretch <= 1.3 for d in draws)
    assert 0.45 < np.mean([d.flip for d in draws]) < 0.55
    assert np.median([np.log(d.zoom) for d in draws]) == pytest.approx(0, abs=0.05)
