"""The Deep Sea convnet family: cyclic slice -> 3x3 convs with untied biases and rolls -> maxout -> cyclic pool.

Read top to bottom like the layer table of the Deep Sea blog post (the 13-layer example, input 95x95, 4-way):

    cyclic slice                       (4B, 1, 95, 95)
    conv 32, conv 16, maxpool 3x3s2    (4B, 16, 47, 47)   roll -> (4B, 64, 47, 47)
    conv 64, conv 32, maxpool          (4B, 32, 23, 23)   roll -> (4B, 128, 23, 23)
    conv 128, 128, 64, maxpool         (4B, 64, 11, 11)   roll -> (4B, 256, 11, 11)
    conv 256, 256, 128, maxpool        (4B, 128, 5, 5)    roll -> (4B, 512, 5, 5)
    dense 512 (2-piece maxout)         (4B, 512)
    cyclic pool (rms)                  (B, 512)
    dense 512 (2-piece maxout)         (B, 512)
    dense n_classes (softmax in the loss)

A network has one or more *streams* (multiscale models): each sees its own rescaling of the image, has its own
slice, convolutions, first dense layer and cyclic pool; the pooled features of all streams are concatenated
("merged late") before the shared dense layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from deepsea.data.augment import InputSpec
from deepsea.nets.init import orthogonal_init
from deepsea.nets.layers.cyclic import CyclicPool, CyclicRoll, CyclicSlice
from deepsea.nets.layers.maxout import MaxoutLinear
from deepsea.nets.layers.untied_bias import UntiedBiasConv2d

LEAKINESS = 1.0 / 3.0  # the Deep Sea documentation, 3.2.3


@dataclass(frozen=True)
class StreamSpec:
    """One input scale and its convolution stack."""

    stages: tuple[tuple[int, ...], ...]  # conv widths per stage; a 3x3 stride-2 max-pool ends each stage
    input: InputSpec
    roll: str = "pool"  # conv rolls after each pooling layer ("pool"), after every convolution ("all"), or "none"
    first_filter: int = 3  # filter size of the first convolution (7 in the "broaden_7x7" model)
    final_pool: bool = True  # False: the last stage is not followed by pooling (convroll5 at 95 px ends at 5x5)
    dense: int = 512  # maxout units of the stream's dense layer, before the cyclic pool


@dataclass(frozen=True)
class NetSpec:
    streams: tuple[StreamSpec, ...]
    merged_dense: tuple[int, ...] = (512,)  # maxout layers after the streams are merged
    dihedral: bool = False  # 8-way slice: the four turns of the image and of its mirror image
    pool: str = "rms"
    dropout: float = 0.5
    untied_bias: bool = True
    maxout_pieces: int = 2
    notes: tuple[str, ...] = field(default=())


def _pooled(size: int) -> int:
    return (size - 3) // 2 + 1


class Stream(nn.Module):
    def __init__(self, spec: StreamSpec, net: NetSpec):
        super().__init__()
        self.n_bases = len(spec.input.rotations)
        self.slice = CyclicSlice(self.n_bases, net.dihedral)
        group = self.slice.group_size
        if spec.roll != "none" and group != 4:
            raise ValueError("conv rolls need the 4-way slice (the 8-way cp8 model has no rolls)")
        layers: list[nn.Module] = []
        channels, size = 1, spec.input.size
        for s, widths in enumerate(spec.stages):
            for i, width in enumerate(widths):
                k = spec.first_filter if (s, i) == (0, 0) else 3
                conv = (
                    UntiedBiasConv2d(channels, width, k, size)
                    if net.untied_bias
                    else nn.Conv2d(channels, width, k, padding=k // 2)
                )
                # in place: a convolution's output is not saved for its backward
                layers += [conv, nn.LeakyReLU(LEAKINESS, inplace=True)]
                channels = width
                if spec.roll == "all":
                    layers.append(CyclicRoll())
                    channels *= 4
            if s < len(spec.stages) - 1 or spec.final_pool:
                if size < 3:
                    raise ValueError(f"input size {spec.input.size} is too small for {len(spec.stages)} stages")
                layers.append(nn.MaxPool2d(3, stride=2))
                size = _pooled(size)
                if spec.roll == "pool":
                    layers.append(CyclicRoll())
                    channels *= 4
        self.features = nn.Sequential(*layers)  # (G*B, channels, size, size)
        self.out_shape = (channels, size, size)
        self.dense = nn.Sequential(
            nn.Flatten(), nn.Dropout(net.dropout), MaxoutLinear(channels * size * size, spec.dense, net.maxout_pieces)
        )
        self.pool = CyclicPool(group, net.pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_rotations, S, S) -> (B, dense) rotation-invariant features."""
        if x.shape[1] != self.n_bases:
            raise ValueError(f"this stream takes {self.n_bases} input channel(s) (one per rotation), got {x.shape[1]}")
        return self.pool(self.dense(self.features(self.slice(x))))


class CyclicConvNet(nn.Module):
    def __init__(self, spec: NetSpec, n_classes: int):
        super().__init__()
        self.spec = spec
        self.inputs = [s.input for s in spec.streams]  # what the data pipeline must produce, in order
        self.streams = nn.ModuleList(Stream(s, spec) for s in spec.streams)
        layers: list[nn.Module] = []
        features = sum(s.dense for s in spec.streams)
        for units in spec.merged_dense:
            layers += [nn.Dropout(spec.dropout), MaxoutLinear(features, units, spec.maxout_pieces)]
            features = units
        layers += [nn.Dropout(spec.dropout), nn.Linear(features, n_classes)]
        self.head = nn.Sequential(*layers)
        orthogonal_init(self)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """One (B, 1, S_i, S_i) tensor per stream -> (B, n_classes) logits."""
        return self.head(torch.cat([stream(x) for stream, x in zip(self.streams, inputs, strict=True)], dim=1))
