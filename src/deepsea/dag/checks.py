"""Cross-key checks of a config that its JSON schema cannot express (a name that must be another entry, a stage
that needs another); each error names the key and the fix. Run on every Snakemake start and by
`deepsea train --config`."""

from __future__ import annotations

from typing import Any

from deepsea.dag.runs import Config, Runs, bag_run, settings_json
from deepsea.errors import ConfigError
from deepsea.inference.views import TTASettings, make_views
from deepsea.records import from_dict
from deepsea.training.settings import load_model_settings


def _not_an_entry(key: str, name: str, config: Config) -> ConfigError:
    return ConfigError(f"{key}: '{name}' is not an entry of `models` ({sorted(config['models'])}).")


def check_models(config: Config, convnet_runs: Runs, pseudo_label_runs: Runs) -> None:
    """Pre-initialisation sources, bag member and shard names, and every run's settings."""
    for name, entry in config["models"].items():
        source = entry.get("preinit", "")
        if source and (source not in config["models"] or source == name):
            raise ConfigError(
                f"models.{name}.preinit: '{source}' is not another entry of `models` ({sorted(config['models'])})."
            )
        for seed in entry.get("bags", []):
            if (member := bag_run(name, seed)) in config["models"]:
                raise ConfigError(f"models.{name}.bags: the bag member name '{member}' is taken by an entry.")
    taken = set(config["models"]) | set(convnet_runs)
    for run in pseudo_label_runs:
        if run in taken:
            raise ConfigError(
                f"pseudo_labels.models: the shard model name '{run}' is taken by a model; rename the entry."
            )
    for run, settings in {**convnet_runs, **pseudo_label_runs}.items():
        load_model_settings(settings_json(run, settings))


def view_settings(tta: Config) -> dict[str, Any]:
    """The `tta` keys that `deepsea predict` takes (TTASettings): all but `choice`, the choose_views rule's."""
    return {key: value for key, value in tta.items() if key != "choice"}


def check_stages(config: Config) -> None:
    """What the blending stages, fusion and the submission name must exist and fit together."""
    if config["pseudo_labels"]["models"] and not config["ensemble"]["models"]:
        raise ConfigError(
            "pseudo_labels.models: the pseudo-labels are the weighted ensemble's test predictions, so "
            "ensemble.models must list the models to blend."
        )
    source = config["submission"]["source"]
    if source == "final" and not config["pseudo_labels"]["models"]:
        raise ConfigError(
            "submission.source: 'final' blends the ensemble with pseudo-label models; add pseudo_labels.models "
            "or use source: ensemble."
        )
    make_views(from_dict(TTASettings, view_settings(config["tta"]), "tta"))
    for name in config["ensemble"]["models"]:
        if name not in config["models"]:
            raise _not_an_entry("ensemble.models", name, config)
        if config["models"][name]["split"] != "valid":
            raise ConfigError(
                f"ensemble.models: '{name}' trains on {config['models'][name]['split']}; the "
                "ensemble is fitted on the standard validation split, so use `bags:` instead."
            )
    if source == "ensemble" and not config["ensemble"]["models"]:
        raise ConfigError("submission.source: 'ensemble' needs ensemble.models (the models to blend).")
    unknown_fused = [m for m in config["fusion"]["models"] if m not in config["models"]]
    if unknown_fused:
        raise ConfigError(f"fusion.models: {unknown_fused} are not entries of `models` ({sorted(config['models'])}).")
    extracted = set(config["features"]["groups"])
    for group in config["fusion"]["groups"]:
        missing = sorted(set(group["features"]) - extracted)
        if missing and config["fusion"]["models"]:
            raise ConfigError(
                f"fusion.groups.{group['name']}: features {missing} are not in features.groups; add them there."
            )
    unknown = [m for m in config["submission"]["models"] if m not in config["models"]]
    if unknown:
        raise ConfigError(f"submission.models: {unknown} are not entries of `models` ({sorted(config['models'])}).")


def check_config(config: Config, convnet_runs: Runs, pseudo_label_runs: Runs) -> None:
    check_models(config, convnet_runs, pseudo_label_runs)
    check_stages(config)
