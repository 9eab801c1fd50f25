"""Architecture registry: a name in `config.yaml` -> a function that builds the network.

Each builder takes the number of classes, the input size and the entry's `params` mapping; unknown params are an
error naming the model entry (a typo must not silently train a different network).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from deepsea.errors import ConfigError
from deepsea.models.plain import PlainConvNet


def plain(
    n_classes: int, input_size: int, widths: tuple[int, ...] = (16, 32, 64), dense: int = 128, dropout: float = 0.5
) -> nn.Module:
    return PlainConvNet(n_classes, input_size, list(widths), dense, dropout)


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"plain": plain}


def build_model(
    architecture: str, n_classes: int, input_size: int, params: dict[str, Any], where: str = "model"
) -> nn.Module:
    """Build `architecture` with `params`, naming the model entry in every error."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"{where}.architecture: unknown '{architecture}'. Known: {sorted(ARCHITECTURES)}.")
    builder = ARCHITECTURES[architecture]
    accepted = set(inspect.signature(builder).parameters) - {"n_classes", "input_size"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(f"{where}.params: unknown {unknown} for '{architecture}'. Accepted: {sorted(accepted)}.")
    try:
        return builder(n_classes, input_size, **params)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: cannot build '{architecture}' with params {params}: {err}") from err
