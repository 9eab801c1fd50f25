"""What `data.orientation: auto` buys a user with upright images who sets only `data:`: the default config before
(`data.orientation: free`, every view turned through 360 degrees and mirrored, as all versions before the key
existed; tests/unit/test_orientation_jobs.py shows free changes no byte) and after (`auto`, decided from the pack
report), with `workflow/configs/upright.yaml` beside them, on the same images in the same call. A quality check
with its baseline, not a speed benchmark.

Data: scikit-learn's digits (real scans, 8 x 8, white on black; 1,400 training and 397 test images) and a made
glyph set whose classes differ by orientation alone (b d p q 6 9 n u M W in OpenCV's Hershey fonts, dark ink on a
light noisy background, tilted by up to 8 degrees; 1,500 training and 500 test images): a cyclic (rotation-
invariant) model cannot tell b from q or 6 from 9 there, so it shows what the ensemble does with such models under
upright views. A logistic regression on the raw pixels (16 x 16) is the floor any of them must beat.

Prints JSON: per data set, the pack report's decision and upright score, and per variant the final submission's
validation and test log loss and test accuracy (the ablation table's last row), the ensemble weights and the wall
time.

    python benchmarks/orientation.py --out /tmp/orientation   # about 40 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import cv2
import numpy as np
from default_length import REPO, run_version, write_digits

GLYPHS = {"b": "b", "d": "d", "p": "p", "q": "q", "six": "6", "nine": "9", "n": "n", "u": "u", "M": "M", "W": "W"}
FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
)
VARIANTS = {  # name: (config files of the workflow before the user's, data options)
    "before (free)": ([], {"orientation": "free"}),
    "after (auto)": ([], {}),
    "upright.yaml": (["workflow/configs/upright.yaml"], {}),
}


def glyph_image(text: str, rng: np.random.Generator) -> np.ndarray:
    """One glyph: a random font, size, stroke and background, tilted by up to 8 degrees, shifted, noisy."""
    size = int(rng.integers(40, 57))
    background = float(rng.uniform(170, 235))
    canvas = np.full((size, size), round(background), np.uint8)
    font = int(rng.choice(FONTS)) | (cv2.FONT_ITALIC if rng.random() < 0.2 else 0)
    scale, thickness = float(rng.uniform(0.9, 1.3)), int(rng.integers(1, 4))
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    origin = ((size - w) // 2, (size + h) // 2)
    cv2.putText(canvas, text, origin, font, scale, int(rng.integers(20, 81)), thickness, cv2.LINE_AA)
    turn = cv2.getRotationMatrix2D((size / 2, size / 2), float(rng.uniform(-8, 8)), 1.0)
    turn[:, 2] += rng.uniform(-3, 3, size=2)
    warped = cv2.warpAffine(canvas, turn, (size, size), borderValue=round(background)).astype(np.float32)
    return np.clip(warped + rng.normal(0, 8, warped.shape), 0, 255).astype(np.uint8)


def write_glyphs(folder: Path, n_train: int = 150, n_test: int = 50, seed: int = 0) -> None:
    """train/<class>/*.png (n_train per class), test/*.png (n_test per class, shuffled names), test_labels.csv."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, text in GLYPHS.items():
        (folder / "train" / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_train):
            cv2.imwrite(str(folder / "train" / name / f"{i:04d}.png"), glyph_image(text, rng))
    (folder / "test").mkdir(parents=True, exist_ok=True)
    test = [(name, glyph_image(text, rng)) for name, text in GLYPHS.items() for _ in range(n_test)]
    for k in rng.permutation(len(test)):
        file = f"{len(rows):04d}.png"
        cv2.imwrite(str(folder / "test" / file), test[k][1])
        rows.append((file, test[k][0]))
    with open(folder / "test_labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("image", "class"), *rows])


def pixel_baseline(data: Path) -> dict:
    """Logistic regression on the raw pixels (16 x 16, light background): the floor every variant must beat."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss

    def pixels(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        return cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA).ravel() / 255.0

    classes = sorted(p.name for p in (data / "train").iterdir())
    x = [pixels(f) for c in classes for f in sorted((data / "train" / c).glob("*.png"))]
    y = [c for c in classes for _ in sorted((data / "train" / c).glob("*.png"))]
    with open(data / "test_labels.csv", newline="") as handle:
        labels = dict(csv.reader(handle))
    tests = sorted((data / "test").glob("*.png"))
    model = LogisticRegression(max_iter=2000, C=1.0).fit(np.array(x), y)
    probs = model.predict_proba(np.array([pixels(f) for f in tests]))
    truth = [labels[f.name] for f in tests]
    return {
        "test_log_loss": round(float(log_loss(truth, probs, labels=model.classes_)), 4),
        "test_accuracy": round(float(accuracy_score(truth, model.classes_[probs.argmax(1)])), 4),
    }


def run_variant(workdir: Path, data: Path, configs: list[str], options: dict) -> dict:
    result = run_version(REPO, workdir, data, configs, data_options=options)
    weights = json.loads((workdir / "results/ensemble/weights.json").read_text())
    result["ensemble_weights"] = {k: round(v, 3) for k, v in weights.get("weights", {}).items() if v > 0.0005}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/deepsea_orientation"))
    parser.add_argument("--sets", nargs="+", default=["digits", "glyphs"])
    args = parser.parse_args()
    writers = {"digits": write_digits, "glyphs": write_glyphs}
    result: dict[str, dict] = {}
    for name in args.sets:
        data = args.out / "data" / name
        if not (data / "test_labels.csv").exists():
            writers[name](data)
        runs: dict[str, dict] = {"pixels_logistic_regression": pixel_baseline(data)}
        for variant, (configs, options) in VARIANTS.items():
            workdir = args.out / name / variant.split(" ")[0].replace(".yaml", "")
            runs[variant] = run_variant(workdir, data, configs, options)
        report = json.loads((args.out / name / "after/results/data/train_report.json").read_text())
        result[name] = {"upright_score": report["upright_score"], "auto_decides": report["orientation_auto"], **runs}
        print(json.dumps({name: result[name]}, indent=2), flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
