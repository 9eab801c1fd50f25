"""Do the training images have an up and a down? A measurement made while packing, and the warning built on it.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from deepsea.data.images import border_level

THUMBNAIL = 16  # px: enough for a digit's or a 6's shape, small enough for 30,000 images in about 5 s
UPRIGHT_SCORE = 0.75  # from this on the images look upright: 0.5 is chance, digits score 0.92, the demo 0.53
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
    """The warning for upright-looking images under a config that turns them over, else None."""
    if not check.looks_upright or not turned_by:
        return None
    return (
        f"the training images look upright: {check.score:.0%} of {check.images} match their class better as they "
        f"are than turned over or mirrored (0.5: no orientation, as plankton), but the config turns them over "
        f"({turned_by[0]}{f', and {len(turned_by) - 1} more' if len(turned_by) > 1 else ''}); if orientation "
        "tells your classes apart (a 6 and a 9), use workflow/configs/upright.yaml (README: Data whose orientation "
        "matters)"
    )
