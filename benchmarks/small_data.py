"""A quality check on small real data, not a speed benchmark: does the k-fold scheme's final submission beat (or
match) the uniform blend of its own models on held-out images, and where does the hold-out scheme land?

Data: scikit-learn's digits (real scans of handwriting, 8 x 8, upscaled to 32 px), on a grey background (every
pixel x 0.6: the light an instrument with a grey field would record), 20 training images per class and the other
1,597 as labelled test images. Both schemes run the same config (three upright convnets, fusion on one, the
weighted ensemble, pseudo-labels, the final blend) in a copy of the workflow. Prints JSON: each scheme's test log
loss of the final submission and of the uniform blend of its ensembled models (the ablation table's test columns),
and their ratio: the uniform blend, scored in the same run, is the baseline.

    python benchmarks/small_data.py --out /tmp/small_data   # about 15 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np
from _workflow import copy_workflow, final_submission

REPO = Path(__file__).parents[1]
PER_CLASS = 20
GREY = 0.6  # the background's share of white
CONFIG = """
data: {{train_dir: {train}, test_dir: {test}}}
report: {{test_labels: {labels}}}
splits: {{scheme: {scheme}, folds: 5}}
tta: {{views: 35, rotation: 10, flip: false}}
fusion: {{models: [plain]}}
ensemble: {{models: [plain, wide, small]}}
submission: {{models: [plain, wide, small]}}
pseudo_labels:
  shards: 2
  models:
    plain_pl: {{base: plain, fraction: 0.33}}
models:
  plain:
    architecture: plain
    input_size: 32
    params: {{widths: [16, 32, 64], dense: 128}}
    augmentation: {{translation: 3, rotation: 10, flip: false}}
    train: {{steps: 300, learning_rate: 0.02, max_grad_norm: 5.0, weight_decay: 0.0005, workers: 0}}
  wide:
    architecture: plain
    input_size: 32
    params: {{widths: [32, 64, 96], dense: 128}}
    augmentation: {{translation: 3, rotation: 10, flip: false, zoom: 1.2}}
    train: {{steps: 300, learning_rate: 0.02, max_grad_norm: 5.0, weight_decay: 0.0005, workers: 0}}
  small:
    architecture: plain
    input_size: 24
    params: {{widths: [16, 32], dense: 64}}
    augmentation: {{translation: 2, rotation: 10, flip: false}}
    train: {{steps: 300, learning_rate: 0.02, max_grad_norm: 5.0, weight_decay: 0.0005, workers: 0}}
"""


def write_digits(folder: Path) -> None:
    """train/<digit>/*.png (20 per class), test/*.png and test_labels.csv, dark digits on a grey field."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    train = set()
    for c in range(10):
        train |= set(rng.choice(np.flatnonzero(digits.target == c), PER_CLASS, replace=False).tolist())
    rows = []
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        white = 255.0 * (1.0 - image / 16.0)  # sklearn: 0 background, 16 ink
        grey = np.clip(np.round(GREY * cv2.resize(white, (32, 32), interpolation=cv2.INTER_CUBIC)), 0, 255)
        name = f"{i:04d}.png"
        if i in train:
            (folder / "train" / str(label)).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / "train" / str(label) / name), grey.astype(np.uint8))
        else:
            (folder / "test").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / "test" / name), grey.astype(np.uint8))
            rows.append((name, str(label)))
    with open(folder / "test_labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("image", "class"), *rows])


def run_scheme(out: Path, data: Path, scheme: str) -> dict:
    workdir = out / scheme
    copy_workflow(REPO, workdir)
    config = CONFIG.format(train=data / "train", test=data / "test", labels=data / "test_labels.csv", scheme=scheme)
    (workdir / "check.yaml").write_text(config)
    start = time.monotonic()
    final_submission(workdir, "check.yaml", 2)
    with open(workdir / "results/report/ablation.csv", newline="") as handle:
        rows = {row["what"]: row for row in csv.DictReader(handle)}
    uniform = next(row for what, row in rows.items() if what.startswith("uniform blend"))
    final = next(row for what, row in rows.items() if what.startswith("+ pseudo-labels"))
    return {
        "final_test_log_loss": float(final["test_log_loss"]),
        "final_test_accuracy": float(final["test_accuracy"]),
        "uniform_blend_test_log_loss": float(uniform["test_log_loss"]),
        "uniform_blend_test_accuracy": float(uniform["test_accuracy"]),
        "ratio_final_to_uniform": float(final["test_log_loss"]) / float(uniform["test_log_loss"]),
        "ablation": {what: {k: row[k] for k in ("valid_log_loss", "test_log_loss")} for what, row in rows.items()},
        "ensemble_adoption": json.loads((workdir / "results/ensemble/weights.json").read_text())["adoption"]["reason"],
        "wall_seconds": round(time.monotonic() - start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/deepsea_small_data"))
    parser.add_argument("--schemes", nargs="+", default=["kfold", "holdout"])
    args = parser.parse_args()
    data = args.out / "digits"
    if not (data / "test_labels.csv").exists():
        write_digits(data)
    print(json.dumps({scheme: run_scheme(args.out, data, scheme) for scheme in args.schemes}, indent=2))


if __name__ == "__main__":
    main()
