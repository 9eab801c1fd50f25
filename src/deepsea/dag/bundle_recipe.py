"""What the model bundle is made of, from the config: every file of the workflow's results that the final test
prediction comes from, and how they were combined (deepsea/deploy/bundle.py copies and resolves them).

The submission's test prediction is, for the default `submission.source: final`: the weighted ensemble of the
`ensemble.models` entries' test predictions (each a bag's average of its members, fused with the handcrafted
features where the entry is in `fusion.models`), blended with each pseudo-label entry's shard models. A bundle keeps
exactly the models and fusion nets on that path (no preinit models, no entries outside it) and the numbers that
combine them, with the temperature that calibrates the result (`calibration: temperature`).
"""

from __future__ import annotations

from typing import Any

from deepsea.dag import paths
from deepsea.dag.runs import Config, bag_runs, calibrated, fixed_final_weights, fold_runs, kfold


def _entry_names(config: Config) -> list[str]:
    """The `models` entries whose predictions reach the submission."""
    if config["submission"]["source"] == "models":
        return list(config["submission"]["models"])
    return list(config["ensemble"]["models"])  # pseudo-label entries reach it through their shard models only


def _entry(config: Config, name: str) -> dict[str, Any]:
    """An entry's members (its bag, or under k-fold its fold models, whose test predictions the workflow assembles
    and then chooses views for as one: `prediction_meta`) and its fusion nets."""
    assembled = kfold(config)
    bags = config["models"][name].get("bags", [])
    members = fold_runs(config, name) if assembled else bag_runs(name, bags)
    fused = name in config["fusion"]["models"]
    return {
        "members": members,
        "bag_mean": config["ensemble"]["bag_mean"],
        "fusion": paths.fill(paths.FUSION_NETS, model=name) if fused else None,
        "prediction_meta": paths.meta(paths.fill(paths.PREDICTION, model=name, subset="test")) if assembled else None,
    }


def _run(run: str, chosen_by_entry: bool) -> dict[str, str | None]:
    """A run's model file, its test views as they ran, and the choice between views and centre (its own, or for a
    fold model its entry's)."""
    own_choice = paths.meta(paths.fill(paths.PREDICTION, model=run, subset="test"))
    return {
        "model": paths.fill(paths.MODEL, model=run),
        "prediction_meta": None if chosen_by_entry else own_choice,
        "tta_meta": paths.meta(paths.fill(paths.TTA_PREDICTION, model=run, subset="test")),
    }


def _validation(source: str, with_pl: bool, with_temperature: bool) -> dict[str, str] | None:
    """The submission's source on the validation images: calibrated where the workflow calibrates it."""
    if with_temperature:
        stage = paths.CALIBRATED
    elif source == "models":
        return None
    else:
        stage = paths.FINAL if with_pl else paths.ENSEMBLE
    return {"probs": paths.fill(stage, subset="valid"), "data": paths.TRAIN_DATA}


def bundle_recipe(config: Config, shard_runs: dict[str, list[str]]) -> dict[str, Any]:
    """The recipe `deepsea bundle` reads: files by role (paths relative to the workflow folder) and settings.
    `shard_runs`: each pseudo-label entry's shard model runs."""
    source = config["submission"]["source"]
    entries = {name: _entry(config, name) for name in _entry_names(config)}
    pseudo = config["pseudo_labels"]
    with_pl = source == "final" and bool(pseudo["models"])
    pseudo_labels = {
        name: {"runs": shard_runs[name], "combine": pseudo["combine"]} for name in (pseudo["models"] if with_pl else [])
    }
    runs = {run: _run(run, kfold(config)) for entry in entries.values() for run in entry["members"]}
    runs |= {run: _run(run, False) for entry in pseudo_labels.values() for run in entry["runs"]}
    with_temperature = calibrated(config)
    final_weights: Any = None
    if with_pl:
        final_weights = paths.FINAL_BLEND if pseudo["final_weight"] == "fit" else fixed_final_weights(config)
    return {
        "source": source,
        "runs": runs,
        "entries": entries,
        "ensemble": {"names": list(config["ensemble"]["models"]), "weights": paths.ENSEMBLE_WEIGHTS}
        if source != "models"
        else None,
        "pseudo_labels": pseudo_labels,
        "final_weights": final_weights,
        "temperature": paths.CALIBRATION if with_temperature else None,  # applied last, to the source's prediction
        "features": {key: config["features"][key] for key in ("groups", "haralick_levels")},
        # the submission's source on the validation images, with their labels: what thresholds and adjusted
        # counts are fitted on when classifying (none for an average of submission.models, never made for them)
        "validation": _validation(source, with_pl, with_temperature),
        "train_report": paths.TRAIN_REPORT,
        "submission": {"class_order": config["submission"]["class_order"]},
        # the config it came from, but the classify section: a new folder to classify must not remake the bundle
        "config": {key: value for key, value in config.items() if key != "classify"},
    }


def recipe_inputs(recipe: dict[str, Any]) -> list[str]:
    """Every file the recipe names (the bundle rule's inputs)."""
    files = [path for run in recipe["runs"].values() for path in run.values() if path]
    files += [
        path for entry in recipe["entries"].values() for path in (entry["fusion"], entry["prediction_meta"]) if path
    ]
    if recipe["ensemble"]:
        files.append(recipe["ensemble"]["weights"])
    if isinstance(recipe["final_weights"], str):
        files.append(recipe["final_weights"])
    if recipe["temperature"]:
        files.append(recipe["temperature"])
    if recipe["validation"]:
        files += [recipe["validation"]["probs"], recipe["validation"]["data"]]
    return [*files, recipe["train_report"]]
