"""The trained model's file (model.pt): written once at the end of training, read by every prediction.

It holds what inference needs and nothing the workflow knows: the weights (and a snapshot ensemble's earlier
weights), the model's settings, the input normalisation and the class names. Written through a file object and
atomically, so two identical trainings write identical bytes and a killed job leaves no partial file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from deepsea.data.batches import Normalisation
from deepsea.errors import DeepseaError
from deepsea.io import atomic_path
from deepsea.nets.registry import Network, build_model
from deepsea.records import from_dict
from deepsea.training.settings import ModelSettings

log = logging.getLogger(__name__)


def save_model(
    path: str | os.PathLike[str],
    model: nn.Module,
    settings: ModelSettings,
    norm: Normalisation,
    class_names: list[str],
    *,
    steps: int,
    snapshots: dict[int, dict[str, torch.Tensor]] | None = None,
) -> None:
    """`snapshots`: earlier weights of the run by step (`train.snapshots`), stored only when there are any."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    saved = {
        "state_dict": state,
        "settings": settings.to_dict(),
        "normalisation": asdict(norm),
        "class_names": class_names,
        "steps": steps,
    }
    if snapshots:
        saved["snapshots"] = {step: snapshots[step] for step in sorted(snapshots)}
    # through a file object: torch.save names the archive's records after a path it is given (here the random
    # temporary name), which made two identical trainings write different bytes
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(saved, handle)


class TrainedModel(NamedTuple):
    """A model file read for inference: the network, its settings, its input normalisation, its classes and the
    earlier networks of a snapshot ensemble (`train.snapshots`) by step (none for an ordinary model)."""

    network: Network
    settings: ModelSettings
    norm: Normalisation
    class_names: list[str]
    snapshots: dict[int, Network]


def load_model(
    path: str | os.PathLike[str], device: torch.device
) -> tuple[Network, ModelSettings, Normalisation, list[str]]:
    """A trained model ready for inference, with its settings, normalisation and class names."""
    trained = load_model_and_snapshots(path, device)
    return trained.network, trained.settings, trained.norm, trained.class_names


def load_model_and_snapshots(path: str | os.PathLike[str], device: torch.device) -> TrainedModel:
    """The model file at `path` with its snapshot networks, from one read of the file."""
    if not Path(path).is_file():
        raise DeepseaError(f"{path}: trained model not found. Run `snakemake {path}` first.")
    state = torch.load(path, map_location="cpu", weights_only=False)
    settings = from_dict(ModelSettings, state["settings"], str(path))
    model = _network(settings, state, state["state_dict"], device)
    snapshots = {
        step: _network(settings, state, weights, device) for step, weights in state.get("snapshots", {}).items()
    }
    return TrainedModel(model, settings, Normalisation(**state["normalisation"]), state["class_names"], snapshots)


def _network(settings: ModelSettings, state: dict[str, Any], weights: dict, device: torch.device) -> Network:
    model = build_model(
        settings.architecture,
        len(state["class_names"]),
        settings.pixels,
        settings.params,
        f"models.{settings.name}",
    )
    model.load_state_dict(weights)
    return model.to(device).eval()


def copy_early_layers(model: nn.Module, source_path: str | os.PathLike[str], settings: ModelSettings) -> None:
    """Copy the convolution parameters of `source_path` into `model` wherever name and shape match."""
    if not Path(source_path).is_file():
        raise DeepseaError(f"models.{settings.name}.preinit: {source_path} not found; train that model first.")
    source = torch.load(source_path, map_location="cpu", weights_only=False)["state_dict"]
    own = model.state_dict()
    copied = {k: v for k, v in source.items() if ".features." in k and k in own and own[k].shape == v.shape}
    if not copied:
        raise DeepseaError(
            f"models.{settings.name}.preinit: no convolution layer of {source_path} matches this architecture "
            "(names and shapes must agree); pre-initialise from a model of the same family and widths."
        )
    model.load_state_dict(copied, strict=False)
    log.info(
        "pre-initialised %d tensors (%d parameters) from %s",
        len(copied),
        sum(v.numel() for v in copied.values()),
        source_path,
    )
