"""`deepsea classify`: every image under a folder through a model bundle, without Snakemake or the results tree.

Images are read as `pack` reads a test set (any depth, any format it accepts, the training images' background),
a chunk at a time: memory does not grow with the number of images. Each finished chunk's probabilities are kept in
`<out>.parts/` (written atomically), so a killed run resumes where it stopped; the outputs are written, each
atomically, only when every chunk is done, and the parts are then removed. Outputs (deploy/tables.py): the CSV
`--out` (per image: id, predicted class and probability, with `precision` the label or "unclassified", the top 5,
optionally every class), `<out>.counts.csv` (per class: the reported count and where it comes from, then argmax
counts, probability sums and adjusted counts with their intervals, blending/abundance.py) and `<out>.report.json`
(the bundle, the images read and skipped, the thresholds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from deepsea.blending.abundance import MIN_VALIDATION_PER_CLASS, abundance
from deepsea.blending.calibration import class_thresholds
from deepsea.data.pack import decode_files, list_files, refuse_or_skip
from deepsea.deploy.bundle import MANIFEST, Bundle, sha256_of
from deepsea.deploy.pipeline import LoadedBundle, RunOptions
from deepsea.deploy.tables import write_counts, write_probabilities
from deepsea.errors import DeepseaError
from deepsea.io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)
SKIP_HINT = "classify with --on-bad-image skip to skip them (they are then listed in the report)"
VIEW_CHUNK = 32  # images whose views are predicted together (tta.chunk_images): chunks are multiples of it


@dataclass(frozen=True)
class ClassifyOptions:
    run: RunOptions = field(default_factory=RunOptions)
    chunk: int = 1024  # images per chunk (rounded up to a multiple of VIEW_CHUNK)
    on_bad_image: str = "error"  # error: stop and list unreadable files; skip: list them in the report
    all_probabilities: bool = False  # also every class's probability, one column each
    precision: float | None = None  # label only predictions reaching this precision on validation, else unclassified


def sibling(out: Path, suffix: str) -> Path:
    """`<out without .csv>.<suffix>`: the counts and report beside the CSV."""
    return out.with_name(out.name.removesuffix(".csv") + "." + suffix)


def _parts_dir(out: Path) -> Path:
    return sibling(out, "parts")


def _plan_key(bundle: Bundle, chunks: list[list[Path]]) -> str:
    """What a resumed run must share with the stopped one: the bundle and the chunks' files."""
    text = json.dumps([sha256_of(bundle.path(MANIFEST)), [[str(f) for f in c] for c in chunks]])
    return hashlib.sha256(text.encode()).hexdigest()


def _prepare_parts(out: Path, key: str) -> Path:
    """The parts folder for this plan; parts of another plan (other images, another bundle) are dropped."""
    parts = _parts_dir(out)
    plan = parts / "plan.json"
    if parts.exists() and (not plan.is_file() or read_json(plan).get("key") != key):
        log.info("%s: left by a run of other images or another bundle; starting over", parts)
        shutil.rmtree(parts)
    if not parts.exists():
        parts.mkdir(parents=True)
        write_json(plan, {"key": key})
    return parts


def _classify_chunk(loaded: LoadedBundle, root: Path, files: list[Path], part: Path, options: ClassifyOptions) -> None:
    images, skipped = decode_files(
        root,
        files,
        loaded.recipe["background"],
        on_bad_image=options.on_bad_image,  # type: ignore[arg-type]
        skip_hint=SKIP_HINT,
    )
    probs = loaded.probabilities(images) if len(images) else np.zeros((0, len(loaded.recipe["class_names"])))
    with atomic_path(part) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=np.array(images.ids.tolist(), dtype=str), probs=probs.astype(np.float32))
    write_json(part.with_suffix(".skipped.json"), skipped)


