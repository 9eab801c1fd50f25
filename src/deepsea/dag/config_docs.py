"""`deepsea config-docs`: docs/configuration.md, written from the config schema.

Every key's type, default and meaning live once, in the JSON schema the workflow validates `config.yaml` against
(`workflow/schemas/config.schema.yaml`); the reference page is made from it, so the two cannot drift apart
(tests/workflow/test_docs.py regenerates the page and compares).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import yaml

from deepsea.errors import ConfigError
from deepsea.io import atomic_path

HEADER = """# Configuration reference

Every key of `config.yaml` (the embedded default) and of the files you pass with `--configfile`, with its type, its
default and what it does. Written by `make docs` from the config schema (`workflow/schemas/config.schema.yaml`),
which is also what checks your config: an unknown key or a value of the wrong type stops the run naming the key.
Your files are merged over `config.yaml` key by key, except `models:`, which replaces the demo's models whole. How
to choose the values that matter most: [usage.md](usage.md); what each stage does: [pipeline.md](pipeline.md).
"""


def _text(value: Any) -> str:
    return " ".join(str(value).split())


def _type(spec: dict[str, Any]) -> str:
    """The key's type in words: its type, the allowed values and bounds, or its alternatives."""
    for either in ("anyOf", "oneOf"):
        if either in spec:
            return " or ".join(_type(option) for option in spec[either])
    if "const" in spec:
        return f"`{spec['const']}`"
    if "enum" in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    kind = spec.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and "items" in spec:
        kind = f"list of {_type(spec['items'])}"
    bounds = [f"{sign} {spec[key]}" for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"),
              ("maximum", "<="), ("exclusiveMaximum", "<"))  if key in spec]  # fmt: skip
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _default(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return ""
    return f"`{json.dumps(spec['default'])}`"


def _rows(spec: dict[str, Any], path: str) -> Iterator[str]:
    """Table rows of a key and, for a mapping, of every key below it (`<name>` for user-named keys)."""
    nested = spec.get("properties")
    named = spec.get("additionalProperties")
    if nested is None and not isinstance(named, dict):
        yield f"| `{path}` | {_type(spec)} | {_default(spec)} | {_text(spec.get('description', ''))} |"
        return
    if spec.get("description"):
        yield f"| `{path}` | mapping | | {_text(spec['description'])} |"
    for key, child in (nested or {}).items():
        yield from _rows(child, f"{path}.{key}")
    if isinstance(named, dict):
        if "$ref" in named:
            yield f"| `{path}.<name>` | a model entry | | one entry per name: the keys of `models.<name>` below |"
        else:
            yield from _rows(named, f"{path}.<name>")


def config_reference(schema: dict[str, Any]) -> str:
    """The Markdown page: one table per top-level key, then the keys of a model entry."""
    sections = [HEADER]
    for key, spec in schema["properties"].items():
        lines = [f"## `{key}`", ""]
        if spec.get("description") and (spec.get("properties") or spec.get("additionalProperties")):
            lines += [_text(spec["description"]), ""]
        # a section's own description is its paragraph above, not a row (a key without sub-keys is its only row)
        body = _rows({**spec, "description": ""} if spec.get("properties") else spec, key)
        lines += ["| key | type | default | what it does |", "|---|---|---|---|", *body, ""]
        sections.append("\n".join(lines))
    model = schema.get("$defs", {}).get("model")
    if model:
        lines = [
            "## `models.<name>`: a model entry",
            "",
            "| key | type | default | what it does |",
            "|---|---|---|---|",
        ]
        lines += [row for key, child in model["properties"].items() for row in _rows(child, key)]
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def write_config_reference(schema_path: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Read the schema and write the page (atomically)."""
    try:
        with open(schema_path) as handle:
            schema = yaml.safe_load(handle)
    except OSError as err:
        raise ConfigError(f"config-docs: cannot read the schema {schema_path}: {err}") from err
    with atomic_path(out) as tmp, open(tmp, "w") as handle:
        handle.write(config_reference(schema))
