"""Benchmark inputs: demo-generator images of varied size, made in memory (no data folder needed)."""

from __future__ import annotations

import numpy as np

from deepsea.data.demo import class_specs, render
from deepsea.data.imageset import ImageSet


def demo_images(n: int, n_classes: int = 10, seed: int = 0) -> ImageSet:
    """`n` plankton-like images (about 20-200 px) with labels, as a packed `ImageSet`."""
    specs = class_specs(n_classes)
    images, labels = [], []
    for i in range(n):
        c = i % n_classes
        images.append(render(specs[c], np.random.default_rng([seed, c, i])))
        labels.append(c)
    return ImageSet.from_images(images, [f"{i}.jpg" for i in range(n)], labels, [s.name for s in specs])
