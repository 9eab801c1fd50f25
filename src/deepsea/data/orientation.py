"""Do the training images have an up and a down? A measurement made while packing, and the decision built on it.

The defaults suit plankton, which lie at any angle: the cyclic models are rotation-invariant by construction and
every augmentation and test-time view turns and flips the images. On data imaged upright (digits, text, specimens
in a fixed pose) that merges classes: a 6 turned over is a 9, a mirrored 5 is a 2. Measured on scikit-learn's
digits, the defaults gave a submission log loss of 0.428 where `workflow/configs/upright.yaml` gave 0.023 (0.381
and 0.020 in a rerun), and no other check said a word (TTA's changes were within chance).

The test: an image that is upright looks more like the other images of its class than the same image turned over
(180 degrees) or mirrored does, if the class has an orientation. Each training image is compared, as a 16 x 16
thumbnail, with the mean thumbnail of the other images of its class, once as it is and once turned over or
mirrored (chosen at random, seeded); the score is how often the image as it is matches better (ties count half).
Images at random angles score about 0.5 whatever their shapes; upright ones score near 1. 90-degree turns are left
out on purpose: they change a non-square image's padding, which says something about the camera, not the classes.

The decision (`data.orientation: auto | free | upright`, `data.mirror: auto | allowed | forbidden`): `auto` is
upright from `UPRIGHT_SCORE` on. Under upright, training augmentation and test-time views tilt by at most
`UPRIGHT_TILT` degrees and never turn an image over; mirroring is a separate choice, because a mirrored animal is
still that animal but a mirrored digit is not. `mirror: auto` mirrors free images (as the original) and not upright
ones (the safe side: an upright set of animals only loses an augmentation). The jobs that turn images (training,
test-time views, the augmentation figure) read the decision from the pack report when they run, so the Snakemake DAG
stays the same whatever the data say.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from deepsea.data.images import border_level
from deepsea.errors import ConfigError, DeepseaError
from deepsea.io import read_json

THUMBNAIL = 16  # px: enough for a digit's or a 6's shape, small enough for 30,000 images in about 5 s
UPRIGHT_SCORE = 0.75  # from this on the images look upright: 0.5 is chance, digits score 0.92, the demo 0.53
UPRIGHT_TILT = 10.0  # degrees: the most an upright image is turned (uniform in [0, tilt), as every rotation range)
ORIENTATIONS = ("auto", "free", "upright")  # data.orientation
MIRRORS = ("auto", "allowed", "forbidden")  # data.mirror
MIN_IMAGES = 50  # fewer images (in classes of two or more) say too little either way
TURNS = (  # what the default augmentation does to an image that keeps its padding: turn over, mirror either way
    lambda t: t[::-1, ::-1],
    lambda t: t[:, ::-1],
    lambda t: t[::-1, :],
)


@dataclass(frozen=True)
class OrientationCheck:
    score: float  # share of images that match their class better as they are than turned over or mirrored
    images: int  # images compared (those in classes with at least two images)

    @property
    def looks_upright(self) -> bool:
        return self.images >= MIN_IMAGES and self.score >= UPRIGHT_SCORE


def thumbnail(pixels: np.ndarray, size: int = THUMBNAIL) -> np.ndarray:
    """The image shrunk to fit `size` x `size`, centred on its own background, zero mean and unit norm (flat: 0).

    Shrunk first (a 400 px image is not padded at full size) to even sides, so the padding is the same on both
    sides: a lopsided pad would turn over with the image and tell an upright image from a turned one by itself."""
    h, w = pixels.shape
    scale = size / max(h, w)
    new_h, new_w = (max(2, 2 * round(side * scale / 2)) for side in (h, w))
    interpolation = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    small = cv2.resize(pixels, (new_w, new_h), interpolation=interpolation).astype(np.float64)
    square = np.full((size, size), border_level(pixels), dtype=np.float64)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    square[top : top + new_h, left : left + new_w] = small
    square -= square.mean()
    norm = np.linalg.norm(square)
    return square / norm if norm > 1e-9 else np.zeros_like(square)


def check_orientation(pixels: Sequence[np.ndarray], labels: Sequence[int], seed: int = 0) -> OrientationCheck:
    """Score how often each image matches the mean of the rest of its class better as it is than turned over."""
    labels_array = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels_array)
    keep = np.flatnonzero(counts[labels_array] >= 2)
    if len(keep) == 0:
        return OrientationCheck(score=0.5, images=0)
    thumbs = np.stack([thumbnail(pixels[int(i)]) for i in keep])  # (n, size, size)
    kept_labels = labels_array[keep]
    class_sums = np.zeros((counts.size, THUMBNAIL, THUMBNAIL))
    np.add.at(class_sums, kept_labels, thumbs)
    others = class_sums[kept_labels] - thumbs  # the rest of the class (its mean up to a positive factor)
    choice = np.random.default_rng(seed).integers(0, len(TURNS), size=len(keep))
    turned = np.stack([TURNS[k](t) for k, t in zip(choice, thumbs, strict=True)])
    # as it is minus turned, each against the rest of its class (both thumbnails have the same norm)
    margin = np.einsum("nij,nij->n", thumbs - turned, others)
    tie = np.isclose(margin, 0.0, atol=1e-9)
    score = float(np.mean(np.where(tie, 0.5, margin > 0)))
    return OrientationCheck(score=round(score, 4), images=len(keep))


def upright_warning(check: OrientationCheck, turned_by: Sequence[str]) -> str | None:
    """The warning for upright-looking images under a config that turns them over anyway (data.orientation: free),
    else None."""
    if not check.looks_upright or not turned_by:
        return None
    return (
        f"the training images look upright: {check.score:.0%} of {check.images} match their class better as they "
        f"are than turned over or mirrored (0.5: no orientation, as plankton), but data.orientation: free turns them "
        f"over ({turned_by[0]}{f', and {len(turned_by) - 1} more' if len(turned_by) > 1 else ''}); if orientation "
        "tells your classes apart (a 6 and a 9), set data.orientation: auto or upright"
    )


def auto_orientation(check: OrientationCheck) -> str:
    """What `data.orientation: auto` decides for training images with this check: upright or free."""
    return "upright" if check.looks_upright else "free"


@dataclass(frozen=True)
class Orientation:
    """How a run turns and mirrors images: `data.orientation` and `data.mirror` resolved for the training images."""

    upright: bool  # tilts of at most UPRIGHT_TILT degrees; else any angle, as the config's ranges say
    mirror: bool  # may an image be mirrored (where the config's ranges flip)
    setting: str = "free"  # data.orientation as configured (auto, free, upright)
    mirror_setting: str = "auto"  # data.mirror as configured
    check: OrientationCheck | None = None  # the pack report's measurement, for `auto`

    def limit(self, rotation: float, flip: bool) -> tuple[float, bool]:
        """A rotation range (degrees, uniform in [0, rotation)) and flip switch limited to this orientation."""
        return (min(rotation, UPRIGHT_TILT) if self.upright else rotation), flip and self.mirror

    def describe(self) -> str:
        """One line for logs and the closing summary: the decision, why, and the key that overrides it."""
        name = "upright" if self.upright else "free"
        if self.setting == "auto" and self.check is not None:
            why = (
                f"data.orientation auto: {self.check.score:.0%} of {self.check.images} training images match their "
                f"class better as they are than turned over or mirrored; upright from {UPRIGHT_SCORE:.0%}"
            )
        else:
            why = f"data.orientation: {self.setting}"
        turns = f"tilted by at most {UPRIGHT_TILT:g} degrees" if self.upright else "turned to any angle"
        mirrored = "mirrored" if self.mirror else "never mirrored"
        other = "free" if self.upright else "upright"
        return (
            f"orientation {name} ({why}): training and test-time views are {turns} and {mirrored} "
            f"(data.mirror: {self.mirror_setting}); to override, set data.orientation: {other}"
        )


def decide_orientation(setting: str, mirror: str, check: OrientationCheck | None) -> Orientation:
    """Resolve `data.orientation` and `data.mirror`; `check` is needed for `auto` (absent: free, as before)."""
    if setting not in ORIENTATIONS or mirror not in MIRRORS:
        raise ConfigError(
            f"data.orientation '{setting}' / data.mirror '{mirror}': use one of {', '.join(ORIENTATIONS)} / "
            f"{', '.join(MIRRORS)}."
        )
    upright = setting == "upright" or (setting == "auto" and check is not None and check.looks_upright)
    mirrors = {"allowed": True, "forbidden": False}.get(mirror, not upright)
    return Orientation(upright=upright, mirror=mirrors, setting=setting, mirror_setting=mirror, check=check)


def check_from_report(report: Mapping) -> OrientationCheck | None:
    """The orientation check a pack report holds (None for the test set's, which has no labels)."""
    if report.get("upright_score") is None:
        return None
    return OrientationCheck(float(report["upright_score"]), int(report["upright_images"]))


def read_orientation(setting: str, mirror: str, pack_report: str | os.PathLike[str] | None) -> Orientation:
    """The decision for the training images whose pack report is `pack_report` (the workflow's train report)."""
    if pack_report is None:
        if setting == "auto":
            raise ConfigError(
                "orientation auto is decided from the training images' pack report: give --pack-report with the "
                "report `deepsea pack` wrote for them, or --orientation free or upright."
            )
        return decide_orientation(setting, mirror, None)
    report = read_json(pack_report)
    try:
        check = check_from_report(report)
    except (KeyError, TypeError, ValueError) as err:
        raise DeepseaError(
            f"{pack_report}: no readable upright_score ({err}); rerun `snakemake --forcerun pack`."
        ) from err
    return decide_orientation(setting, mirror, check)
