"""Feature extraction throughput: our process-pool mahotas extraction vs a single-process scikit-image baseline.

Ours: `extract_features` (groups size, moments, haralick) with one process per core. Baseline: the plain way with
scikit-image, one process: `graycomatrix` over the 4 directions and `graycoprops` for its 6 texture properties on
the same quantised images (fewer features than ours). Measured at 32 and at 256 grey levels. Prints JSON.

    python benchmarks/features.py [--images 600]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _images import demo_images
from skimage.feature import graycomatrix, graycoprops

from deepsea.data.features import FeatureSettings, extract_features

PROPS = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")


def skimage_rate(images, levels: int) -> float:
    start = time.perf_counter()
    for image in images:
        quantised = ((255 - image).astype(np.uint16) * levels // 256).astype(np.uint8)
        glcm = graycomatrix(
            quantised, [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4], levels=levels, symmetric=True, normed=True
        )
        np.concatenate([graycoprops(glcm, prop).ravel() for prop in PROPS])
    return len(images) / (time.perf_counter() - start)


def ours_rate(packed: Path, levels: int, workers: int, out: Path) -> float:
    start = time.perf_counter()
    extract_features(packed, out / "f.npz", out / "r.json", FeatureSettings(haralick_levels=levels), workers=workers)
    return int(np.load(out / "f.npz")["values"].shape[0]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=600)
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    images = demo_images(args.images)
    result: dict = {"benchmark": "features", "images": len(images), "workers": workers, "levels": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images.save(tmp / "set.npz")
        for levels in (32, 256):
            ours = ours_rate(tmp / "set.npz", levels, workers, tmp)
            baseline = skimage_rate(list(images), levels)
            result["levels"][str(levels)] = {
                "ours_images_per_s": round(ours, 1),
                "skimage_single_process_images_per_s": round(baseline, 1),
                "ratio": round(ours / baseline, 2),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
