"""Augmentation throughput: our single OpenCV warp per image vs scikit-image's warp (the original's approach).

Both get the same images and the same composed affine matrices (rescale + random augmentation, ranges from the
defaults), one thread each, so the ratio is per core. Also reports how far the two outputs differ (they should
agree up to interpolation details). Prints JSON. Goal: speedup >= 5.

    python benchmarks/augment.py [--images 400] [--size 95]
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
from _images import demo_images
from skimage.transform import AffineTransform, warp

from deepsea.data.augment import AugmentationRanges, compose_affine, sample_params, to_ink, warp_uint8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=95)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)

    images = demo_images(args.images)
    rng = np.random.default_rng(0)
    matrices = [
        compose_affine(*images.image(i).shape, args.size, sample_params(AugmentationRanges(), rng))
        for i in range(len(images))
    ]
    inks = [255 - images.image(i) for i in range(len(images))]  # both paths start from the same inverted image

    def ours() -> np.ndarray:
        # as the training loader does it: one uint8 warp per image, one vectorised conversion per batch
        return to_ink(np.stack([warp_uint8(images.image(i), m, args.size) for i, m in enumerate(matrices)]))

    def skimage() -> np.ndarray:
        out = []
        for ink, m in zip(inks, matrices, strict=True):
            inverse = AffineTransform(matrix=np.linalg.inv(np.vstack([m, [0, 0, 1]])))  # output -> input coords
            out.append(
                warp(
                    ink,
                    inverse,
                    output_shape=(args.size, args.size),
                    order=1,
                    mode="constant",
                    cval=0.0,
                    preserve_range=True,
                ).astype(np.float32)
                / 255.0
            )
        return np.stack(out)

    def best_time(fn) -> tuple[float, list[np.ndarray]]:
        best, result = float("inf"), []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = fn()
            best = min(best, time.perf_counter() - start)
        return best, result

    t_ours, a = best_time(ours)
    t_sk, b = best_time(skimage)
    diff = float(np.mean([np.abs(x - y).mean() for x, y in zip(a, b, strict=True)]))
    print(
        json.dumps(
            {
                "benchmark": "augment",
                "images": len(images),
                "size": args.size,
                "threads": 1,
                "opencv_images_per_s": round(len(images) / t_ours, 1),
                "skimage_images_per_s": round(len(images) / t_sk, 1),
                "speedup": round(t_sk / t_ours, 2),
                "goal_speedup": 5.0,
                "mean_abs_difference": round(diff, 5),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
