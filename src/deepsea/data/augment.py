"""Affine preprocessing and augmentation: ONE transform per image, applied with OpenCV.

The Deep Sea documentation (section 3.1) combined the rescale (largest side -> input size) and the random augmentation
into a single affine transform, so each image is interpolated once. `compose_affine` builds that 2x3 matrix; the same
function serves training augmentation, the centre view (all parameters neutral) and test-time augmentation views, so
there is no second implementation to drift.

Images are warped as they are, the border filled with the image's own background level, and then turned into "ink":
1 - pixel / background, so the background is 0 ink and padding, zero-mean normalisation and rotations all agree on
what is background. The level is measured per image as `pack` measures it (the median of its outermost pixels): a
grey-background instrument's image then looks to the nets like a white-background one of the same organism (light
is absorbed in proportion, pixel = background x transmission), and no white frame moves with every augmentation and
test-time view. A white (255) background gives exactly the original's warps and ink (1 - pixel / 255).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from deepsea.data.images import background_level

WHITE = 255  # the plankton convention: dark organisms on a white background


@dataclass(frozen=True)
class AugmentationRanges:
    """Ranges of the random affine augmentation applied to every training image (the Deep Sea documentation,
    section 3.1)."""

    rotation: float = 360.0  # degrees, uniform in [0, rotation)
    translation: float = 10.0  # pixels of the network input, uniform in [-t, t] per axis
    zoom: float = 1.6  # log-uniform in [1/zoom, zoom]
    shear: float = 20.0  # degrees, uniform in [-shear, shear]
    stretch: float = 1.3  # log-uniform in [1/stretch, stretch]; x is multiplied, y divided
    flip: bool = True  # mirror with probability 1/2


@dataclass(frozen=True)
class AffineParams:
    """One view of an image. Neutral values give the plain rescaled, centred image."""

    rotation: float = 0.0  # degrees, counter-clockwise
    shift_x: float = 0.0  # pixels of the output
    shift_y: float = 0.0
    zoom: float = 1.0  # > 1 enlarges
    shear: float = 0.0  # degrees
    stretch: float = 1.0  # x scaled by stretch, y by 1 / stretch
    flip: bool = False  # mirror left-right (before rotation)


CENTRE_VIEW = AffineParams()


@dataclass(frozen=True)
class InputSpec:
    """One network input: its size and how the image is scaled into it.

    `fixed_scale=None` rescales the largest side to `size` (most models); a number f shrinks every image by the
    same factor f instead, so the input keeps the organism's absolute size (the multiscale models' second stream).
    `rotations` adds channels: the same view turned by further angles, in the same single warp (the original cp8
    model saw every image at 0 and 45 degrees).
    """

    size: int
    fixed_scale: float | None = None
    rotations: tuple[float, ...] = (0.0,)  # one channel per angle: the same view turned further (cp8: 0 and 45)


def sample_params(ranges: AugmentationRanges, rng: np.random.Generator) -> AffineParams:
    """Draw one random augmentation from `ranges` (uniform / log-uniform / Bernoulli, as in the Deep Sea
    documentation)."""
    return AffineParams(
        rotation=float(rng.uniform(0.0, ranges.rotation)),
        shift_x=float(rng.uniform(-ranges.translation, ranges.translation)),
        shift_y=float(rng.uniform(-ranges.translation, ranges.translation)),
        zoom=float(np.exp(rng.uniform(-np.log(ranges.zoom), np.log(ranges.zoom)))),
        shear=float(rng.uniform(-ranges.shear, ranges.shear)),
        stretch=float(np.exp(rng.uniform(-np.log(ranges.stretch), np.log(ranges.stretch)))),
        flip=bool(ranges.flip and rng.random() < 0.5),
    )


def _translation(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _diagonal(sx: float, sy: float) -> np.ndarray:
    return np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])  # np.diag's general path is 3x slower


@functools.lru_cache(maxsize=1024)
def augmentation_matrix(p: AffineParams) -> np.ndarray:
    """3x3 matrix of the augmentation alone, about the origin: shift . rotate . shear . scale . flip.

    Cached (read-only result): test-time augmentation warps every image under the same few views, and building the
    matrix took more time than the warp itself (30 of 50 us per 32 px view, profiled)."""
    flip = _diagonal(-1.0 if p.flip else 1.0, 1.0)
    scale = _diagonal(p.zoom * p.stretch, p.zoom / p.stretch)
    shear = np.array([[1.0, math.tan(math.radians(p.shear)), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    a = math.radians(p.rotation)
    # Image rows grow downwards, so a counter-clockwise turn on screen has -sin in the top row's y term flipped.
    rotate = np.array([[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    matrix = _translation(p.shift_x, p.shift_y) @ rotate @ shear @ scale @ flip
    matrix.flags.writeable = False
    return matrix


def compose_affine(
    height: int, width: int, size: int, p: AffineParams = CENTRE_VIEW, fixed_scale: float | None = None
) -> np.ndarray:
    """2x3 matrix mapping source pixel coordinates to output coordinates of a `size` x `size` view.

    Steps (right to left): move the source centre to the origin, rescale (largest side to `size`, or by
    1 / `fixed_scale`), apply the augmentation, move the origin to the output centre.
    """
    rescale = size / max(height, width) if fixed_scale is None else 1.0 / fixed_scale
    to_origin = _translation(-(width - 1) / 2.0, -(height - 1) / 2.0)
    to_output = _translation((size - 1) / 2.0, (size - 1) / 2.0)
    m = to_output @ augmentation_matrix(p) @ _diagonal(rescale, rescale) @ to_origin
    return m[:2]


def warp_uint8(image: np.ndarray, matrix: np.ndarray, size: int, background: int = WHITE) -> np.ndarray:
    """Apply a 2x3 matrix to a uint8 gray image, the border filled with `background`. Returns uint8 (size, size)."""
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=background
    )


def to_ink(warped: np.ndarray, background: int | np.ndarray = WHITE) -> np.ndarray:
    """uint8 gray (any shape, e.g. a stacked batch) -> float32 ink, 1 - pixel / background (background 0).

    `background`: one level, or one per image of a batch (shape (B,), broadcast over the rest). Done once per
    batch rather than per image: for small inputs numpy's per-call overhead costs more than the warp itself (see
    benchmarks/augment.py). For 255 the float32 arithmetic is the original's to the bit."""
    ink = warped.astype(np.float32)
    scale = (-1.0 / np.asarray(background, dtype=np.float64)).astype(np.float32)
    ink *= scale.reshape(scale.shape + (1,) * (ink.ndim - scale.ndim))
    ink += 1.0
    return ink


def view_uint8(
    image: np.ndarray,
    size: int,
    p: AffineParams = CENTRE_VIEW,
    fixed_scale: float | None = None,
    background: int | None = None,
) -> np.ndarray:
    """`image` rescaled into a `size` x `size` input and transformed by `p` in a single interpolation (uint8), the
    border filled with `background` (default: the image's own, `background_level`)."""
    level = background_level(image) if background is None else background
    return warp_uint8(image, compose_affine(image.shape[0], image.shape[1], size, p, fixed_scale), size, level)


def view(image: np.ndarray, size: int, p: AffineParams = CENTRE_VIEW, fixed_scale: float | None = None) -> np.ndarray:
    """`view_uint8` as float32 ink, its own background level as zero ink."""
    level = background_level(image)
    return to_ink(view_uint8(image, size, p, fixed_scale, level), level)
