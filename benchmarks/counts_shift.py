"""A quality check of `deepsea classify`'s counts, not a speed benchmark: on samples whose class mix differs from
training, how far from the true counts are argmax counts, probability sums and adjusted counts (raw, and shrunk by
their noise as shipped), and do the intervals hold the truth as often as they claim?

Images: animal-mnist (10,000 real 28 px silhouettes, 10 classes; benchmarks/_real_sets.py) or the demo generator
(20 classes, deepsea/data/demo.py). Classifier: a linear probe, as a user with a small set would ship (ImageNet
EfficientNet-Lite0 pooled features at 64 px, logistic regression). As in a k-fold bundle, the validation
predictions are out of fold over the training images (5 folds) and new images get the mean of the 5 fold models.
Per repeat, `--train-per-class` images of each class train it and the rest are the pool; each sample draws
`--size` images from the pool with a Dirichlet(1) class mix. Prints JSON: per training size, the mean total
absolute count error over samples (with its standard error), each estimate's paired difference to argmax counts
(with SE: argmax is the baseline; `adjusted xM`: shrunk with noise multiple M and no evidence gate, `adjusted
shipped`: the defaults, gate included), and the share of (sample, class) cells whose 90% and 95% intervals hold
the true count.

    python benchmarks/counts_shift.py --set animal_mnist --train-per-class 5 20 100 --noise-multiple 2 1 4
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from _real_sets import _items
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from deepsea.blending.abundance import NOISE_MULTIPLE, Abundance, abundance
from deepsea.data.demo import class_specs, render
from deepsea.data.images import border_level
from deepsea.nets.pretrained_weights import load_pretrained
from deepsea.nets.registry import build_model

SIZE = 64  # px: the probe's input
ESTIMATES = ("argmax", "probability_sum", "adjusted_raw", "adjusted")


def _square(image: np.ndarray) -> np.ndarray:
    """Pad to a square with the border's median grey, then resize to SIZE (as deepsea's packing keeps aspect)."""
    h, w = image.shape
    side = max(h, w)
    canvas = np.full((side, side), border_level(image), np.uint8)
    canvas[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = image
    return cv2.resize(canvas, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def load_images(name: str, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels): a real set from its wheel, or `per_class` images of each of the demo's 20 classes."""
    if name == "demo":
        rng = np.random.default_rng(seed)
        specs = class_specs(20)
        images = [_square(render(spec, rng)) for spec in specs for _ in range(per_class)]
        return np.stack(images), np.repeat(np.arange(len(specs)), per_class)
    classes: dict[str, int] = {}
    images, labels = [], []
    for cls, _, image in _items(name):
        grey = np.asarray(image.convert("L") if hasattr(image, "convert") else cv2.imread(str(image), 0))
        images.append(_square(grey))
        labels.append(classes.setdefault(cls, len(classes)))
    return np.stack(images), np.array(labels)


@torch.no_grad()
def probe_features(images: np.ndarray, batch: int = 256) -> np.ndarray:
    """ImageNet EfficientNet-Lite0 pooled features of grey images scaled as (pixel - 127) / 128."""
    net = build_model("pretrained", 1000, SIZE, {"backbone": "efficientnet_lite0"})
    load_pretrained(net, "imagenet", "efficientnet_lite0", "benchmark")
    net.eval()
    out = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(images[start : start + batch].astype(np.float32))[:, None]
        out.append(net.pooled((x - 127.0) / 128.0).numpy())
    return np.concatenate(out)


