"""`deepsea augment-grid`: a PNG of augmented training samples, to see what the network is trained on.

Each row is one training image: its centre view (the plain rescale) first, then random augmentations drawn with
the model's ranges, exactly as the training loader draws them (same `compose_affine`, same OpenCV warp).
"""

from __future__ import annotations

import logging
import os

import cv2
import numpy as np

from deepsea.data.augment import sample_params, view
from deepsea.data.imageset import ImageSet, longest_side_p75
from deepsea.io import atomic_path
from deepsea.training.settings import ModelSettings

log = logging.getLogger(__name__)


def augmentation_grid(
    data_path: str | os.PathLike[str],
    settings: ModelSettings,
    out: str | os.PathLike[str],
    *,
    n_images: int = 8,
    n_samples: int = 8,
    seed: int = 0,
) -> None:
    """Write a (n_images x (1 + n_samples)) grid of views at the model's input size (`input_size: auto` resolved
    from the training images as training resolves it), shown dark-on-light."""
    images = ImageSet.load(data_path)
    settings = settings.with_input_size(longest_side_p75(images.shapes))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=min(n_images, len(images)), replace=False)
    size, gap = settings.pixels, 2
    zoom = max(1, 96 // size)  # small inputs are enlarged (nearest neighbour) so that they can be seen
    cell = size * zoom
    grid = np.full((len(chosen) * (cell + gap), (1 + n_samples) * (cell + gap)), 255, np.uint8)
    for row, index in enumerate(chosen):
        image = images.image(int(index))
        views = [view(image, size)] + [
            view(image, size, sample_params(settings.augmentation, rng)) for _ in range(n_samples)
        ]
        for col, v in enumerate(views):
            tile = np.kron(255 - np.round(v * 255).astype(np.uint8), np.ones((zoom, zoom), np.uint8))
            y, x = row * (cell + gap), col * (cell + gap)
            grid[y : y + cell, x : x + cell] = tile
    ok, png = cv2.imencode(".png", grid)
    assert ok
    with atomic_path(out) as tmp:
        tmp.write_bytes(png.tobytes())
    log.info("augmentation grid of %d images x %d samples -> %s", len(chosen), n_samples, out)
