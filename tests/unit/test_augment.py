"""Affine transforms: the composed matrix equals the separate steps; the centre view rescales the largest side."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deepsea.data.augment import (
    AffineParams,
    AugmentationRanges,
    background_level,
    compose_affine,
    sample_params,
    view,
)


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
    level = background_level(image)  # noise all over: its own border median is the zero of its ink
    np.testing.assert_allclose(rotated, 1.0 - np.rot90(image, 1) / level, atol=1e-6)


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


def _original_view(image: np.ndarray, size: int, p: AffineParams) -> np.ndarray:
    """The warp and ink before background levels (white fill, 1 - pixel / 255), written out independently."""
    m = compose_affine(image.shape[0], image.shape[1], size, p)
    warped = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=255).astype(np.float32)
    return warped * np.float32(-1.0 / 255.0) + np.float32(1.0)


@pytest.mark.parametrize("level", [40, 128, 200, 255])
@pytest.mark.parametrize("rotation", [0.0, 17.0, 45.0, 90.0, 233.0])
def test_a_constant_background_warps_to_constant_zero_ink(level: int, rotation: float) -> None:
    """Whatever the background level and the angle, an empty image stays empty: no frame of another gray."""
    image = np.full((23, 37), level, np.uint8)
    p = AffineParams(rotation=rotation, zoom=0.7, shear=10.0, shift_x=3.0)
    np.testing.assert_array_equal(view(image, 31, p), np.zeros((31, 31), np.float32))


def test_white_background_images_warp_exactly_as_before() -> None:
    """A white (255) border: the original's warps and ink to the bit (the plankton convention is unchanged)."""
    rng = np.random.default_rng(0)
    image = np.full((40, 30), 255, np.uint8)
    image[8:32, 6:24] = rng.integers(0, 200, (24, 18))
    for k in range(20):
        p = sample_params(AugmentationRanges(), np.random.default_rng(k))
        assert view(image, 25, p).tobytes() == _original_view(image, 25, p).tobytes()


def test_the_same_organism_on_grey_and_on_white_looks_alike() -> None:
    """Transmitted light: pixel = background x transmission. On a 150 and a 255 background the ink is the same
    (up to the 8-bit rounding of the grey image), including where the augmentation pads the border."""
    rng = np.random.default_rng(1)
    transmission = np.ones((40, 40))
    transmission[10:30, 12:28] = rng.uniform(0.2, 0.9, (20, 16))
    white, grey = (np.round(level * transmission).astype(np.uint8) for level in (255, 150))
    p = AffineParams(rotation=30.0, zoom=0.8)
    np.testing.assert_allclose(view(grey, 31, p), view(white, 31, p), atol=1.0 / 150 + 1e-6)
    old = _original_view(grey, 31, p)
    assert old.max() - old[0, 0] > 0 and abs(old[0, 0]) < 1e-6  # before: the padding was 0 ink, the grey 0.41
    assert np.abs(old - view(white, 31, p)).max() > 0.3
