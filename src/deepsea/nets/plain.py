"""The foundation's plain convnet: VGG-style 3x3 conv blocks with 3x3 stride-2 max-pooling, a dense layer.

A deliberately simple, real baseline (no rotation invariance) that later, cyclic architectures are measured
against. It already uses the family's ingredients that need no special layers: 'same' 3x3 convolutions, leaky ReLU
with slope 1/3, overlapping 3x3 stride-2 pooling, dropout 0.5 before the classifier, orthogonal init (models/init.py).
"""

from __future__ import annotations

import torch
from torch import nn

from deepsea.data.augment import InputSpec
from deepsea.nets.init import orthogonal_init

LEAKINESS = 1.0 / 3.0  # the Deep Sea documentation, section 3.2.3


class PlainConvNet(nn.Module):
    def __init__(self, n_classes: int, input_size: int, widths: list[int], dense: int, dropout: float = 0.5):
        super().__init__()
        self.inputs = [InputSpec(input_size)]
        layers: list[nn.Module] = []
        channels, size = 1, input_size
        for width in widths:  # each block: two 3x3 'same' convolutions, then 3x3 stride-2 pooling
            layers += [
                nn.Conv2d(channels, width, 3, padding=1),
                nn.LeakyReLU(LEAKINESS, inplace=True),  # in place: a conv's output is not saved for its backward
                nn.Conv2d(width, width, 3, padding=1),
                nn.LeakyReLU(LEAKINESS, inplace=True),
                nn.MaxPool2d(3, stride=2),
            ]
            channels, size = width, (size - 3) // 2 + 1  # e.g. 32 -> 15 -> 7 -> 3
            if size < 1:
                raise ValueError(f"input_size {input_size} is too small for {len(widths)} pooling stages")
        self.features = nn.Sequential(*layers)  # (B, widths[-1], size, size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels * size * size, dense),
            nn.LeakyReLU(LEAKINESS),
            nn.Dropout(dropout),
            nn.Linear(dense, n_classes),
        )
        orthogonal_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) normalised images -> (B, n_classes) logits."""
        return self.classifier(self.features(x))
