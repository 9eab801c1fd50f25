"""Convolution with untied biases: one bias per map *and* position (the Deep Sea documentation, 3.2: "improved
results very slightly").

The output size must be known when the layer is built, because the bias has the shape of the output maps.
"""

from __future__ import annotations

import torch
from torch import nn

from deepsea.nets.layers.layout import memory_format_of


class UntiedBiasConv2d(nn.Module):
    """'same' k x k convolution of (B, C_in, S, S) to (B, C_out, S, S) plus a (C_out, S, S) bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels, size, size))

    @property
    def weight(self) -> torch.Tensor:
        return self.conv.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in place: the convolution's backward needs its input and weight, not its output, so adding the bias into
        # the output is safe for autograd and saves a (B, C, S, S) allocation + pass (15% of a CPU TTA forward)
        out = self.conv(x)
        bias: torch.Tensor = self.bias
        if memory_format_of(out) == torch.channels_last:
            # the bias in the maps' NHWC layout (a C*S*S copy, tiny): broadcasting the NCHW bias over NHWC maps
            # strides through memory and made the add 2.3x slower (~10% of a channels_last CPU TTA forward)
            bias = bias.permute(1, 2, 0).contiguous().permute(2, 0, 1)
        return out.add_(bias)
