"""How a user's config files combine with the embedded default (config.yaml, the demo's).

Snakemake merges `--configfile` files into the embedded config key by key. That is right for settings (a file
with `tta: {views: 35}` changes one number) but wrong for sections that hold *named entries*: a file defining
its own `models:` would still get the demo's models (trained by `snakemake all`, checked, and their keys mixed
into any entry of the same name, e.g. the demo's `bags:`), and its own `pseudo_labels.models` would train beside
the demo's. So in those sections a user's files replace the embedded entries (several user files still merge
with each other, in order).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from deepsea.errors import ConfigError

NAMED_SECTIONS: tuple[tuple[str, ...], ...] = (("models",), ("pseudo_labels", "models"))


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with the keys of `overrides` replaced; mappings (params, train, augmentation) merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        both_maps = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = merged(out[key], value) if both_maps else value
    return out


def _section(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return None
        tree = tree[key]
    return tree


def load_yaml(path: str | os.PathLike[str]) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"config file {path}: cannot read it ({err}).") from err


def replace_named_sections(config: dict[str, Any], user_files: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Make each named-entry section of `config` what the user's files define, when any of them defines it.

    `config` is Snakemake's merged config (modified in place); returns the dotted names of the replaced sections.
    """
    loaded = [load_yaml(path) for path in user_files]
    replaced = []
    for path in NAMED_SECTIONS:
        layers = [section for tree in loaded if (section := _section(tree, path)) is not None]
        if not layers:
            continue
        combined: dict[str, Any] = {}
        for layer in layers:
            if not isinstance(layer, Mapping):
                raise ConfigError(f"{'.'.join(path)}: expected a mapping of names to entries, got {layer!r}.")
            combined = merged(combined, layer)
        parent = config
        for key in path[:-1]:
            parent = parent.setdefault(key, {})
        parent[path[-1]] = combined
        replaced.append(".".join(path))
    return replaced
