"""Choosing where tensors live: `device: auto` means CUDA when present, else CPU."""

from __future__ import annotations

import torch

from deepsea.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: '{name}' requested but CUDA is not available here; use 'auto' or 'cpu'.")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"device: 'auto', 'cpu' or 'cuda[:N]', got '{name}'.")
    return torch.device(name)
