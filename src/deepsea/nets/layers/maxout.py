"""Maxout dense layer: each unit is the max of `pieces` linear pieces (2 in the original's dense layers)."""

from __future__ import annotations

import torch
from torch import nn


class MaxoutLinear(nn.Module):
    """(B, in_features) -> (B, units)."""

    def __init__(self, in_features: int, units: int, pieces: int = 2):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.units, self.pieces).amax(-1)
