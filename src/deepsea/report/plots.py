"""The report's figures: what a user looks at to decide which model helps and where the classifier errs.

One function per figure, each reading the pipeline's own outputs (packed images, training logs, evaluations,
predictions, ensemble weights) and writing one PNG atomically. matplotlib runs headless (Agg). Figures scale from
the 4-class test set to the 121 classes of NDSB: class labels are drawn only where they stay readable.
"""

from __future__ import annotations

import csv
import logging
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from deepsea.data.imageset import ImageSet  # noqa: E402
from deepsea.io import atomic_path, read_json  # noqa: E402

log = logging.getLogger(__name__)

LABELLED_CLASSES = 40  # above this, class names on axes overlap: show indices instead
DPI = 100


def _save(fig: plt.Figure, out: str | os.PathLike[str]) -> None:
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)
    log.info("figure -> %s", out)


def _class_ticks(ax: plt.Axes, names: Sequence[str], axis: str = "x") -> None:
    positions = np.arange(len(names))
    labels = list(names) if len(names) <= LABELLED_CLASSES else [str(i) for i in positions]
    if len(names) > LABELLED_CLASSES:
        positions, labels = positions[::10], labels[::10]
    if axis == "x":
        ax.set_xticks(positions, labels, rotation=90, fontsize=7)
    else:
        ax.set_yticks(positions, labels, fontsize=7)


# ------------------------------------------------------------------------------------------------ data set


def plot_class_counts(train: ImageSet, out: str | os.PathLike[str], note: str = "") -> None:
    """Training images per class, largest first: how long the tail is. `note`: a line below the title (the run's
    orientation decision, which the report shows here, with the data it was measured on)."""
    counts = np.bincount(train.labels, minlength=len(train.class_names))
    order = np.argsort(-counts, kind="stable")
    fig, ax = plt.subplots(figsize=(max(6.0, 0.12 * len(counts) + 3), 4))
    ax.bar(np.arange(len(counts)), counts[order], color="tab:blue")
    _class_ticks(ax, [train.class_names[i] for i in order])
    ax.set_ylabel("training images")
    title = f"{len(train)} training images in {len(counts)} classes (min {counts.min()}, max {counts.max()})"
    width = max(60, round(14 * fig.get_figwidth()))  # characters of the note per line at the title's font size
    ax.set_title("\n".join([title, *textwrap.wrap(note, width)]), fontsize=10 if note else None)
    if counts.max() > 20 * max(1, counts.min()):
        ax.set_yscale("log")
    _save(fig, out)


def plot_image_sizes(train: ImageSet, test: ImageSet, out: str | os.PathLike[str]) -> None:
    """Histogram of the longest image side, train and test: the input size and fixed scales must suit it."""
    sides = {name: np.array([max(im.shape) for im in data]) for name, data in (("train", train), ("test", test))}
    top = max(int(s.max()) for s in sides.values() if len(s))
    bins = np.unique(np.geomspace(1, max(2, top), 40).round())
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in sides.items():
        ax.hist(values, bins=bins.tolist(), alpha=0.6, label=f"{name} (median {np.median(values):.0f} px)")
    ax.set_xscale("log")
    ax.set_xlabel("longest side (px)")
    ax.set_ylabel("images")
    ax.legend()
    _save(fig, out)


