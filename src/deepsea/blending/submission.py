"""`deepsea submit` and `deepsea score`: the gzipped CSV a competition accepts, validated first.

Format (NDSB): header `image,<class names>`, one row per test image, probabilities. The file is checked before it
is written (every test id exactly once, no NaN, rows sum to 1, columns are exactly the training classes) so that a
broken submission is never produced; the same checks are run on any CSV a user asks us to score.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deepsea.errors import DataMismatchError, DeepseaError
from deepsea.io import write_gzip_text
from deepsea.metrics import log_loss, topk_accuracy
from deepsea.predictions import Predictions, average

log = logging.getLogger(__name__)

ROW_SUM_TOLERANCE = 1e-4


def column_order(class_names: list[str], class_order: str) -> list[str]:
    """Class columns: `sorted` (default), or the names listed one per line in the file `class_order`."""
    if class_order == "sorted":
        return sorted(class_names)
    path = Path(class_order)
    if not path.is_file():
        raise DeepseaError(
            f"submission.class_order: '{class_order}' is neither 'sorted' nor an existing file listing the class "
            "names one per line."
        )
    order = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if sorted(order) != sorted(class_names) or len(set(order)) != len(order):
        unknown = sorted(set(order) - set(class_names))
        missing = sorted(set(class_names) - set(order))
        raise DataMismatchError(
            f"{path}: the class order must list every training class exactly once "
            f"(unknown: {unknown[:5]}, missing: {missing[:5]})."
        )
    return order


def validate_submission(
    ids: list[str], class_names: list[str], probs: np.ndarray, expected_ids: list[str], expected_classes: list[str]
) -> None:
    """Raise `DataMismatchError` naming the first problem: ids, columns, NaN, negative values, row sums."""
    if len(set(ids)) != len(ids):
        dup = next(image_id for image_id, n in Counter(ids).items() if n > 1)
        raise DataMismatchError(f"submission: image id '{dup}' appears more than once.")
    missing = sorted(set(expected_ids) - set(ids))
    if missing:
        raise DataMismatchError(f"submission: {len(missing)} test image(s) missing, e.g. '{missing[0]}'.")
    extra = sorted(set(ids) - set(expected_ids))
    if extra:
        raise DataMismatchError(f"submission: {len(extra)} id(s) that are not test images, e.g. '{extra[0]}'.")
    if sorted(class_names) != sorted(expected_classes) or len(class_names) != len(expected_classes):
        raise DataMismatchError(
            f"submission: columns {sorted(set(class_names) ^ set(expected_classes))[:5]} do not match the classes."
        )
    if probs.shape != (len(ids), len(class_names)):
        raise DataMismatchError(f"submission: shape {probs.shape} for {len(ids)} ids and {len(class_names)} classes.")
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        raise DataMismatchError(f"submission: NaN or inf in the row of image '{ids[int(np.argmax(bad))]}'.")
    if (probs < 0).any():
        row = int(np.argmax((probs < 0).any(axis=1)))
        raise DataMismatchError(f"submission: negative probability in the row of image '{ids[row]}'.")
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise DataMismatchError(f"submission: the row of image '{ids[row]}' sums to {sums[row]:.6f}, not 1.")


def write_submission(
    path: str | os.PathLike[str], ids: list[str], class_names: list[str], probs: np.ndarray, class_order: str = "sorted"
) -> None:
    """Validate and write `image,<classes>` rows as gzipped CSV (byte-identical for identical input)."""
    probs = np.asarray(probs, dtype=np.float64)
    columns = column_order(class_names, class_order)
    probs = probs[:, [class_names.index(c) for c in columns]]
    probs = probs / probs.sum(axis=1, keepdims=True)  # float32 inputs sum to 1 only within ~1e-7
    validate_submission(ids, columns, probs, ids, class_names)
    order = sorted(range(len(ids)), key=lambda i: _natural_key(ids[i]))
    text = io.StringIO()
    # csv quotes an id or class name holding a comma or quote (a file 'img, 2.jpg'); plain names are written as is
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["image", *columns])
    writer.writerows([ids[i], *(f"{p:.6g}" for p in probs[i])] for i in order)
    write_gzip_text(path, text.getvalue())
    log.info("wrote %s: %d images x %d classes", path, len(ids), len(columns))


def _natural_key(image_id: str) -> tuple:
    """Sort '2.jpg' before '10.jpg' (NDSB ids are numbers), other ids alphabetically after them."""
    stem = image_id.split("/")[-1].split(".")[0]
    return (0, int(stem), image_id) if stem.isdigit() else (1, 0, image_id)


def read_submission(path: str | os.PathLike[str]) -> tuple[list[str], list[str], np.ndarray]:
    """Read a (gzipped) submission CSV into (ids, class names, probabilities)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, EOFError) as err:
        raise DeepseaError(f"{path}: cannot read the submission ({err}).") from err
    if not rows or rows[0][:1] != ["image"]:
        raise DeepseaError(f"{path}: not a submission file (the header must start with 'image').")
    header, body = rows[0], rows[1:]
    try:
        probs = np.array([[float(v) for v in row[1:]] for row in body], dtype=np.float64).reshape(len(body), -1)
    except ValueError as err:
        raise DeepseaError(f"{path}: a probability is not a number ({err}).") from err
    return [row[0] for row in body], header[1:], probs


