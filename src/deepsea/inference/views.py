"""Test-time augmentation views: a quasi-random (Halton) tiling of the augmentation space (the Deep Sea
documentation, section 3.4.1).

The original predicted every image under 70 affine views and averaged the probabilities; the views were a Halton
point set in the unit cube, one dimension per augmentation parameter, mapped through inverse CDFs to ranges more
modest than in training. This module makes those views (and two alternatives to compare: a fixed grid of
rotations x zooms x flips as in Dieleman's Galaxy Zoo solution, and plain random views). Views depend only on the
settings, so they are the same for every image and every model, and they are saved next to the predictions.

Dimensions, in this order: translation x, translation y, rotation, shear, flip, log-zoom, log-stretch.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, replace

import ghalton
import numpy as np
from scipy.special import ndtri

from deepsea.data.augment import AffineParams
from deepsea.data.orientation import Orientation
from deepsea.errors import ConfigError
from deepsea.means import MEANS

DIMENSIONS = ("shift_x", "shift_y", "rotation", "shear", "flip", "zoom", "stretch")


@dataclass(frozen=True)
class TTASettings:
    """How predictions are averaged over views. The defaults are config.yaml's `tta:` (the schema's too, by a test);
    the ranges are the original's test-time ranges, its 70 views, arithmetic mean and 8 px shifts (of a 95 px
    input) are `ORIGINAL_TTA`."""

    method: str = "halton"  # halton | grid | random | centre
    views: int = 35  # halton and random (the original: 70; its 8-way cp8 model used 35)
    seed: int = 0  # halton: 0 = the plain Halton sequence, else a generalized (scrambled) Halton; random: RNG seed
    mean: str = "geometric"  # arithmetic | geometric | logit: how the views' predictions are averaged
    translation: float = 2.0  # pixels of the network input, uniform in [-t, t] (or normal, clipped to it)
    translation_distribution: str = "uniform"  # uniform | normal (std t / 2, clipped to [-t, t])
    rotation: float = 360.0  # degrees, uniform in [0, rotation)
    shear: float = 10.0  # degrees, uniform in [-shear, shear]
    zoom: float = 1.4  # log-uniform in [1/zoom, zoom]
    stretch: float = 1.2  # log-uniform in [1/stretch, stretch]
    flip: bool = True  # flip when the sample > 0.5
    grid_rotations: int = 8  # grid: evenly spaced angles ...
    grid_zooms: tuple[float, ...] = (1.0 / 1.2, 1.0, 1.2)  # ... x these zooms x (no flip, flip)
    chunk_images: int = 32  # images whose views are predicted together (memory: chunk x views inputs)


ORIGINAL_TTA = TTASettings(views=70, mean="arithmetic", translation=8.0)  # Deep Sea's (documentation, 3.4.1)
# `deepsea predict` without test-time views: the centre view alone, a snapshot ensemble's networks averaged as
# predict_views averages every centre view (arithmetically)
CENTRE_ONLY = TTASettings(method="centre", mean="arithmetic")

# ------------------------------------------------------------------------------- inverse CDFs of [0, 1] samples


def icdf_uniform(u: np.ndarray, low: float, high: float) -> np.ndarray:
    return low + np.asarray(u) * (high - low)


def icdf_log_uniform(u: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.exp(icdf_uniform(u, np.log(low), np.log(high)))


def icdf_normal(u: np.ndarray, mean: float, std: float, low: float, high: float) -> np.ndarray:
    """Normal quantiles, clipped to [low, high] (u = 0 or 1 would be infinite)."""
    return np.clip(mean + std * ndtri(np.clip(np.asarray(u), 1e-12, 1 - 1e-12)), low, high)


def icdf_bernoulli(u: np.ndarray, p: float = 0.5) -> np.ndarray:
    """True with probability p: when the sample exceeds 1 - p (the original: flip when the sample > 0.5)."""
    return np.asarray(u) > 1.0 - p


# ----------------------------------------------------------------------------------------------------- views


def unit_points(settings: TTASettings) -> np.ndarray:
    """(views, 7) points in [0, 1): Halton (plain or generalized) or pseudo-random."""
    dim = len(DIMENSIONS)
    if settings.method == "halton":
        sequence = ghalton.Halton(dim) if settings.seed == 0 else ghalton.GeneralizedHalton(dim, settings.seed)
        return np.array(sequence.get(settings.views), dtype=np.float64)
    if settings.method == "random":
        return np.random.default_rng(settings.seed).random((settings.views, dim))
    raise ConfigError(f"tta.method: unit points exist for 'halton' and 'random', not '{settings.method}'.")


def points_to_views(points: np.ndarray, s: TTASettings) -> list[AffineParams]:
    """Map unit-cube points to affine views through the inverse CDFs of the configured ranges."""
    columns = dict(zip(DIMENSIONS, points.T, strict=True))
    if s.translation_distribution == "normal":
        shift_x = icdf_normal(columns["shift_x"], 0.0, s.translation / 2, -s.translation, s.translation)
        shift_y = icdf_normal(columns["shift_y"], 0.0, s.translation / 2, -s.translation, s.translation)
    else:
        shift_x = icdf_uniform(columns["shift_x"], -s.translation, s.translation)
        shift_y = icdf_uniform(columns["shift_y"], -s.translation, s.translation)
    rotation = icdf_uniform(columns["rotation"], 0.0, s.rotation)
    shear = icdf_uniform(columns["shear"], -s.shear, s.shear)
    flip = icdf_bernoulli(columns["flip"]) & s.flip
    zoom = icdf_log_uniform(columns["zoom"], 1.0 / s.zoom, s.zoom)
    stretch = icdf_log_uniform(columns["stretch"], 1.0 / s.stretch, s.stretch)
    return [
        AffineParams(
            rotation=float(r),
            shift_x=float(x),
            shift_y=float(y),
            zoom=float(z),
            shear=float(h),
            stretch=float(t),
            flip=bool(f),
        )
        for x, y, r, h, f, z, t in zip(shift_x, shift_y, rotation, shear, flip, zoom, stretch, strict=True)
    ]


def grid_views(s: TTASettings) -> list[AffineParams]:
    """Every combination of evenly spaced rotations, the listed zooms and (if enabled) a flip (Dieleman's Galaxy
    Zoo solution)."""
    angles = [360.0 * k / s.grid_rotations for k in range(s.grid_rotations)]
    flips = (False, True) if s.flip else (False,)
    return [AffineParams(rotation=a, zoom=z, flip=f) for a, z, f in itertools.product(angles, s.grid_zooms, flips)]


def oriented_views(s: TTASettings, orientation: Orientation) -> TTASettings:
    """The view settings limited to `orientation` (data.orientation and data.mirror resolved for the training
    images: data/orientation.py): upright images are tilted, never turned over (a grid keeps its 0-degree views
    only), and mirrored only where allowed. Free images keep `s` as it is."""
    rotation, flip = orientation.limit(s.rotation, s.flip)
    grid_rotations = 1 if orientation.upright else s.grid_rotations
    return replace(s, rotation=rotation, flip=flip, grid_rotations=grid_rotations)


def make_views(s: TTASettings) -> list[AffineParams]:
    """The views of `s`, in a fixed order."""
    if s.mean not in MEANS:
        raise ConfigError(f"tta.mean: 'arithmetic', 'geometric' or 'logit', got '{s.mean}'.")
    if s.translation_distribution not in ("uniform", "normal"):
        raise ConfigError(f"tta.translation_distribution: 'uniform' or 'normal', got '{s.translation_distribution}'.")
    if s.method == "centre":
        return [AffineParams()]
    if s.method == "grid":
        return grid_views(s)
    if s.method not in ("halton", "random"):
        raise ConfigError(f"tta.method: 'halton', 'grid', 'random' or 'centre', got '{s.method}'.")
    if s.views < 1:
        raise ConfigError(f"tta.views: at least 1, got {s.views}.")
    return points_to_views(unit_points(s), s)


def views_to_json(views: list[AffineParams]) -> list[dict]:
    return [asdict(v) for v in views]
