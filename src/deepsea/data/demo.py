"""`deepsea make-demo-data`: a deterministic, synthetic plankton-like data set in the NDSB layout.

Why synthetic: the pipeline must be testable and demonstrable without the (licensed, 3 GB) NDSB data. The set is
built so that the things the real solution exploits matter here too:
- classes differ by shape family, size and texture (not by one pixel trick), so convnets, size features and
  Haralick texture features each carry information;
- every image is rotated by a random angle, flipped at random and placed off-centre, so rotation invariance
  (cyclic pooling, rotation augmentation, TTA) pays off;
- images are cropped around the organism like the NDSB images, so image size (about 20 to 200 px) tells the
  organism's size;
- class frequencies are imbalanced (geometric decay), with at least one class under 20 training images.

Layout written: `<out>/train/<class>/<id>.jpg`, `<out>/test/<id>.jpg`, `<out>/test_labels.csv` (image,class: read
only by the scorer, never by the pipeline) and `<out>/manifest.json` (the generator's settings, written last).
Every image is a pure function of (seed, class, index), so the set is identical across runs and worker counts.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from deepsea.errors import ConfigError
from deepsea.io import write_json

log = logging.getLogger(__name__)

SUPERSAMPLE = 3  # draw at 3x and downsample with area averaging, for anti-aliased edges
Canvas = np.ndarray  # (S, S) float32 ink density in [0, 1]


# ---------------------------------------------------------------------------------------------- shape families
# Each draws ink (1.0) in a canonical orientation (long axis along x) centred in the canvas; `u` is the half length
# of the organism in canvas pixels. The numbers are proportions of `u`, chosen by eye to look like the family.


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


def _thick(u: float, fraction: float) -> int:
    return max(1, int(round(u * fraction)))


def draw_copepod(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    cv2.ellipse(c, _pt(cx - 0.1 * u, cy), _pt(0.55 * u, 0.26 * u), 0, 0, 360, 1.0, -1)
    for side in (-1, 1):  # two long antennae swept back from the head
        sweep = rng.uniform(0.6, 0.9)
        cv2.line(
            c, _pt(cx + 0.4 * u, cy + side * 0.1 * u), _pt(cx - 0.2 * u, cy + side * sweep * u), 1.0, _thick(u, 0.04)
        )
    cv2.line(c, _pt(cx - 0.6 * u, cy), _pt(cx - u, cy), 1.0, _thick(u, 0.07))  # tail
    for side in (-1, 1):
        cv2.line(c, _pt(cx - u, cy), _pt(cx - 1.05 * u, cy + side * 0.15 * u), 1.0, _thick(u, 0.04))


def draw_diatom_chain(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    k = int(rng.integers(3, 7))
    r = u / k
    for i in range(k):
        x = cx - u + r + 2 * r * i
        cv2.circle(c, _pt(x, cy + rng.uniform(-0.15, 0.15) * r), max(1, int(0.85 * r)), 1.0, -1)
    cv2.line(c, _pt(cx - u + r, cy), _pt(cx + u - r, cy), 1.0, _thick(r, 0.3))


def draw_radiolarian(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    cv2.circle(c, _pt(cx, cy), int(0.45 * u), 1.0, -1)
    n = int(rng.integers(12, 21))
    for a in np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, np.pi):
        length = u * rng.uniform(0.8, 1.0)
        cv2.line(c, _pt(cx, cy), _pt(cx + length * np.cos(a), cy + length * np.sin(a)), 1.0, _thick(u, 0.03))


def draw_trichodesmium(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    half_width = u * rng.uniform(0.09, 0.14)
    box = cv2.boxPoints(((cx, cy), (2 * u, 2 * half_width), rng.uniform(-8, 8)))
    cv2.fillPoly(c, [np.round(box).astype(np.int32)], 1.0)


def draw_ring(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    cv2.ellipse(c, _pt(cx, cy), _pt(0.9 * u, 0.9 * u * rng.uniform(0.8, 1.0)), 0, 0, 360, 1.0, _thick(u, 0.16))


def draw_crescent(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    cv2.circle(c, _pt(cx, cy), int(0.9 * u), 1.0, -1)
    cv2.circle(c, _pt(cx + rng.uniform(0.35, 0.5) * u, cy), int(0.8 * u), 0.0, -1)


def draw_spotted_blob(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    cv2.ellipse(c, _pt(cx, cy), _pt(0.95 * u, 0.7 * u), 0, 0, 360, 1.0, -1)


def draw_star(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    angles = np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, u, u * rng.uniform(0.35, 0.45))
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    cv2.fillPoly(c, [np.round(points).astype(np.int32)], 1.0)


def draw_larva(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    head = 0.42 * u
    cv2.circle(c, _pt(cx + u - head, cy), int(head), 1.0, -1)
    wiggle = rng.uniform(-0.2, 0.2) * u
    tail = np.array([[cx + u - head, cy - 0.6 * head], [cx - u, cy + wiggle], [cx + u - head, cy + 0.6 * head]])
    cv2.fillPoly(c, [np.round(tail).astype(np.int32)], 1.0)


def draw_chaetognath(c: Canvas, u: float, rng: np.random.Generator) -> None:
    cx = cy = c.shape[0] / 2
    bend = rng.uniform(0.25, 0.45)
    cv2.ellipse(c, _pt(cx, cy + bend * u), _pt(u, bend * u), 0, 180, 360, 1.0, _thick(u, 0.1))
    cv2.circle(c, _pt(cx + u, cy + bend * u), _thick(u, 0.1), 1.0, -1)  # head


@dataclass(frozen=True)
class Family:
    """A shape family: how to draw it, its organism length range (px) and its natural texture."""

    name: str
    draw: Callable[[Canvas, float, np.random.Generator], None]
    length: tuple[float, float]
    texture: str


FAMILIES: tuple[Family, ...] = (
    Family("copepod_calanoid", draw_copepod, (50, 110), "solid"),
    Family("diatom_chain", draw_diatom_chain, (40, 100), "grainy"),
    Family("radiolarian", draw_radiolarian, (80, 150), "grainy"),
    Family("trichodesmium", draw_trichodesmium, (60, 140), "striped"),
    Family("ctenophore_ring", draw_ring, (25, 55), "solid"),
    Family("crescent_protist", draw_crescent, (30, 70), "solid"),
    Family("siphonophore_spotted", draw_spotted_blob, (45, 90), "spotted"),
    Family("echinoderm_star", draw_star, (16, 40), "solid"),
    Family("fish_larva", draw_larva, (30, 80), "grainy"),
    Family("chaetognath", draw_chaetognath, (70, 140), "solid"),
)
TEXTURES = ("solid", "grainy", "spotted", "striped")
SIZE_VARIANTS = (("", 1.0), ("small", 0.45), ("large", 1.5))  # small: mostly below the family's size range


@dataclass(frozen=True)
class ClassSpec:
    """One class: a shape family at a size scale with a texture."""

    name: str
    family: int
    length: tuple[float, float]
    texture: str


def class_specs(n_classes: int) -> list[ClassSpec]:
    """The first `n_classes` classes: the 10 families first, then size and texture variants of them."""
    specs: list[ClassSpec] = []
    for k in range(n_classes):
        fam = FAMILIES[k % len(FAMILIES)]
        size_name, scale = SIZE_VARIANTS[(k // len(FAMILIES)) % len(SIZE_VARIANTS)]
        texture_shift = k // (len(FAMILIES) * len(SIZE_VARIANTS))
        texture = TEXTURES[(TEXTURES.index(fam.texture) + texture_shift) % len(TEXTURES)]
        lo, hi = (min(190.0, max(12.0, v * scale)) for v in fam.length)
        parts = [fam.name, size_name, texture if texture_shift else ""]
        suffix = f"v{k // (len(FAMILIES) * len(SIZE_VARIANTS) * len(TEXTURES))}" if k >= 120 else ""
        name = "_".join(p for p in [*parts, suffix] if p)
        specs.append(ClassSpec(name, k % len(FAMILIES), (lo, hi), texture))
    return specs


# ------------------------------------------------------------------------------------------------- rendering


def _texture(kind: str, shape: tuple[int, int], u: float, rng: np.random.Generator) -> np.ndarray:
    """A multiplicative ink-density map in [0.3, 1]."""
    if kind == "solid":
        return np.full(shape, rng.uniform(0.85, 1.0), np.float32)
    if kind == "grainy":
        noise = rng.random((max(2, shape[0] // 6),) * 2).astype(np.float32)
        return 0.45 + 0.55 * cv2.resize(noise, shape[::-1], interpolation=cv2.INTER_CUBIC).clip(0, 1)
    if kind == "spotted":
        t = np.full(shape, 0.4, np.float32)
        for _ in range(int(rng.integers(6, 14))):
            centre = _pt(*(rng.uniform(0.2, 0.8, 2) * shape[0]))
            cv2.circle(t, centre, max(1, int(u * rng.uniform(0.08, 0.16))), 1.0, -1)
        return t
    if kind == "striped":
        period = max(3.0, u * rng.uniform(0.15, 0.25))
        x = np.arange(shape[1], dtype=np.float32)
        return np.broadcast_to(0.55 + 0.45 * (np.sin(2 * np.pi * x / period) > 0), shape).astype(np.float32)
    raise ValueError(kind)


def render(spec: ClassSpec, rng: np.random.Generator) -> np.ndarray:
    """One image of class `spec`: dark organism, random angle/flip/position, on a light noisy background."""
    length = rng.uniform(*spec.length)
    u = length / 2 * SUPERSAMPLE
    side = int(math.ceil(length * 1.5 + 8)) * SUPERSAMPLE
    ink: np.ndarray = np.zeros((side, side), np.float32)
    FAMILIES[spec.family].draw(ink, u, rng)
    ink *= _texture(spec.texture, ink.shape, u, rng)
    for _ in range(int(rng.integers(0, 4))):  # debris specks, as real samples have: not part of the class
        centre = _pt(*(rng.uniform(0.05, 0.95, 2) * side))
        cv2.circle(ink, centre, int(rng.uniform(0.5, 2.5) * SUPERSAMPLE), rng.uniform(0.3, 0.9), -1)
    stretch = np.exp(rng.uniform(-np.log(1.25), np.log(1.25)))  # individuals differ in proportions
    stretching = np.array([[stretch, 0, side / 2 * (1 - stretch)], [0, 1, 0]], dtype=np.float32)
    ink = cv2.warpAffine(ink, stretching, (side, side))
    if rng.random() < 0.5:
        ink = ink[::-1].copy()
    rotation = cv2.getRotationMatrix2D((side / 2, side / 2), rng.uniform(0, 360), 1.0)
    ink = cv2.warpAffine(ink, rotation, (side, side), flags=cv2.INTER_LINEAR, borderValue=0.0)
    small = side // SUPERSAMPLE
    ink = cv2.resize(ink, (small, small), interpolation=cv2.INTER_AREA)
    ink = cv2.GaussianBlur(ink, (3, 3), rng.uniform(0.3, 0.8))

    rows, cols = np.nonzero(ink > 0.05)
    if rows.size == 0:  # cannot happen for the families above; guard against a degenerate draw anyway
        rows, cols = np.array([small // 2]), np.array([small // 2])
    margins = rng.integers(2, 9, size=4)  # top, bottom, left, right: the organism is rarely centred
    top, bottom = max(0, rows.min() - margins[0]), min(small, rows.max() + 1 + margins[1])
    left, right = max(0, cols.min() - margins[2]), min(small, cols.max() + 1 + margins[3])
    ink = ink[top:bottom, left:right]

    background = rng.uniform(244, 254)  # near white, as NDSB: the warp border (white) shows no box
    darkness = rng.uniform(140, 200)
    image = background - darkness * ink + rng.normal(0, rng.uniform(1.5, 5.0), ink.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ the data set


@dataclass(frozen=True)
class DemoSettings:
    """What `make-demo-data` generates; saved as manifest.json so the set can be regenerated exactly."""

    n_train: int = 800  # the defaults are config.yaml's `demo:` (tests/unit/test_settings.py checks they agree)
    n_test: int = 200
    n_classes: int = 20
    seed: int = 0
    imbalance: float = 0.2  # class c gets a share proportional to exp(-imbalance * c)
    jpeg_quality: int = 92


def class_counts(total: int, n_classes: int, imbalance: float) -> list[int]:
    """Images per class: geometric decay, at least 3 each, summing to `total` (largest class absorbs rounding)."""
    weights = np.exp(-imbalance * np.arange(n_classes))
    counts = np.maximum(3, np.floor(total * weights / weights.sum())).astype(int)
    counts[0] += total - counts.sum()
    if counts[0] < 3:
        raise ConfigError(f"demo: {total} images are too few for {n_classes} classes (need at least 3 each).")
    return counts.tolist()


def _encode_job(job: tuple[ClassSpec, int, int, int, int]) -> bytes:
    spec, seed, class_index, image_index, quality = job
    rng = np.random.default_rng([seed, class_index, image_index])
    ok, buf = cv2.imencode(".jpg", render(spec, rng), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def _write_images(
    folder: Path,
    jobs: list[tuple[ClassSpec, int, int, int, int]],
    is_test: list[bool],
    names: np.ndarray,
    *,
    workers: int,
) -> list[tuple[str, str]]:
    """Render and write every image (train/<class>/ or test/); the test images' (file name, class)."""
    labels: list[tuple[str, str]] = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        encoded = pool.map(_encode_job, jobs, chunksize=32)
        for job, test, name, data in tqdm(
            zip(jobs, is_test, names, encoded, strict=True), total=len(jobs), desc="demo images", unit="img",
            mininterval=2.0,
        ):  # fmt: skip
            file_name = f"{name}.jpg"
            if test:
                (folder / "test" / file_name).write_bytes(data)
                labels.append((file_name, job[0].name))
            else:
                (folder / "train" / job[0].name / file_name).write_bytes(data)
    return labels


