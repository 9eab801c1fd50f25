"""What a user who sets only `data:` gets, before and after a change: the default config's validation and held-out
test log loss and its wall time, on two data sets that are not the demo. A quality check with its baseline (the
earlier version, run in the same call on the same images), not a speed benchmark.

Data: scikit-learn's digits (real scans, 8 x 8, white on black; 1,400 training and 397 test images, with
`workflow/configs/upright.yaml`, as the README suggests for data whose orientation matters), and a generated
121-class set (the demo generator with 121 classes: 2,000 training and 500 test images, a long tail). Each version
runs in a copy of its own workflow (a `git worktree` of `--before`, and this working tree) with its own package on
PYTHONPATH. Prints JSON: per data set and version, the final submission's validation and test log loss (the
ablation table's last row), the model runs' training steps, and the wall time; and the after/before ratios.

    python benchmarks/default_length.py --before d0e01f0 --out /tmp/default_length   # about 45 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from _workflow import copy_workflow

REPO = Path(__file__).parents[1]


def write_digits(folder: Path) -> None:
    """train/<digit>/*.png and test/*.png (the last 397 images), test_labels.csv; white digits on black."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = []
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        pixels = np.round(image * 255.0 / 16.0).astype(np.uint8)
        name = f"{i:04d}.png"
        if i < 1400:
            (folder / "train" / str(label)).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / "train" / str(label) / name), pixels)
        else:
            (folder / "test").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / "test" / name), pixels)
            rows.append((name, str(label)))
    with open(folder / "test_labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("image", "class"), *rows])


def write_generated(folder: Path) -> None:
    """The demo generator at 121 classes: 2,000 training and 500 test images."""
    from deepsea.data.demo import DemoSettings, make_demo_data

    make_demo_data(folder, DemoSettings(n_train=2000, n_test=500, n_classes=121, imbalance=0.02, seed=7), workers=2)


def run_version(tree: Path, workdir: Path, data: Path, extra: list[str], data_options: dict | None = None) -> dict:
    """The default DAG of the workflow in `tree` on `data`, with only `data:` (and `extra` config files of the
    workflow, and `data_options`: more `data:` keys) set."""
    copy_workflow(tree, workdir)
    labels = data / "test_labels.csv"
    more = "".join(f", {key}: {value}" for key, value in (data_options or {}).items())
    (workdir / "mine.yaml").write_text(
        f"data: {{train_dir: {data / 'train'}, test_dir: {data / 'test'}{more}}}\nreport: {{test_labels: {labels}}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "CUDA_VISIBLE_DEVICES": ""}
    configs = [*(str(workdir / e) for e in extra), "mine.yaml"]
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", *configs, "--", "final_submission"]
    start = time.monotonic()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    seconds = round(time.monotonic() - start)
    if result.returncode != 0:
        raise SystemExit(f"{workdir}: snakemake failed:\n{result.stderr[-3000:]}")
    with open(workdir / "results/report/ablation.csv", newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    steps = {}
    for log in sorted((workdir / "results/logs").glob("train_*/*.log")):
        found = re.search(r"(\d+) steps of (\d+)", log.read_text())
        steps[log.stem] = int(found.group(1)) if found else None
    return {
        "final": last["what"],
        "valid_log_loss": float(last["valid_log_loss"]),
        "test_log_loss": float(last["test_log_loss"]),
        "test_accuracy": float(last["test_accuracy"]),
        "training_steps": steps,
        "wall_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the git revision to compare with (its default config)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/deepsea_default_length"))
    parser.add_argument("--sets", nargs="+", default=["digits", "generated121"])
    args = parser.parse_args()
    before = args.out / "before_tree"
    if not before.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], cwd=REPO, check=True)
    writers = {"digits": (write_digits, ["workflow/configs/upright.yaml"]), "generated121": (write_generated, [])}
    result: dict[str, dict] = {}
    for name in args.sets:
        writer, extra = writers[name]
        data = args.out / "data" / name
        if not (data / "test_labels.csv").exists():
            writer(data)
        runs = {v: run_version(t, args.out / name / v, data, extra) for v, t in (("before", before), ("after", REPO))}
        runs["ratio_after_to_before"] = {
            key: round(runs["after"][key] / runs["before"][key], 3)
            for key in ("valid_log_loss", "test_log_loss", "wall_seconds")
        }
        result[name] = runs
    print(json.dumps({"before": args.before, **result}, indent=2))


if __name__ == "__main__":
    main()
