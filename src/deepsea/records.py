"""Typed records from JSON and YAML mappings: strict construction that names unknown keys and wrong types.

Every stage takes its settings as a dataclass; the workflow hands them over as JSON. Building the dataclass here
refuses a typo by name (with a suggestion), so a stage run by hand fails as clearly as the schema-checked workflow.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from deepsea.errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build dataclass `cls` from `data`, naming unknown keys (with a suggestion) and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else f" Known keys: {sorted(fields)}."
        raise ConfigError(f"{where}.{key}: unknown key.{hint}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = from_dict(hint, value, f"{where}.{key}")  # type: ignore[arg-type]
        elif hint == tuple[float, ...]:
            values[key] = tuple(float(v) for v in value)
        else:
            values[key] = _check_scalar(hint, value, f"{where}.{key}")
    return cls(**values)


def _check_scalar(hint: Any, value: Any, where: str) -> Any:
    expected = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}.get(hint)
    if expected is None:
        return value
    if isinstance(value, bool) and hint is not bool or not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}.")
    return float(value) if hint is float else value


def load_json_argument(text_or_path: str, option: str) -> dict[str, Any]:
    """A JSON object given on the command line, or the path of a file holding one."""
    text = Path(text_or_path).read_text() if not text_or_path.lstrip().startswith("{") else text_or_path
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{option}: not valid JSON ({err}).") from err
