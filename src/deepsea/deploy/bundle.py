"""The model bundle: one folder with everything the final test prediction needs, and nothing else.

Written by the workflow's `bundle` rule after the submission (into the results' `bundle` folder), read by
`deepsea classify`.
Copying the folder is all it takes to classify on another machine. It holds:

- `models/<run>.pt`: every convnet whose predictions reach the submission (bag members, pseudo-label shard models),
  each with its input size, normalisation and weights (the model file `deepsea train` wrote);
- `fusion/<entry>.pt`: the fusion nets of every fused entry (deepsea/blending/fusion_nets.py);
- `bundle.json`: how they combine, every number resolved: each run's test-time views as they ran (orientation
  included) or its centre view where the workflow chose it, each entry's members and bag mean, the ensemble's
  weights and mean, the pseudo-label entries and the final blend's weights, the calibration temperature (1: none),
  the feature settings, the training
  images' background, the class names, the deepsea version and the config the bundle came from;
- `validation.npz`: the submission's source (calibrated) on the validation images and their labels, which `classify`
  fits its per-class thresholds and adjusted counts on (none for an uncalibrated `submission.source: models`);
- `manifest.json`: the sha256 of every other file. `classify` refuses a bundle whose files do not match it (a damaged
  or edited file, a missing one) or that another deepsea version wrote, naming what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from deepsea.blending.temperature import read_temperature
from deepsea.data.imageset import ImageSet
from deepsea.data.pack import background_of_report
from deepsea.errors import DataMismatchError, DeepseaError
from deepsea.io import read_json, write_json
from deepsea.predictions import Predictions

MANIFEST = "manifest.json"
RECIPE = "bundle.json"
VALIDATION = "validation.npz"
FORMAT = 1  # the layout of bundle.json; a bundle of another format is refused


def deepsea_version() -> str:
    try:
        return version("deepsea")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _resolve(recipe: dict[str, Any], workdir: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """bundle.json's content from the workflow's recipe (bundle_recipe.py), and the files to copy by bundle name."""
    copies: dict[str, Path] = {}
    entries: dict[str, Any] = {}
    chosen_by: dict[str, str] = {}
    for name, entry in recipe["entries"].items():
        fusion = f"fusion/{name}.pt" if entry["fusion"] else None
        if fusion:
            copies[fusion] = workdir / entry["fusion"]
        # the views' or the centre view's mean over the members: a bag's (its chosen predictions) or, under k-fold,
        # the fold models' (the entry chose between their assembled views and centre views)
        choice = (
            read_json(workdir / entry["prediction_meta"]).get("views_used", "tta") if entry["prediction_meta"] else None
        )
        chosen_by |= {run: choice for run in entry["members"] if choice}
        mean = "arithmetic" if choice == "centre" else entry["bag_mean"]
        entries[name] = {"members": entry["members"], "mean": mean, "fusion": fusion}
    runs = {}
    for run, files in recipe["runs"].items():
        chosen = chosen_by.get(run) or read_json(workdir / files["prediction_meta"]).get("views_used", "tta")
        views = read_json(workdir / files["tta_meta"])
        copies[f"models/{run}.pt"] = workdir / files["model"]
        tta = views["tta"] if chosen == "tta" else {"method": "centre"}
        runs[run] = {"model": f"models/{run}.pt", "views_used": chosen, "tta": tta}
        class_names = views["class_names"]
    ensemble = None
    if recipe["ensemble"]:
        fitted = read_json(workdir / recipe["ensemble"]["weights"])
        names = recipe["ensemble"]["names"]
        ensemble = {"names": names, "weights": [fitted["weights"][n] for n in names], "mean": fitted["mean"]}
    final = recipe["final_weights"]
    if isinstance(final, str):
        final = read_json(workdir / final)["weights"]
    temperature = read_temperature(workdir / recipe["temperature"]) if recipe.get("temperature") else 1.0
    resolved = {
        "format": FORMAT,
        "deepsea_version": deepsea_version(),
        "class_names": class_names,
        "background": background_of_report(workdir / recipe["train_report"]),
        **{key: recipe[key] for key in ("source", "pseudo_labels", "features", "submission", "config")},
        "validation": None,  # set by write_bundle once validation.npz is written
        "runs": runs,
        "entries": entries,
        "ensemble": ensemble,
        "final_weights": final,
        "temperature": temperature,
    }
    return resolved, copies


def _write_validation(recipe: dict[str, Any], workdir: Path, out: Path, class_names: list[str]) -> bool:
    """validation.npz: the submission's source on the validation images (float32, the bundle's class order) and
    their labels; False when the recipe has none."""
    if not recipe["validation"]:
        return False
    predicted = Predictions.load(workdir / recipe["validation"]["probs"])
    data = ImageSet.load(workdir / recipe["validation"]["data"])
    if predicted.class_names != class_names or data.class_names != class_names:
        raise DataMismatchError(f"{recipe['validation']['probs']}: its classes differ from the models'; rerun it.")
    labels = data.labels[data.index_of(predicted.ids, str(recipe["validation"]["data"]))]
    with open(out, "wb") as handle:
        np.savez(handle, probs=predicted.probs.astype(np.float32), labels=labels.astype(np.int64))
    return True


def write_bundle(recipe: dict[str, Any], out: str | os.PathLike[str], workdir: str | os.PathLike[str] = ".") -> None:
    """Copy and resolve what `recipe` names into the folder `out` (replaced whole, never left half-written)."""
    out = Path(out)
    resolved, copies = _resolve(recipe, Path(workdir))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, source in copies.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staging / name)
        resolved["validation"] = (
            VALIDATION
            if _write_validation(recipe, Path(workdir), staging / VALIDATION, resolved["class_names"])
            else None
        )
        write_json(staging / RECIPE, resolved)
        files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        manifest = {"deepsea_version": resolved["deepsea_version"], "format": FORMAT}
        write_json(staging / MANIFEST, {**manifest, "sha256": {f: sha256_of(staging / f) for f in files}})
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class Bundle:
    """A checked bundle folder: its recipe and where its files are."""

    root: Path
    recipe: dict[str, Any]

    def path(self, name: str) -> Path:
        return self.root / name

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Bundle:
        """The bundle at `root`, once every file matches the manifest and the version is this deepsea's."""
        root = Path(root)
        if not (root / MANIFEST).is_file():
            raise DeepseaError(
                f"{root}: not a model bundle (no {MANIFEST}); give the folder the workflow's bundle rule wrote "
                "(the results' bundle folder), copied whole."
            )
        manifest = read_json(root / MANIFEST)
        ours = deepsea_version()
        if manifest.get("format") != FORMAT or manifest.get("deepsea_version") != ours:
            raise DeepseaError(
                f"{root}: written by deepsea {manifest.get('deepsea_version')} (bundle format "
                f"{manifest.get('format')}); this is deepsea {ours} (format {FORMAT}). Classify with the version "
                "that wrote it, or rerun `snakemake bundle` with this one."
            )
        for name, expected in manifest.get("sha256", {}).items():
            if not (root / name).is_file():
                raise DeepseaError(f"{root / name}: missing from the bundle; copy the whole bundle folder again.")
            if sha256_of(root / name) != expected:
                raise DeepseaError(
                    f"{root / name}: its contents differ from the bundle's manifest (damaged or edited); copy the "
                    "bundle again or rerun `snakemake bundle`."
                )
        if RECIPE not in manifest.get("sha256", {}):
            raise DeepseaError(f"{root}: the manifest does not list {RECIPE}; rerun `snakemake bundle`.")
        return cls(root, read_json(root / RECIPE))
