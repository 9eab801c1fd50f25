"""Seed-sized data on one machine: pack, split, features and a TTA pass over ~30,000 train / 130,000 test images.

Generates a synthetic set of the seed's size with the demo generator (121 classes, images about 20-300 px), then
runs each stage as the workflow does (one `deepsea` process per stage, with the given worker count) and reports
its wall time and peak memory: the proportional set size (PSS) summed over the stage's whole process tree (worker
processes included; shared pages counted once), sampled every 0.2 s. TTA runs twice with the same small model
and views, over a tenth of the test set and over all of it: streaming in chunks should make its peak memory grow
only by the packed images and the outputs (compare the two growths).
Goals (issue 10): pack and features each under 15 minutes on 2 cores, peak memory under 8 GiB, TTA memory
independent of the test-set size. Run by hand (it takes a while); prints JSON.

    python benchmarks/scale.py [--train 30000] [--test 130000] [--workers 2] [--views 4] [--dir /tmp/deepsea-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

GIB = 1024**3


def _pss(pid: int) -> int:
    """Proportional set size of one process: shared pages (a forked worker reading the parent's images) are split
    between the processes that share them, so a tree's sum is its real memory (plain RSS would count them twice)."""
    try:
        for line in (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            children.setdefault(int(stat[stat.rindex(")") + 2 :].split()[1]), []).append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _tree_memory(root: int) -> int | None:
    """Memory of `root` and all its descendants (sum of PSS), or None when a process started or ended while the
    tree was read: the processes are read one after another, and a worker exiting between two reads hands its share
    of the pages it shared with the parent back to the parent, which would then be counted twice."""
    before = _tree(root)
    total = sum(_pss(pid) for pid in before)
    return total if _tree(root) == before else None


def run_stage(name: str, argv: list[str], log_dir: Path) -> dict[str, float]:
    """Run one `deepsea` stage; return its wall time (s) and peak process-tree memory (PSS, GiB)."""
    log_file = open(log_dir / f"{name}.log", "w")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "deepsea.cli", *argv], stdout=log_file, stderr=subprocess.STDOUT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_memory(proc.pid) or 0)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    log_file.close()
    if code != 0:
        raise SystemExit(f"stage {name} failed (exit {code}); see {log_dir / (name + '.log')}")
    result = {"seconds": round(wall, 1), "peak_pss_gib": round(peak / GIB, 3)}
    print(f"{name}: {result}", file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=30_000)
    parser.add_argument("--test", type=int, default=130_000)
    parser.add_argument("--classes", type=int, default=121)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--views", type=int, default=4, help="TTA views of the memory check (70 for the real run)")
    parser.add_argument("--dir", default="/tmp/deepsea-scale")
    parser.add_argument("--keep", action="store_true", help="keep the generated images and outputs")
    args = parser.parse_args()
    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    (root / "logs").mkdir(parents=True)
    logs, w = root / "logs", str(args.workers)
    stages: dict[str, dict[str, float]] = {}

    stages["generate"] = run_stage(
        "generate",
        ["make-demo-data", "--out", str(root / "data"), "--n-train", str(args.train), "--n-test", str(args.test),
         "--classes", str(args.classes), "--imbalance", "0.03", "--workers", w],
        logs,
    )  # fmt: skip
    for subset in ("train", "test"):
        stages[f"pack_{subset}"] = run_stage(
            f"pack_{subset}",
            ["pack", "--dir", str(root / "data" / subset), "--subset", subset, "--out", str(root / f"{subset}.npz"),
             "--report", str(root / f"{subset}_report.json"), "--workers", w],
            logs,
        )  # fmt: skip
    stages["split"] = run_stage(
        "split", ["split", "--data", str(root / "train.npz"), "--seed", "0", "--out", str(root / "valid.json")], logs
    )
    for subset in ("train", "test"):
        stages[f"features_{subset}"] = run_stage(
            f"features_{subset}",
            ["extract-features", "--data", str(root / f"{subset}.npz"), "--out", str(root / f"features_{subset}.npz"),
             "--report", str(root / f"features_{subset}.json"), "--workers", w],
            logs,
        )  # fmt: skip

    # a small model (a few steps: only its memory and speed matter here), then TTA over 10% and 100% of the test set
    settings = {"name": "scale", "architecture": "plain", "input_size": 32,
                "params": {"widths": [16, 32, 64], "dense": 128}, "train": {"steps": 20, "workers": 0}}  # fmt: skip
    stages["train_small_model"] = run_stage(
        "train_small_model",
        ["train", "--settings", json.dumps(settings), "--data", str(root / "train.npz"), "--split",
         str(root / "valid.json"), "--out", str(root / "model.pt"), "--log-csv", str(root / "log.csv"),
         "--device", "cpu", "--threads", w],
        logs,
    )  # fmt: skip
    from deepsea.imageset import ImageSet

    test = ImageSet.load(root / "test.npz")
    tenth = test.subset(list(range(0, len(test), 10)))
    tenth.save(root / "test_tenth.npz")
    packed_bytes = {"tenth": tenth.pixels.nbytes, "full": test.pixels.nbytes}
    tta = json.dumps({"method": "halton", "views": args.views, "translation": 2})
    for label, data in (("tenth", root / "test_tenth.npz"), ("full", root / "test.npz")):
        stages[f"tta_{label}"] = run_stage(
            f"tta_{label}",
            ["predict", "--model", str(root / "model.pt"), "--data", str(data), "--subset", "test", "--out",
             str(root / f"pred_{label}.npy"), "--tta", tta, "--device", "cpu", "--threads", w, "--workers", "1"],
            logs,
        )  # fmt: skip
    growth = stages["tta_full"]["peak_pss_gib"] - stages["tta_tenth"]["peak_pss_gib"]
    data_growth = (packed_bytes["full"] - packed_bytes["tenth"]) / GIB
    result = {
        "benchmark": "scale",
        "train_images": args.train,
        "test_images": args.test,
        "classes": args.classes,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "stages": stages,
        "goals": {
            "pack_minutes": round((stages["pack_train"]["seconds"] + stages["pack_test"]["seconds"]) / 60, 1),
            "features_minutes": round(
                (stages["features_train"]["seconds"] + stages["features_test"]["seconds"]) / 60, 1
            ),
            "goal_minutes_each": 15,
            "peak_pss_gib": max(s["peak_pss_gib"] for s in stages.values()),
            "goal_peak_gib": 8,
            "tta_memory_growth_gib_tenth_to_full": round(growth, 3),
            "packed_test_images_growth_gib": round(data_growth, 3),
            "tta_images_per_s_full": round(args.test * (args.views + 1) / stages["tta_full"]["seconds"], 1),
        },
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(root / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
