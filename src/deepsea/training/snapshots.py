"""Snapshot ensembles of one training run: the "poor man's ensembling" of a HackerEarth Deep Learning Challenge
write-up (fine-tuned pretrained networks), an option.

That write-up "added a series of checkpoints in the final stages of training a network, so we'd have not one, but
several slightly different networks after training finished", and averaged their predictions. `train.snapshots: N` keeps
the weights after N evenly spaced steps of the last `train.snapshot_from` fraction of training (the last of them is the
final model itself) in `model.pt`; `deepsea predict` sends every view through every snapshot and averages them all. No
extra training; prediction takes N times as long."""

from __future__ import annotations

import torch
from torch import nn


def snapshot_steps(steps: int, count: int, start: float) -> list[int]:
    """Steps done after which the weights are kept: `count` evenly spaced over (start * steps, steps], the last
    at `steps` (the final model). Fewer when the training is too short to space them; count <= 1: the final only."""
    if count <= 1:
        return [steps]
    first = start * steps
    return sorted({max(1, round(first + (steps - first) * k / count)) for k in range(1, count + 1)})


def weights_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights as they are now, on the CPU, safe from later optimiser steps."""
    return {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