def classify(
    bundle_path: str | os.PathLike[str],
    images_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ClassifyOptions = ClassifyOptions(),
) -> dict:
    """Classify every image under `images_dir` with the bundle; write the CSV `out`, counts and report; return the
    report."""
    started = time.monotonic()
    bundle, root, out = Bundle.open(bundle_path), Path(images_dir), Path(out)
    files, not_images, _ = list_files(root, "test")
    refuse_or_skip(not_images, root, options.on_bad_image, skip_hint=SKIP_HINT)  # type: ignore[arg-type]
    if not files:
        raise DeepseaError(f"{root}: no image files found (any depth, formats as `deepsea pack` reads).")
    size = -(-max(1, options.chunk) // VIEW_CHUNK) * VIEW_CHUNK
    chunks = [[path for path, _ in files[s : s + size]] for s in range(0, len(files), size)]
    parts = _prepare_parts(out, _plan_key(bundle, chunks))
    loaded = LoadedBundle(bundle, options.run)
    for k, chunk in enumerate(tqdm(chunks, desc="classify", unit="chunk")):
        part = parts / f"part-{k:05d}.npz"
        if not part.exists():
            _classify_chunk(loaded, root, chunk, part, options)
    report = _write_outputs(bundle, root, out, parts, n_chunks=len(chunks), options=options)
    report["skipped"] = not_images + report["skipped"]
    report["seconds"] = round(time.monotonic() - started, 1)
    write_json(sibling(out, "report.json"), report)
    shutil.rmtree(parts)
    log.info("classified %d images of %s -> %s (%.1f s)", report["n_images"], root, out, report["seconds"])
    return report


def _collect(parts: Path, n_chunks: int, n_classes: int) -> tuple[list[str], np.ndarray, list[dict[str, str]]]:
    """Every chunk's ids, probabilities and unreadable files, in order."""
    ids: list[str] = []
    probs, skipped = [np.zeros((0, n_classes), np.float32)], []
    for k in range(n_chunks):
        with np.load(parts / f"part-{k:05d}.npz") as part:
            ids += part["ids"].tolist()
            probs.append(part["probs"])
        skipped += read_json(parts / f"part-{k:05d}.skipped.json")
    return ids, np.concatenate(probs), skipped


NO_VALIDATION = "predicted (the bundle has no validation images to adjust with)"
TOO_FEW = f"predicted (fewer than {MIN_VALIDATION_PER_CLASS} validation images per class to adjust with)"


def _count_source(kept: float) -> str:
    """Why a class's `count` is what it is: the adjusted counts, whole, in part or not at all (blending/abundance.py
    shrinkage)."""
    kept = round(kept, 2)  # as the table writes it
    if kept >= 1.0:
        return "adjusted"
    if kept <= 0.0:
        return "predicted (the adjustment is within its noise)"
    return f"adjusted, {kept:.0%} of the correction (the rest is within its noise)"


def _count_columns(table: np.ndarray, validation: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """The counts file's columns: the reported `count` and where it comes from, then argmax counts and probability
    sums, and with the bundle's validation images the adjusted counts, the share of their correction kept and
    every estimate's 95% interval (blending/abundance.py)."""
    if validation is None or not len(table):
        predicted = np.bincount(table.argmax(axis=1), minlength=table.shape[1]) if len(table) else np.zeros(
            table.shape[1])  # fmt: skip
        return {"count": predicted, "count_from": [NO_VALIDATION] * table.shape[1], "predicted": predicted,
                "probability_sum": table.sum(axis=0)}  # fmt: skip
    found = abundance(table.astype(np.float64), validation[0].astype(np.float64), validation[1])
    low, high = found.intervals["adjusted"]
    columns: dict[str, Any] = {"count": found.adjusted, "count_low": low, "count_high": high,
                               "count_from": [TOO_FEW if found.too_few_validation else _count_source(k)
                                              for k in found.kept]}  # fmt: skip
    estimates = ("predicted", "argmax"), ("probability_sum", "probability_sum"), ("adjusted", "adjusted"), (
        "adjusted_raw", "adjusted_raw")  # fmt: skip
    for name, key in estimates:
        low, high = found.intervals[key]
        columns |= {name: getattr(found, key), f"{name}_low": low, f"{name}_high": high}
    return columns | {"adjustment_kept": found.kept}


def _write_outputs(
    bundle: Bundle, root: Path, out: Path, parts: Path, *, n_chunks: int, options: ClassifyOptions
) -> dict:
    classes = bundle.recipe["class_names"]
    ids, table, skipped = _collect(parts, n_chunks, len(classes))
    validation = None
    if bundle.recipe.get("validation"):
        with np.load(bundle.path(bundle.recipe["validation"])) as stored:
            validation = (stored["probs"], stored["labels"])
    thresholds = None
    if options.precision is not None:
        if validation is None:
            raise DeepseaError(f"{bundle.root}: no validation predictions to fit thresholds on; drop --precision.")
        thresholds, _ = class_thresholds(validation[0].astype(np.float64), validation[1], options.precision)
    unclassified = write_probabilities(
        out, ids, classes, table, every_class=options.all_probabilities, thresholds=thresholds
    )
    write_counts(sibling(out, "counts.csv"), classes, _count_columns(table, validation))
    for item in skipped[:20]:
        log.warning("skipped %s: %s", item["file"], item["reason"])
    return {
        "bundle": str(bundle.root),
        "deepsea_version": bundle.recipe["deepsea_version"],
        "images": str(root),
        "n_images": len(ids),
        "validation_images": len(validation[1]) if validation is not None else 0,  # what the counts adjust with
        "skipped": skipped,
        "precision": options.precision,
        "thresholds": dict(zip(classes, thresholds.tolist(), strict=True)) if thresholds is not None else None,
        "unclassified_share": unclassified if thresholds is not None else None,
    }
