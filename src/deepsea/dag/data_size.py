"""Settings that follow the size of the labelled set, resolved once when the workflow is planned.

`splits.scheme: auto` is k-fold below KFOLD_BELOW training images and one hold-out split from there on: a tenth
held out of a few hundred images leaves a few dozen validation images, too few to fit the fusion, the ensemble's
weights and the final blend on (each choice's standard error is then as large as the gains it weighs), while k-fold
predicts every training image out of fold at `folds` trainings per entry, affordable exactly when the set is small.
Under k-fold an entry's fold models are its bag, so `bags` are dropped (with a note) instead of refused: the same
config runs under either scheme.

The number of training images is what the Snakemake DAG's shape needs before any job runs, so it is counted from
the folder listing (files with an image extension in class sub-folders), or read from `demo.n_train` when the data
is the demo set not yet generated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepsea.data.images import is_image_file

KFOLD_BELOW = 500  # training images: k-fold below, one hold-out split from here on


def _in_demo_dir(config: dict[str, Any]) -> bool:
    folder = Path(config["data"]["train_dir"]).resolve()
    return folder.is_relative_to(Path(config["demo"]["dir"]).resolve())


def count_training_images(train_dir: str | Path) -> int:
    """Files with an image extension in `train_dir`'s class sub-folders (any depth below them); 0 if missing."""
    root = Path(train_dir)
    if not root.is_dir():
        return 0
    return sum(1 for cls in root.iterdir() if cls.is_dir() for p in cls.rglob("*") if is_image_file(p))


def training_image_count(config: dict[str, Any]) -> int | None:
    """The training images of `config`'s data: counted, or the demo's planned number; None when unknown."""
    counted = count_training_images(config["data"]["train_dir"])
    if counted:
        return counted
    return int(config["demo"]["n_train"]) if _in_demo_dir(config) else None


def resolve_scheme(config: dict[str, Any]) -> tuple[str, str]:
    """(holdout or kfold, why) for `splits.scheme`; an explicit scheme stays as it is."""
    scheme = config["splits"]["scheme"]
    if scheme != "auto":
        return scheme, f"splits.scheme: {scheme}"
    n = training_image_count(config)
    if n is None:
        return "holdout", "splits.scheme auto -> holdout (the training folder is not there yet to count)"
    chosen = "kfold" if n < KFOLD_BELOW else "holdout"
    relation = "below" if chosen == "kfold" else "at least"
    return chosen, f"splits.scheme auto -> {chosen} ({n} training images, {relation} {KFOLD_BELOW})"


def apply_data_size(config: dict[str, Any]) -> list[str]:
    """Resolve `splits.scheme` in place and, under k-fold, drop the entries' `bags`; returns what was decided."""
    scheme, why = resolve_scheme(config)
    config["splits"]["scheme"] = scheme
    notes = [why]
    if scheme == "kfold":
        bagged = sorted(name for name, entry in config["models"].items() if entry.get("bags"))
        for name in bagged:
            del config["models"][name]["bags"]
        if bagged:
            notes.append(
                f"k-fold: the fold models are each entry's bag; the bags of {', '.join(bagged)} are not trained"
            )
    return notes