def _write_test_labels(path: Path, labels: list[tuple[str, str]]) -> None:
    """The hidden test labels as an image,class CSV, in file-number order."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["image", "class"])
    by_number = sorted(labels, key=lambda label: int(label[0].split(".")[0]))
    writer.writerows(by_number)
    path.write_text(text.getvalue())


def make_demo_data(out: str | os.PathLike[str], settings: DemoSettings, workers: int = 1) -> None:
    """Generate the data set into `out` (built in a temporary folder, then moved into place)."""
    out = Path(out)
    if settings.n_classes < 2:
        raise ConfigError("demo: n_classes must be at least 2.")
    specs = class_specs(settings.n_classes)
    per_class = np.array(class_counts(settings.n_train + settings.n_test, settings.n_classes, settings.imbalance))
    # The test share of each class is proportional, so test and train follow the same class distribution.
    test_per_class = np.floor(per_class * settings.n_test / per_class.sum()).astype(int)
    test_per_class[0] += settings.n_test - test_per_class.sum()

    jobs, is_test = [], []
    for c, spec in enumerate(specs):
        for i in range(int(per_class[c])):
            jobs.append((spec, settings.seed, c, i, settings.jpeg_quality))
            is_test.append(i < test_per_class[c])
    # Numeric file names as in NDSB, shuffled so that a file name says nothing about its class.
    names = np.random.default_rng([settings.seed, 7]).permutation(len(jobs)) + 1

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for spec in specs:
            (tmp / "train" / spec.name).mkdir(parents=True)
        (tmp / "test").mkdir()
        labels = _write_images(tmp, jobs, is_test, names, workers=workers)
        _write_test_labels(tmp / "test_labels.csv", labels)
        write_json(
            tmp / "manifest.json",
            {
                "settings": asdict(settings),
                "classes": [s.name for s in specs],
                "train_per_class": (per_class - test_per_class).tolist(),
            },
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info(
        "demo data: %d train / %d test images in %d classes -> %s",
        settings.n_train,
        settings.n_test,
        settings.n_classes,
        out,
    )
