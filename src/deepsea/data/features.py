"""`deepsea extract-features`: handcrafted features of the raw (not rescaled) images (the Deep Sea documentation,
section 3.2.6).

The convnets see size-normalised images; these features keep what the rescaling hides and texture statistics a
small network learns slowly. Groups (config `features.groups`):

- `size`: image height and width, organism area (pixels darker than an Otsu threshold) and ink mass.
- `moments` (the original's "momentsinfo"): from intensity-weighted image moments of the ink (255 - pixel): the
  centroid's offset from the image centre (absolute x and y), orientation, major and minor axis length (4 sqrt of
  the covariance eigenvalues: 2a and 2b for a filled ellipse with semi-axes a, b), eccentricity, and the 7
  normalised central moments nu_pq (2 <= p + q <= 3).
- `haralick`: mahotas' 13 Haralick texture features in each of 4 directions (52) and their mean over directions
  (13), on the image quantised to `haralick_levels` grey levels (fewer levels: ~10x faster at 32 than at 256).
- options: `hu` (OpenCV's 7 Hu invariants), `zernike` (mahotas, degree 8), `lbp` (mahotas, radius 2, 8 points),
  `pftas` (mahotas threshold adjacency statistics).

A feature that cannot be computed for an image (an image without ink has no centroid or orientation; Haralick of a
constant image divides by zero) is reported by image id in the report and filled with 0; NaN or inf never reaches
the output. Images are processed in parallel chunks by a process pool, with a progress bar.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import cv2
import mahotas
import numpy as np
from tqdm import tqdm

from deepsea.data.imageset import ImageSet
from deepsea.errors import ConfigError
from deepsea.io import write_json, write_npz

log = logging.getLogger(__name__)

HARALICK_NAMES = (
    "asm",
    "contrast",
    "correlation",
    "variance",
    "idm",
    "sum_avg",
    "sum_var",
    "sum_entropy",
    "entropy",
    "diff_var",
    "diff_entropy",
    "imc1",
    "imc2",
)
NU_ORDERS = ((2, 0), (1, 1), (0, 2), (3, 0), (2, 1), (1, 2), (0, 3))


@dataclass(frozen=True)
class FeatureSettings:
    groups: tuple[str, ...] = ("size", "moments", "haralick")
    haralick_levels: int = 32


def size_features(image: np.ndarray, _: FeatureSettings) -> dict[str, float]:
    ink = 255 - image.astype(np.int32)
    if image.min() == image.max():
        area = 0.0
    else:
        threshold, _mask = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        area = float((image <= threshold).sum())
    return {
        "height": float(image.shape[0]),
        "width": float(image.shape[1]),
        "area": area,
        "ink_mass": float(ink.sum()) / 255.0,
    }


def moment_features(image: np.ndarray, _: FeatureSettings) -> dict[str, float]:
    ink = 255.0 - image.astype(np.float64)
    m = cv2.moments(ink.astype(np.float32))
    if m["m00"] <= 0:
        raise ValueError("no ink: the image is blank, moments are undefined")
    cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    cov = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / m["m00"]
    small, large = np.clip(np.linalg.eigvalsh(cov), 0.0, None)
    orientation = 0.5 * math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"])  # radians, image coordinates (y down)
    features = {
        "centroid_dx": abs(cx - (image.shape[1] - 1) / 2.0),
        "centroid_dy": abs(cy - (image.shape[0] - 1) / 2.0),
        "orientation": orientation,
        "major_axis": 4.0 * math.sqrt(large),
        "minor_axis": 4.0 * math.sqrt(small),
        "eccentricity": math.sqrt(1.0 - small / large) if large > 0 else 0.0,
    }
    features.update({f"nu{p}{q}": m[f"nu{p}{q}"] for p, q in NU_ORDERS})
    return features


def haralick_features(image: np.ndarray, s: FeatureSettings) -> dict[str, float]:
    ink = 255 - image
    quantised = (ink.astype(np.uint16) * s.haralick_levels // 256).astype(np.uint8)
    with np.errstate(all="ignore"):
        table = mahotas.features.haralick(quantised, ignore_zeros=False)  # (4 directions, 13)
    if not np.isfinite(table).all():
        raise ValueError("Haralick features undefined (e.g. a constant image)")
    features = {f"haralick_{name}_d{d}": float(table[d, k]) for d in range(4) for k, name in enumerate(HARALICK_NAMES)}
    features.update({f"haralick_{name}_mean": float(table[:, k].mean()) for k, name in enumerate(HARALICK_NAMES)})
    return features


def hu_features(image: np.ndarray, _: FeatureSettings) -> dict[str, float]:
    hu = cv2.HuMoments(cv2.moments((255 - image).astype(np.float32))).ravel()
    return {f"hu{i}": float(v) for i, v in enumerate(hu)}


def zernike_features(image: np.ndarray, _: FeatureSettings) -> dict[str, float]:
    ink = 255 - image
    values = mahotas.features.zernike_moments(ink, radius=max(ink.shape) / 2, degree=8)
    return {f"zernike{i}": float(v) for i, v in enumerate(values)}


def lbp_features(image: np.ndarray, _: FeatureSettings) -> dict[str, float]:
    values = mahotas.features.lbp(image, radius=2, points=8)
    values = values / max(values.sum(), 1.0)
    return {f"lbp{i}": float(v) for i, v in enumerate(values)}


def pftas_features(image: np.ndarray, _: FeatureSettings) -> dict[str, float]:
    return {f"pftas{i}": float(v) for i, v in enumerate(mahotas.features.pftas(255 - image))}


GROUPS: dict[str, Callable[[np.ndarray, FeatureSettings], dict[str, float]]] = {
    "size": size_features,
    "moments": moment_features,
    "haralick": haralick_features,
    "hu": hu_features,
    "zernike": zernike_features,
    "lbp": lbp_features,
    "pftas": pftas_features,
}


def _reference_names(settings: FeatureSettings) -> dict[str, list[str]]:
    """Feature names per group, taken from a synthetic image on which every group is defined."""
    probe = np.full((24, 32), 240, np.uint8)
    cv2.ellipse(probe, (16, 12), (9, 5), 20, 0, 360, 40, -1)
    probe[10:14, 12:20] = 120
    return {group: list(GROUPS[group](probe, settings)) for group in settings.groups}


def _chunk_features(args: tuple[list[np.ndarray], FeatureSettings, dict[str, list[str]]]):
    images, settings, names = args
    rows, problems = [], []
    for position, image in enumerate(images):
        row: list[float] = []
        for group in settings.groups:
            try:
                computed = GROUPS[group](image, settings)
                values = [computed[name] for name in names[group]]
                if not all(math.isfinite(v) for v in values):
                    values = [v if math.isfinite(v) else 0.0 for v in values]
                    problems.append((position, group, "non-finite values set to 0"))
                row += values
            except (ValueError, ZeroDivisionError, cv2.error) as err:
                row += [0.0] * len(names[group])
                problems.append((position, group, str(err)))
        rows.append(row)
    return np.array(rows, dtype=np.float32).reshape(len(images), -1), problems


def feature_table(images: ImageSet, settings: FeatureSettings) -> tuple[np.ndarray, list[str]]:
    """The feature rows (N, F float32, values that cannot be computed as 0) and column names of some images in
    memory, in one process: what `extract_features` writes for a packed set, for a chunk of new images."""
    names = _reference_names(settings)
    values, _ = _chunk_features(([images.image(i) for i in range(len(images))], settings, names))
    return values, [name for group in settings.groups for name in names[group]]


def extract_features(
    data_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    report_path: str | os.PathLike[str],
    settings: FeatureSettings,
    *,
    workers: int = 1,
    chunk: int = 256,
) -> np.ndarray:
    """Compute the configured feature groups for every image of a packed set; write names, ids and values."""
    unknown = [g for g in settings.groups if g not in GROUPS]
    if unknown:
        raise ConfigError(f"features.groups: unknown {unknown}. Known: {sorted(GROUPS)}.")
    if not 2 <= settings.haralick_levels <= 256:
        raise ConfigError(f"features.haralick_levels: between 2 and 256, got {settings.haralick_levels}.")
    images = ImageSet.load(data_path)
    names = _reference_names(settings)
    columns = [name for group in settings.groups for name in names[group]]
    starts = range(0, len(images), chunk)
    jobs = [([images.image(i).copy() for i in range(s, min(s + chunk, len(images)))], settings, names) for s in starts]
    values = np.zeros((len(images), len(columns)), np.float32)
    problems: list[dict[str, str]] = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for start, (block, block_problems) in tqdm(
            zip(starts, pool.map(_chunk_features, jobs), strict=True),
            total=len(jobs),
            desc="features",
            unit="chunk",
            mininterval=5.0,
        ):
            values[start : start + len(block)] = block
            problems += [{"id": str(images.ids[start + p]), "group": g, "problem": why} for p, g, why in block_problems]
    assert np.isfinite(values).all()
    group_of = [group for group in settings.groups for _ in names[group]]
    write_npz(
        out, ids=images.ids, names=np.array(columns, dtype=str), groups=np.array(group_of, dtype=str), values=values
    )
    write_json(
        report_path,
        {
            "n_images": len(images),
            "n_features": len(columns),
            "groups": list(settings.groups),
            "haralick_levels": settings.haralick_levels,
            "filled_with_zero": problems,
        },
    )
    for item in problems[:20]:
        log.warning("image %s, %s features: %s (filled with 0)", item["id"], item["group"], item["problem"])
    log.info(
        "%d features (%s) of %d images -> %s; %d image/group values filled with 0",
        len(columns),
        ", ".join(settings.groups),
        len(images),
        out,
        len(problems),
    )
    return values
