"""Images per second of `deepsea classify` with the demo's model bundle, against the workflow's own per-model path
on the same images, in one run (CPU).

The baseline is what a user did before the bundle: point `data.test_dir` at the new images and let the DAG redo its
test-dependent jobs. Its commands are the DAG's own: `snakemake -n -p final_submission` with the new folder lists
every job that would run, and they are run one after the other as printed (pack, features, every model's TTA and
centre views, the views choice, bag averages, fusion, the ensemble, the shard models' combination, the final blend,
the submission), except the pseudo-label models' retraining (`shard_test`, `train_pseudolabel`: their trained
models are kept, as the bundle keeps them) and the report's and evaluation jobs. `classify` runs the same models on
the same images in one process, with 2 torch threads (the baseline's jobs use the config's threads).

Prints JSON: images, seconds and images per second of each, their ratio, and the largest difference between the two
outputs' probabilities.

    python benchmarks/classify.py --images 1000 --out /tmp/classify_bench   # about 10 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _workflow import copy_workflow

REPO = Path(__file__).parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
KEPT = re.compile(r"^rule (shard_test|train_pseudolabel|evaluate\w*|plot_\w+|model_table|ablation|top5|bundle|"
                  r"augmentation_grid|final_submission):")  # fmt: skip
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def demo_run(workdir: Path) -> None:
    """The shipped demo DAG, once (its bundle and trained models are what both paths use)."""
    if (workdir / "results/bundle/manifest.json").exists():
        return
    copy_workflow(REPO, workdir)
    subprocess.run([*SNAKEMAKE, "--cores", "2", "final_submission"], cwd=workdir, env=ENV, check=True,
                   capture_output=True)  # fmt: skip


def new_images(workdir: Path, folder: Path, n: int) -> None:
    """`n` images: the demo's test images over and over, each under a new name (a new sample)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sources = sorted((workdir / "data/demo/test").glob("*.jpg"))
    for k in range(n):
        shutil.copyfile(sources[k % len(sources)], folder / f"new_{k:06d}.jpg")


def baseline_commands(workdir: Path, folder: Path) -> list[str]:
    """The DAG's shell commands for its test-dependent jobs with data.test_dir = `folder`, in the printed order,
    but the pseudo-label retraining and the report's jobs."""
    (workdir / "new.yaml").write_text(f"data: {{test_dir: {folder}}}\nreport: {{test_labels: ''}}\n")
    dry = subprocess.run([*SNAKEMAKE, "-n", "-p", "--configfile", "new.yaml", "--", "final_submission"],
                         cwd=workdir, env=ENV, capture_output=True, text=True, check=True)  # fmt: skip
    commands, skip = [], False
    for line in dry.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            skip = bool(KEPT.match(line.removeprefix("local")))
        elif line.startswith("Shell command: ") and not skip:
            commands.append(line.removeprefix("Shell command: "))
    return commands


def time_baseline(workdir: Path, commands: list[str]) -> float:
    prefix = f"export PATH={Path(sys.executable).parent}:$PATH; "
    start = time.monotonic()
    for command in commands:
        subprocess.run(["bash", "-c", prefix + command], cwd=workdir, env=ENV, check=True)
    return time.monotonic() - start


def time_classify(bundle: Path, folder: Path, out: Path) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "deepsea.cli", "classify", "--bundle", str(bundle), "--images",
                    str(folder), "--out", str(out), "--all-probabilities", "--threads", "2", "--device", "cpu"],
                   env=ENV, check=True, capture_output=True)  # fmt: skip
    return time.monotonic() - start


def largest_difference(submission: Path, classified: Path) -> float:
    with gzip.open(submission, "rt") as handle:
        rows = list(csv.reader(handle))
    classes, want = rows[0][1:], {row[0]: np.array(row[1:], float) for row in rows[1:]}
    with open(classified) as handle:
        table = list(csv.reader(handle))
    at = [table[0].index(c) for c in classes]
    got = {row[0]: np.array([row[k] for k in at], float) for row in table[1:]}
    return float(max(np.abs(want[i] - got[i]).max() for i in want))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="new images (the demo's test images, renamed)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/deepsea_classify_bench"))
    args = parser.parse_args()
    trained = args.out / "trained"
    demo_run(trained)
    folder = args.out / "new_images"
    new_images(trained, folder, args.images)
    bundle = args.out / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.copytree(trained / "results/bundle", bundle)
    classify_seconds = time_classify(bundle, folder, args.out / "classified.csv")
    baseline = args.out / "baseline"
    shutil.rmtree(baseline, ignore_errors=True)
    shutil.copytree(trained, baseline, symlinks=True)
    commands = baseline_commands(baseline, folder)
    baseline_seconds = time_baseline(baseline, commands)
    submission = next((baseline / "results/submission").glob("*.csv.gz"))
    result = {
        "images": args.images,
        "classify": {"seconds": round(classify_seconds, 1), "images_per_s": round(args.images / classify_seconds, 1)},
        "workflow_path": {
            "jobs": len(commands),
            "seconds": round(baseline_seconds, 1),
            "images_per_s": round(args.images / baseline_seconds, 1),
        },
        "ratio_classify_to_workflow": round(baseline_seconds / classify_seconds, 2),
        "max_abs_difference": largest_difference(submission, args.out / "classified.csv"),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