def read_labels(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read true test labels (`image,class` CSV): what the demo generator writes and the scorer reads."""
    path = Path(path)
    if not path.is_file():
        raise DeepseaError(f"{path}: labels file not found (expected a CSV with columns image,class).")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"image", "class"} <= set(reader.fieldnames):
            raise DeepseaError(f"{path}: the labels CSV needs the columns 'image' and 'class'.")
        return {row["image"]: row["class"] for row in reader}


def score_submission(submission: str | os.PathLike[str], labels_path: str | os.PathLike[str]) -> dict[str, float]:
    """Log loss and accuracy of a submission against known test labels."""
    ids, class_names, probs = read_submission(submission)
    truth = read_labels(labels_path)
    validate_submission(ids, class_names, probs, list(truth), class_names)
    return _score_against(ids, class_names, probs, truth, labels_path)


def _score_against(
    ids: list[str],
    class_names: list[str],
    probs: np.ndarray,
    truth: dict[str, str],
    labels_path: str | os.PathLike[str],
) -> dict[str, float]:
    """Log loss and accuracy of rows `ids` against the true class names in `truth`."""
    y = truth_columns(ids, class_names, truth, labels_path)
    return {"log_loss": log_loss(y, probs), "accuracy": topk_accuracy(y, probs, 1), "n_images": len(ids)}


def truth_columns(
    ids: Sequence[str], class_names: Sequence[str], truth: dict[str, str], labels_path: str | os.PathLike[str]
) -> np.ndarray:
    """The column of each row's true class (`truth`: id -> class name, read_labels), refusing a labels file with a
    class the predictions lack or without a class for one of `ids`."""
    unknown = sorted(set(truth.values()) - set(class_names))
    if unknown:
        raise DataMismatchError(f"{labels_path}: classes not in the predictions' columns: {unknown[:5]}.")
    missing = [i for i in ids if i not in truth]
    if missing:
        raise DataMismatchError(f"{labels_path}: no known class for {len(missing)} test images (e.g. {missing[0]}).")
    column = {name: j for j, name in enumerate(class_names)}
    return np.array([column[truth[i]] for i in ids])


def submit(
    pred_paths: list[str], test_data: str | os.PathLike[str], out: str | os.PathLike[str], class_order: str = "sorted"
) -> None:
    """Average the test predictions in `pred_paths` and write the validated submission for every test image."""
    from deepsea.data.imageset import ImageSet  # local: scoring a CSV should not need the packed data

    test_ids = ImageSet.load(test_data).ids.tolist()
    averaged = average(pred_paths)
    if sorted(averaged.ids) != sorted(test_ids):
        missing = sorted(set(test_ids) - set(averaged.ids))
        raise DataMismatchError(
            f"{pred_paths[0]}: its image ids differ from the packed test set {test_data} "
            f"({len(missing)} test ids missing, e.g. {missing[:3]}); rerun its prediction."
        )
    write_submission(out, averaged.ids, averaged.class_names, averaged.probs, class_order)


def score_predictions(pred_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]) -> dict[str, float]:
    """Log loss and accuracy of a test prediction file (.npy with its meta) against known test labels."""
    return score_probabilities(Predictions.load(pred_path), read_labels(labels_path), labels_path, str(pred_path))


def score_probabilities(
    predicted: Predictions, truth: dict[str, str], labels_path: str | os.PathLike[str], where: str
) -> dict[str, float]:
    """Log loss and accuracy of predictions (`where` names them) whose ids must be exactly the labelled ids."""
    ids = predicted.ids
    missing = sorted(set(truth) - set(ids))
    if missing or len(ids) != len(truth):
        raise DataMismatchError(f"{where}: its ids are not the labelled test ids (e.g. missing {missing[:3]}).")
    return _score_against(ids, predicted.class_names, predicted.probs, truth, labels_path)


def write_top_k(submission: str | os.PathLike[str], out: str | os.PathLike[str], k: int = 5) -> None:
    """For each test image, the k most likely classes with their probabilities (most likely first): what a person
    checking the classifier's output by hand reads. Rows in the submission's order."""
    from deepsea.io import atomic_path

    ids, class_names, probs = read_submission(submission)
    k = max(1, min(k, len(class_names)))
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    header = ["image"] + [f"{field}_{j}" for j in range(1, k + 1) for field in ("class", "prob")]
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for image, row, order in zip(ids, probs, top, strict=True):
            writer.writerow([image] + [v for j in order for v in (class_names[j], f"{row[j]:.6f}")])
    log.info("top-%d classes of %d test images -> %s", k, len(ids), out)