def fit_probe(
    features: np.ndarray, labels: np.ndarray, train: np.ndarray, seed: int
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Out-of-fold probabilities of the training rows (the bundle's validation predictions) and the mean of the
    fold models' probabilities for new images: what a k-fold bundle predicts with."""
    x, y = features[train], labels[train]
    folds = StratifiedKFold(n_splits=min(5, int(np.bincount(y).min())), shuffle=True, random_state=seed)
    oof = np.zeros((len(y), int(labels.max()) + 1))
    models = []
    for fit_rows, held_out in folds.split(x, y):
        model = LogisticRegression(C=0.1, max_iter=2000).fit(x[fit_rows], y[fit_rows])
        oof[held_out] = model.predict_proba(x[held_out])
        models.append(model)
    return oof, lambda new: np.mean([model.predict_proba(new) for model in models], axis=0)


def draw_sample(pool: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a sample of `size` pool images with a Dirichlet(1) class mix (drawn with replacement)."""
    n_classes = int(labels.max()) + 1
    mix = rng.dirichlet(np.ones(n_classes))
    per_class = rng.multinomial(size, mix)
    rows = [rng.choice(pool[labels[pool] == c], k) for c, k in enumerate(per_class) if k]
    return np.concatenate(rows)


def score(found: dict[float, Abundance], truth: np.ndarray, label: str) -> dict[str, float]:
    """Total absolute error of each estimate, and the share of classes its 90% and 95% intervals hold (`found`:
    the abundance at each level); the shrunk adjusted counts are named with `label`."""
    row: dict[str, float] = {}
    for key in ESTIMATES:
        name = f"adjusted {label}" if key == "adjusted" else key
        row[name] = float(np.abs(getattr(found[0.9], key) - truth).sum())
        for level, at_level in found.items():
            low, high = at_level.intervals[key]
            covered = (low - 1e-9 <= truth) & (truth <= high + 1e-9)
            row[f"{name} covered{round(100 * level)}"] = float(covered.mean())
    return row


def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per estimate: mean error and SE over samples, paired difference to argmax and its SE, coverage."""
    table = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    out = {}
    for key in (key for key in table if "covered" not in key):
        diff = table[key] - table["argmax"]
        out[key] = {
            "error": float(table[key].mean()),
            "error_se": float(table[key].std(ddof=1) / np.sqrt(len(rows))),
            "minus_argmax": float(diff.mean()),
            "minus_argmax_se": float(diff.std(ddof=1) / np.sqrt(len(rows))),
            "coverage90": float(table[f"{key} covered90"].mean()),
            "coverage95": float(table[f"{key} covered95"].mean()),
        }
    return out


def _sample_rows(
    probs: np.ndarray, valid: np.ndarray, valid_labels: np.ndarray, truth: np.ndarray, multiples: list[float], k: int
) -> dict[str, float]:
    """One sample's errors and coverages, for each noise multiple of the shrinkage."""
    row: dict[str, float] = {}
    for multiple in multiples:  # the shrinkage alone, without the evidence gate
        found = {level: abundance(probs, valid, valid_labels, seed=k, level=level, noise_multiple=multiple,
                                  min_validation_per_class=0) for level in (0.9, 0.95)}  # fmt: skip
        row |= score(found, truth, f"x{multiple:g}")
    shipped = {level: abundance(probs, valid, valid_labels, seed=k, level=level) for level in (0.9, 0.95)}
    return row | {key: value for key, value in score(shipped, truth, "shipped").items() if "shipped" in key}


def _training_draw(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """`per_class` training images of every class."""
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(int(labels.max()) + 1)]
    )


def _features(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, float]:
    """The set's probe features and labels, and the seconds they took (read back from `--cache` when there)."""
    cached = Path(args.cache) / f"{args.set}-{args.demo_per_class}-{args.seed}.npz" if args.cache else None
    if cached is not None and cached.exists():
        with np.load(cached) as stored:
            return stored["features"], stored["labels"], float(stored["seconds"])
    images, labels = load_images(args.set, args.demo_per_class, args.seed)
    started = time.perf_counter()
    features = probe_features(images)
    seconds = time.perf_counter() - started
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, features=features, labels=labels, seconds=seconds)
    return features, labels, seconds


def run(args: argparse.Namespace) -> dict:
    features, labels, seconds = _features(args)
    results = {}
    for per_class in args.train_per_class:
        rows = []
        for repeat in range(args.repeats):
            rng = np.random.default_rng([args.seed, per_class, repeat])
            train = _training_draw(labels, per_class, rng)
            pool = np.setdiff1d(np.arange(len(labels)), train)
            valid, predict = fit_probe(features, labels, train, args.seed + repeat)
            pool_probs = np.zeros((len(labels), valid.shape[1]))
            pool_probs[pool] = predict(features[pool])
            for k in range(args.samples):
                rows_k = draw_sample(pool, labels, args.size, rng)
                truth = np.bincount(labels[rows_k], minlength=valid.shape[1]).astype(np.float64)
                rows.append(_sample_rows(pool_probs[rows_k], valid, labels[train], truth, args.noise_multiple, k))
        results[str(per_class)] = summarise(rows)
    return {"set": args.set, "n_images": len(labels), "features_seconds": round(seconds, 1), "size": args.size,
            "samples_per_repeat": args.samples, "repeats": args.repeats, "results": results}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["animal_mnist", "demo"], default="animal_mnist")
    parser.add_argument("--train-per-class", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--samples", type=int, default=10, help="samples per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="training draws per training size")
    parser.add_argument("--size", type=int, default=400, help="images per sample")
    parser.add_argument("--demo-per-class", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", help="a folder to keep the probe features in between runs")
    parser.add_argument("--noise-multiple", type=float, nargs="+", default=[NOISE_MULTIPLE],
                        help="the shrinkage's caution (the shipped one, and others to compare)")  # fmt: skip
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
