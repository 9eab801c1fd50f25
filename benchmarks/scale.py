"""Seed-sized data on one machine: pack, split, features and a TTA pass over ~30,000 train / 130,000 test images.

Generates a synthetic set of NDSB's size with the demo generator (121 classes, images about 20-300 px), then
runs each stage as the workflow does (one `deepsea` process per stage, with the given worker count) and reports
its wall time and peak memory, summed over the stage's whole process tree (worker processes included), sampled
every 0.2 s: the proportional set size (PSS: shared pages counted once) and its anonymous part (`Pss_Anon`: the
memory the stage itself allocated; the rest is file pages such as the memory-mapped packed images, page cache the
kernel can drop). TTA runs twice with the same small model and views, over a tenth of the test set and over all
of it: streaming in chunks should make its anonymous memory grow only by the output rows (compare the growths).
Goals: pack and features each under 15 minutes on 2 cores, peak memory under 8 GiB, TTA memory
independent of the test-set size (up to its output rows). Run by hand (it takes a while); prints JSON.

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


def _pss(pid: int) -> tuple[int, int]:
    """(PSS, anonymous PSS) of one process in bytes: shared pages (a forked worker reading the parent's arrays)
    are split between the processes that share them, so a tree's sum is its real memory (plain RSS would count them
    twice)."""
    found = {"Pss:": 0, "Pss_Anon:": 0}
    try:
        for line in (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines():
            key = line.split(maxsplit=1)[0] if line else ""
            if key in found:
                found[key] = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return found["Pss:"], found["Pss_Anon:"]


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


def _tree_memory(root: int) -> tuple[int, int] | None:
    """Memory of `root` and all its descendants (sums of PSS and anonymous PSS), or None when a process started or
    ended while the tree was read: the processes are read one after another, and a worker exiting between two reads
    hands its share of the pages it shared with the parent back to the parent, which would then be counted twice."""
    before = _tree(root)
    sizes = [_pss(pid) for pid in before]
    if _tree(root) != before:
        return None
    return sum(s[0] for s in sizes), sum(s[1] for s in sizes)


def run_stage(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run one `deepsea` stage; return its wall time (s) and peak process-tree memory (PSS and anonymous, GiB)."""
    log_file = open(log_dir / f"{name}.log", "w")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepsea.cli", *argv],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    peak, peak_anon = 0, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_anon
        while not done.is_set():
            pss, anon = _tree_memory(proc.pid) or (0, 0)
            peak, peak_anon = max(peak, pss), max(peak_anon, anon)
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
    result = {
        "seconds": round(wall, 1),
        "peak_pss_gib": round(peak / GIB, 3),
        "peak_anon_gib": round(peak_anon / GIB, 3),
    }
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
    from deepsea.data.imageset import ImageSet

    test = ImageSet.load(root / "test.npz")
    tenth = test.subset(list(range(0, len(test), 10)))
    tenth.save(root / "test_tenth.npz")
    packed_bytes = {"tenth": tenth.pixels.nbytes, "full": test.pixels.nbytes}
    tta = json.dumps({"method": "halton", "views": args.views, "translation": 2})
    # twice: as users run it, and with glibc's mmap threshold fixed. By default glibc raises that threshold after
    # freeing a large block, so the forward passes' activations then come from the heap, which grows and is
    # trimmed in a sawtooth of ~0.2 GiB whose highest tooth a long run is likelier to sample; with a fixed
    # threshold every activation is mapped and unmapped, and the peak shows what the predictor itself holds.
    fixed = "_fixed_mmap_threshold"
    for variant, env in (("", {}), (fixed, {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)})):
        for label, data in (("tenth", root / "test_tenth.npz"), ("full", root / "test.npz")):
            stages[f"tta_{label}{variant}"] = run_stage(
                f"tta_{label}{variant}",
                ["predict", "--model", str(root / "model.pt"), "--data", str(data), "--subset", "test", "--out",
                 str(root / f"pred_{label}.npy"), "--tta", tta, "--device", "cpu", "--threads", w, "--workers", "1"],
                logs,
                env,
            )  # fmt: skip
    growth = stages["tta_full"]["peak_pss_gib"] - stages["tta_tenth"]["peak_pss_gib"]
    anon_growth = stages["tta_full"]["peak_anon_gib"] - stages["tta_tenth"]["peak_anon_gib"]
    fixed_anon_growth = stages[f"tta_full{fixed}"]["peak_anon_gib"] - stages[f"tta_tenth{fixed}"]["peak_anon_gib"]
    data_growth = (packed_bytes["full"] - packed_bytes["tenth"]) / GIB
    output_growth = 2 * 4 * args.classes * (args.test - len(tenth)) / GIB  # averaged + centre rows, float32
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
            "tta_pss_growth_gib_tenth_to_full": round(growth, 3),
            "tta_anon_growth_gib_tenth_to_full": round(anon_growth, 3),
            "tta_anon_growth_gib_tenth_to_full_fixed_mmap_threshold": round(fixed_anon_growth, 3),
            "packed_test_images_growth_gib": round(data_growth, 3),
            "output_rows_growth_gib": round(output_growth, 3),
            "tta_images_per_s_full": round(args.test * (args.views + 1) / stages["tta_full"]["seconds"], 1),
        },
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(root / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
