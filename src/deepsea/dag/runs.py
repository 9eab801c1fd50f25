"""The model runs a config defines, and the files each trains from.

A run is one trained network: every `models` entry, `<name>_bag<seed>` for each of its bagging seeds, and
`<entry>_shard<k>` for every pseudo-label entry and test shard. The workflow (plan.py) and `deepsea train --config
... --model NAME` (jobs.py) both read them from here, so a model trained by hand gets exactly the settings and
inputs its Snakemake job would have.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deepsea.dag import paths
from deepsea.dag.config import merged
from deepsea.errors import ConfigError
from deepsea.training.settings import bag_member_seed, fold_member_seed

Config = Mapping[str, Any]
Runs = dict[str, dict[str, Any]]


def calibrated(config: Config) -> bool:
    """Whether the submission source's prediction is calibrated (fit_calibration, calibrate) before it is submitted
    and bundled."""
    return config["calibration"] == "temperature"


def kfold(config: Config) -> bool:
    """Whether the config's scheme is k-fold (every entry trained once per fold) rather than one hold-out split."""
    return config["splits"].get("scheme", "holdout") == "kfold"


def fold_run(name: str, fold: int) -> str:
    """The run name of entry `name`'s model of fold `fold` (k-fold scheme): `<name>_fold<k>`."""
    return f"{name}_fold{fold}"


def bag_run(name: str, seed: int) -> str:
    """The run name of entry `name`'s bag member of seed `seed`: `<name>_bag<seed>`."""
    return f"{name}_bag{seed}"


def shard_run(name: str, shard: int) -> str:
    """The run name of pseudo-label entry `name`'s model of shard `shard`: `<name>_shard<k>`."""
    return f"{name}_shard{shard}"


def fold_runs(config: Config, name: str) -> list[str]:
    """The fold models of entry `name` under the k-fold scheme, fold 0 first."""
    return [fold_run(name, k) for k in range(config["splits"]["folds"])]


def bag_runs(name: str, seeds: list[int]) -> list[str]:
    """Entry `name`'s hold-out bag: the entry itself, then its member of every bagging seed."""
    return [name] + [bag_run(name, seed) for seed in seeds]


def model_runs(config: Config) -> Runs:
    """Every `models` entry, plus `<name>_bag<seed>` for each of its bagging seeds (same settings, trained on
    results/splits/bag_<seed>.json from its own start: settings.bag_member_seed). `bags` itself is a workflow key,
    not a model setting. Under the k-fold scheme an entry is its fold models instead, `<name>_fold<k>` trained on
    results/splits/fold_<k>.json (each from its own start, a pre-initialised one from its source's model of the
    same fold)."""
    runs: Runs = {}
    for name, entry in config["models"].items():
        settings = {key: value for key, value in entry.items() if key != "bags"}
        if kfold(config):
            for k, run in enumerate(fold_runs(config, name)):
                preinit = {"preinit": fold_run(settings["preinit"], k)} if settings.get("preinit") else {}
                member_seed = fold_member_seed(settings.get("seed", 0), k)
                runs[run] = {**settings, "split": f"fold_{k}", "seed": member_seed, **preinit}
            continue
        runs[name] = settings
        for seed in entry.get("bags", []):
            member_seed = bag_member_seed(runs[name].get("seed", 0), seed)
            runs[bag_run(name, seed)] = {**runs[name], "split": f"bag_{seed}", "seed": member_seed}
    return runs


def shard_runs(config: Config, name: str) -> list[str]:
    """The shard models of pseudo-label entry `name`, shard 0 first."""
    return [shard_run(name, k) for k in range(config["pseudo_labels"]["shards"])]


def fixed_final_weights(config: Config) -> list[float]:
    """The final blend's weights for a fixed pseudo_labels.final_weight w: 1 - w for the ensemble, w shared equally
    by the pseudo-label entries."""
    w, n = config["pseudo_labels"]["final_weight"], len(config["pseudo_labels"]["models"])
    return [1.0 - w] + [w / n] * n


def pseudo_label_runs(config: Config, convnet_runs: Runs) -> Runs:
    """`<name>_shard<k>` for every pseudo_labels.models entry and shard k: the base model's settings with the
    entry's overrides, trained with the pseudo-labels of every test shard but k."""
    section = config["pseudo_labels"]
    runs: Runs = {}
    for name, entry in section["models"].items():
        if entry["base"] not in config["models"]:
            raise ConfigError(
                f"pseudo_labels.models.{name}.base: '{entry['base']}' is not an entry of `models` "
                f"({sorted(config['models'])})."
            )
        # under k-fold the base's fold-0 model: the shard models then never train on fold 0, whose images give
        # the pseudo-label models an honest validation score (the final blend's weight is fitted on them)
        base = fold_runs(config, entry["base"])[0] if kfold(config) else entry["base"]
        settings = merged(convnet_runs[base], entry["overrides"])
        for shard, run in enumerate(shard_runs(config, name)):
            pseudo = {"fraction": entry["fraction"], "shard": shard, "shards": section["shards"]}
            runs[run] = {**settings, "pseudo_label": pseudo}
    return runs


def all_runs(config: Config) -> tuple[Runs, Runs]:
    """(convnet runs, pseudo-label runs) of a validated config."""
    convnet = model_runs(config)
    return convnet, pseudo_label_runs(config, convnet)


def compact_json(settings: Mapping[str, Any]) -> str:
    """Settings as JSON on a command line: stable (sorted keys) and short."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def settings_json(run: str, settings: Mapping[str, Any]) -> str:
    """A run's settings as the compact JSON `deepsea train --settings` reads (a rule param: editing one model's
    entry changes only its own jobs' params, so Snakemake reruns that model and what depends on it)."""
    return compact_json({"name": run, **settings})


def split_file(settings: Mapping[str, Any]) -> str:
    """The split a run trains on: the standard validation split or one bagging split."""
    return paths.split_of(settings["split"])


def model_file(run: str) -> str:
    return paths.fill(paths.MODEL, model=run)


def train_inputs(settings: Mapping[str, Any], pseudo_label: bool) -> dict[str, str]:
    """The files a run trains from, by `deepsea train` option: packed data, its pack report (the orientation check),
    its split, the trained model it is pre-initialised from (if any) and, for a pseudo-label run, the test images,
    shards and soft targets."""
    inputs = {"data": paths.TRAIN_DATA, "pack_report": paths.TRAIN_REPORT, "split": split_file(settings)}
    if settings.get("preinit"):
        inputs["preinit"] = model_file(settings["preinit"])
    if pseudo_label:
        inputs.update(test=paths.TEST_DATA, shards=paths.TEST_SHARDS, targets=paths.PSEUDO_LABEL_TARGETS)
    return inputs