def sample_grid(train: ImageSet, out: str | os.PathLike[str], per_class: int = 6, cell: int = 64) -> None:
    """`per_class` images of every class (fewer if the class has fewer), each shrunk to fit a cell but never
    enlarged, so relative sizes stay visible; the class name on the left."""
    label_width = 220
    rows = []
    for c, name in enumerate(train.class_names):
        members = np.flatnonzero(train.labels == c)[:per_class]
        row = np.full((cell + 4, label_width + per_class * (cell + 4)), 255, np.uint8)
        cv2.putText(row, name[:30], (4, cell // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1, cv2.LINE_AA)
        for k, index in enumerate(members):
            image = train.image(int(index))
            scale = min(1.0, cell / max(image.shape))
            if scale < 1.0:
                size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            h, w = image.shape
            y, x = 2 + (cell - h) // 2, label_width + k * (cell + 4) + (cell - w) // 2
            row[y : y + h, x : x + w] = image
        rows.append(row)
    ok, png = cv2.imencode(".png", np.vstack(rows))
    assert ok
    with atomic_path(out) as tmp:
        tmp.write_bytes(png.tobytes())
    log.info("sample grid of %d classes -> %s", len(rows), out)


# -------------------------------------------------------------------------------------------- augmentation


def plot_tta_views(meta_path: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """The test-time views saved with a prediction: how the quasi-random points cover each parameter pair."""
    meta = read_json(meta_path)
    views = meta["views"]
    if not views:
        raise ValueError(f"{meta_path}: no views saved with this prediction.")
    get = {key: np.array([v[key] for v in views], dtype=float) for key in views[0]}
    flip = get["flip"].astype(bool)
    pairs = [("rotation", "zoom"), ("shift_x", "shift_y"), ("shear", "stretch")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (a, b) in zip(axes, pairs, strict=True):
        ax.scatter(get[a][~flip], get[b][~flip], s=18, label="not flipped")
        ax.scatter(get[a][flip], get[b][flip], s=18, marker="x", label="flipped")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
    axes[0].legend(fontsize=8)
    method = meta.get("tta", {}).get("method", "?")
    fig.suptitle(f"{len(views)} test-time views ({method}), as saved with {Path(meta_path).name}")
    _save(fig, out)


# ---------------------------------------------------------------------------------------------- training


def plot_learning_curve(log_csv: str | os.PathLike[str], name: str, out: str | os.PathLike[str]) -> None:
    """Train and validation loss and accuracy against training steps, for one model."""
    with open(log_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{log_csv}: the training log is empty; retrain {name}.")
    column = {key: np.array([float(r[key]) for r in rows]) for key in rows[0] if rows[0][key] != ""}
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    loss_ax.plot(column["step"], column["train_loss"], label="train (augmented)")
    loss_ax.plot(column["step"], column["valid_loss"], label="validation (centre view)")
    loss_ax.set_ylabel("log loss")
    if "train_accuracy" in column:
        acc_ax.plot(column["step"], column["train_accuracy"], label="train (augmented)")
    acc_ax.plot(column["step"], column["valid_accuracy"], label="validation (centre view)")
    acc_ax.set_ylabel("top-1 accuracy")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{name}: {int(column['step'][-1])} steps, final validation loss {column['valid_loss'][-1]:.4f}")
    _save(fig, out)


# ------------------------------------------------------------------------------------------------ models


def model_table(
    eval_paths: Sequence[str | os.PathLike[str]], names: Sequence[str], out_csv: str | os.PathLike[str]
) -> list[dict[str, object]]:
    """One row per evaluated model: validation log loss of what moved on, of the TTA mean and the centre view (or
    unfused), top-1..5."""
    rows = []
    for path, name in zip(eval_paths, names, strict=True):
        scores = read_json(path)
        valid = scores["valid"]
        row: dict[str, object] = {"model": name, "valid_log_loss": round(valid["log_loss"], 4)}
        if "tta" in scores:
            row["tta_log_loss"] = round(scores["tta"]["log_loss"], 4)
        if "centre" in scores:
            row["centre_view_log_loss"] = round(scores["centre"]["log_loss"], 4)
            row["tta_gain"] = round(scores["tta_gain"], 4)
            if "tta_gain_se" in scores:  # evaluations written before it lack it
                row["tta_gain_se"] = round(scores["tta_gain_se"], 4)
        if "views_used" in scores:  # what moved on (views_choice.py): valid_log_loss is its score
            row["views_used"] = scores["views_used"]
        if "unfused" in scores:
            row["unfused_log_loss"] = round(scores["unfused"]["log_loss"], 4)
            row["fusion_gain"] = round(scores["fusion_gain"], 4)
            if "fusion_gain_se" in scores:
                row["fusion_gain_se"] = round(scores["fusion_gain_se"], 4)
        row.update({f"top{k}": round(valid[f"top{k}_accuracy"], 3) for k in range(1, 6)})
        row["n_valid"] = valid["n_images"]
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    log.info("%d models -> %s", len(rows), out_csv)
    return rows


def plot_table(csv_path: str | os.PathLike[str], title: str, out: str | os.PathLike[str]) -> None:
    """A CSV table drawn as a figure (the report shows figures inline; the CSV is attached beside it)."""
    with open(csv_path, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    fig, ax = plt.subplots(figsize=(min(20.0, 1.0 * len(header) + 1), 0.3 * len(body) + 0.9))
    ax.axis("off")
    table = ax.table(cellText=body or [[""] * len(header)], colLabels=header, loc="center", cellLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(header))))
    ax.set_title(title, fontsize=10)
    _save(fig, out)


# ------------------------------------------------------------------------------------------- final model


def plot_confusion(
    probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str, out: str | os.PathLike[str]
) -> None:
    """Row-normalised confusion matrix (true class down, predicted across) and per-class accuracy."""
    n = len(class_names)
    confusion = np.zeros((n, n))
    np.add.at(confusion, (labels, probs.argmax(axis=1)), 1)
    support = confusion.sum(axis=1)
    normalised = confusion / np.maximum(support, 1)[:, None]
    per_class = np.diag(normalised)
    side = min(14.0, 4 + 0.18 * n)
    fig, (cm_ax, acc_ax) = plt.subplots(1, 2, figsize=(2 * side, side), gridspec_kw={"width_ratios": [1.2, 1]})
    image = cm_ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=cm_ax, fraction=0.046)
    _class_ticks(cm_ax, class_names, "x")
    _class_ticks(cm_ax, class_names, "y")
    cm_ax.set_xlabel("predicted class")
    cm_ax.set_ylabel("true class")
    cm_ax.set_title("confusion matrix (rows sum to 1)")
    acc_ax.barh(np.arange(n), per_class, color=np.where(support > 0, "tab:green", "lightgrey"))
    _class_ticks(acc_ax, [f"{name} ({int(s)})" for name, s in zip(class_names, support, strict=True)], "y")
    acc_ax.invert_yaxis()
    acc_ax.set_xlim(0, 1)
    acc_ax.set_xlabel("accuracy (validation images of the class in brackets)")
    acc_ax.set_title("per-class accuracy")
    fig.suptitle(title)
    _save(fig, out)


# ---------------------------------------------------------------------------------------------- ensemble


def plot_ensemble(
    weights_path: str | os.PathLike[str], cv_csv: str | os.PathLike[str], out: str | os.PathLike[str]
) -> None:
    """Fitted weights per model, and the cross-validated loss of the top-k weighted models (model selection)."""
    summary = read_json(weights_path)
    weights, chosen = summary["weights"], summary.get("mean", "arithmetic")
    curves: dict[str, list[tuple[int, float]]] = {}
    with open(cv_csv, newline="") as handle:
        for r in csv.DictReader(handle):
            curves.setdefault(r.get("mean", "arithmetic"), []).append((int(r["top_k"]), float(r["cv_log_loss"])))
    names = sorted(weights, key=weights.get, reverse=True)
    fig, (w_ax, cv_ax) = plt.subplots(1, 2, figsize=(12, max(4.0, 0.3 * len(names) + 1.5)))
    w_ax.barh(np.arange(len(names)), [weights[n] for n in names], color="tab:orange")
    w_ax.set_yticks(np.arange(len(names)), names, fontsize=8)
    w_ax.invert_yaxis()
    w_ax.set_xlabel("weight (on the simplex)")
    adoption = summary.get("adoption", {"adopted": "fitted"})
    used = "fitted on validation"
    if adoption["adopted"] != "fitted":
        used = f"uniform (the fitted ones did not gain > {adoption['min_gain_se']:g} SE)"
    w_ax.set_title(f"ensemble weights used: {used} ({chosen} blend)", fontsize=10)
    for mean, cv in curves.items():
        ks, losses = zip(*cv, strict=True)
        cv_ax.plot(ks, losses, marker="o", label=f"{mean} blend" + (" (used)" if mean == chosen else ""))
        best = int(np.argmin(losses))
        cv_ax.annotate(f"best k = {ks[best]}", (ks[best], losses[best]), textcoords="offset points", xytext=(5, 8))
    if curves:
        cv_ax.legend(fontsize=8)
    cv_ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # k counts models
    cv_ax.set_xlabel("k (the k highest-weighted models, refitted per fold)")
    cv_ax.set_ylabel("cross-validated log loss")
    cv_ax.set_title("model selection")
    cv_ax.grid(alpha=0.3)
    _save(fig, out)


# ------------------------------------------------------------------------------------------- calibration


def plot_reliability(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    after_name: str,
    out: str | os.PathLike[str],
) -> None:
    """One reliability diagram per panel (title, probabilities before and after, labels): each confidence bin's
    accuracy against its mean confidence, before and after calibration, with the expected calibration error."""
    from deepsea.report.reliability import expected_calibration_error, reliability

    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 4.6), squeeze=False)
    for ax, (title, before, after, labels) in zip(axes[0], panels, strict=True):
        ax.plot([0, 1], [0, 1], color="lightgrey", linestyle="--", label="calibrated")
        for probs, name, style in ((before, "uncalibrated", "o-"), (after, after_name, "s-")):
            confidence, accuracy, _count = reliability(probs, labels)
            ece = expected_calibration_error(probs, labels)
            ax.plot(confidence, accuracy, style, label=f"{name} (ECE {ece:.3f})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (mean top probability of the bin)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{title} ({len(labels)} images)")
        ax.legend(fontsize=8, loc="lower right")
    _save(fig, out)
