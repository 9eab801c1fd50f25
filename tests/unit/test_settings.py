"""Settings: the schema and the dataclasses agree on defaults; typos and bad values are named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from deepsea.data.augment import AugmentationRanges
from deepsea.errors import ConfigError
from deepsea.training.settings import ModelSettings, TrainSettings, bag_member_seed, load_model_settings

SCHEMA = Path(__file__).parents[2] / "workflow" / "schemas" / "config.schema.yaml"
# Keys added after results existed: no `default:` in the schema, because a filled-in default would change every
# model's params (`model_settings_json`) and make Snakemake retrain existing results; the description names it.
# The training length too: a schema default for either of steps and epochs would make every config give both.
LATE = {"balanced_until", "snapshots", "snapshot_from", "steps", "epochs", "min_steps"}


def _defaults(cls) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


@pytest.mark.parametrize(
    ("cls", "path"),
    [(TrainSettings, ["train"]), (AugmentationRanges, ["augmentation"]), (ModelSettings, [])],
)
def test_schema_defaults_equal_dataclass_defaults(cls, path) -> None:
    node = yaml.safe_load(SCHEMA.read_text())["$defs"]["model"]
    for key in path:
        node = node["properties"][key]
    # `bags` is a workflow key: the Snakefile expands it into model runs and strips it before a model sees it
    workflow_only = ("train", "augmentation", "bags")
    schema_defaults = {k: v["default"] for k, v in node["properties"].items() if k not in (*workflow_only, *LATE)}
    # `pseudo_label` is set by the workflow for the runs of a `pseudo_labels.models` entry, not by a model entry
    code_defaults = {
        k: v for k, v in _defaults(cls).items() if k not in ("name", "train", "augmentation", "pseudo_label")
    }
    for key in LATE & node["properties"].keys():
        assert "default" not in node["properties"][key], key
        assert f"default {code_defaults.pop(key):g}" in node["properties"][key]["description"], key
    assert schema_defaults == code_defaults


def test_unknown_key_named_with_suggestion() -> None:
    expected = r"models\.m\.train\.learning_rte: unknown key\. Did you mean 'learning_rate'"
    with pytest.raises(ConfigError, match=expected):
        load_model_settings('{"name": "m", "train": {"learning_rte": 0.1}}')


def test_wrong_type_and_negative_lr() -> None:
    with pytest.raises(ConfigError, match=r"models\.m\.input_size: .big. is not a size.*or auto"):
        load_model_settings('{"name": "m", "input_size": "big"}')
    with pytest.raises(ConfigError, match=r"models\.m\.train\.learning_rate: must be positive"):
        load_model_settings('{"name": "m", "train": {"learning_rate": -0.1}}')
    with pytest.raises(ConfigError, match=r"models\.m\.split"):
        load_model_settings('{"name": "m", "split": "bag_x"}')


def test_round_trip_json() -> None:
    s = load_model_settings('{"name": "m", "params": {"widths": [8]}, "train": {"lr_drops": [0.5]}}')
    assert load_model_settings(s.to_json()) == s


def test_tta_schema_defaults_equal_dataclass_defaults() -> None:
    from deepsea.inference.views import TTASettings

    node = yaml.safe_load(SCHEMA.read_text())["properties"]["tta"]
    schema_defaults = {k: v["default"] for k, v in node["properties"].items() if k != "choice"}  # the workflow's
    assert schema_defaults == _defaults(TTASettings)


def test_fusion_schema_defaults_equal_dataclass_defaults() -> None:
    from dataclasses import asdict

    from deepsea.blending.fusion import FusionSettings

    node = yaml.safe_load(SCHEMA.read_text())["properties"]["fusion"]
    schema_defaults = {k: v["default"] for k, v in node["properties"].items() if k != "models"}
    code_defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(FusionSettings()).items()}
    code_defaults["groups"] = [{**g, "features": list(g["features"])} for g in code_defaults["groups"]]
    assert schema_defaults == code_defaults


def test_bag_members_get_their_own_seeds() -> None:
    # members of one bag, and the entry's own seed, differ; the same numbers give the same seed on every run
    seeds = [bag_member_seed(0, b) for b in range(28)]
    assert len(set(seeds)) == 28 and 0 not in seeds
    assert bag_member_seed(0, 1) == bag_member_seed(0, 1) != bag_member_seed(1, 0)
    assert bag_member_seed(7, 0) != 7  # bag 0 is not the standard member's twin
    schema = yaml.safe_load(SCHEMA.read_text())["$defs"]["model"]["properties"]["seed"]
    assert all(isinstance(s, int) and s >= schema["minimum"] for s in seeds)  # a valid `seed` for the schema
    assert load_model_settings(f'{{"name": "m_bag1", "split": "bag_1", "seed": {seeds[1]}}}').seed == seeds[1]


def _disagreements(node: dict, value: object, path: str) -> list[str]:
    """Keys config.yaml sets to another value than the schema's default (walking the schema's named properties)."""
    found = []
    if "default" in node and not isinstance(value, dict) and node["default"] != value:
        found.append(f"{path}: schema {node['default']!r}, config.yaml {value!r}")
    for key, child in node.get("properties", {}).items():
        if isinstance(value, dict) and key in value:
            found += _disagreements(child, value[key], f"{path}.{key}".lstrip("."))
    return found


def test_config_yaml_and_the_schema_give_every_key_one_default() -> None:
    """What docs/configuration.md (from the schema) says a key defaults to is what config.yaml sets. The lists of
    model entries to fuse and ensemble are the exception: they name config.yaml's own entries."""
    config = yaml.safe_load((SCHEMA.parents[2] / "config.yaml").read_text())
    found = _disagreements(yaml.safe_load(SCHEMA.read_text()), config, "")
    assert [f for f in found if not f.startswith(("fusion.models:", "ensemble.models:"))] == []


def test_demo_schema_defaults_equal_dataclass_defaults() -> None:
    from deepsea.data.demo import DemoSettings

    node = yaml.safe_load(SCHEMA.read_text())["properties"]["demo"]["properties"]
    schema_defaults = {"n_classes" if k == "classes" else k: v["default"] for k, v in node.items() if k != "dir"}
    assert schema_defaults == {k: v for k, v in _defaults(DemoSettings).items() if k != "jpeg_quality"}
