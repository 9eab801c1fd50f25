"""Cyclic slice, roll and pool: rotation invariance by weight sharing (the Deep Sea documentation, section 3.2.1-3.2.2).

Batch layout: after slicing, a batch of B images becomes G*B "orientations", orientation-major: rows
[g*B:(g+1)*B] hold every image seen in orientation g. 4-way: g = 0..3 is a counter-clockwise turn by g*90 degrees
(exact: a transpose and a flip, no interpolation). 8-way as the original cp8: g = 4..7 are the four turns of a
second input, the same view turned 45 degrees by the data pipeline's warp. 8-way `dihedral`: g = 4..7 are the four
turns of the mirrored image (exact). Rotating the input by 90 degrees permutes the orientations cyclically, so any
function of the network that is symmetric in the orientations (the cyclic pool) is exactly invariant to it.
"""

from __future__ import annotations

import torch
from torch import nn

from deepsea.nets.layers.layout import memory_format_of


def rot90(x: torch.Tensor, k: int) -> torch.Tensor:
    """Turn (..., H, W) maps counter-clockwise by k*90 degrees (as np.rot90 on the last two axes)."""
    return torch.rot90(x, k % 4, dims=(-2, -1))


class CyclicSlice(nn.Module):
    """(B, n_bases, H, W) -> (G*B, 1, H, W): every base view in its 4 turns; G = 4 * n_bases (* 2 if dihedral).

    Bases are the input channels: one (the usual 4-way slice) or the 0 and 45 degree views of cp8 (8 orientations
    45 degrees apart). `dihedral` adds the mirror image of every base (8-way: the symmetries of the square).
    """

    def __init__(self, n_bases: int = 1, dihedral: bool = False):
        super().__init__()
        self.dihedral = dihedral
        self.group_size = 4 * n_bases * (2 if dihedral else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bases = list(x.split(1, dim=1))
        if self.dihedral:
            bases += [b.flip(-1) for b in bases]
        return torch.cat([rot90(b, k) for b in bases for k in range(4)], dim=0)


class CyclicRoll(nn.Module):
    """(4B, C, H, W) -> (4B, 4C, H, W): each orientation also sees the other three orientations' maps.

    For orientation i the output stacks, for d = 0..3, the maps of orientation (i + d) mod 4 turned back by d*90
    degrees, i.e. into orientation i's frame. A 90-degree turn of the input shifts i by one, and the output rows
    shift with it: the roll keeps the orientations permuting cyclically, so cyclic pooling stays invariant.
    Only the 4-way group is supported (the original rolled only in 4-way models; cp8 had no roll).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.chunk(4, dim=0)  # orientation g: (B, C, H, W)
        b, c = groups[0].shape[:2]
        # each turned map is copied once, straight into its block of an output in the input's memory layout: two
        # torch.cat would copy it twice, and (under channels_last inference) the next convolution would copy the
        # NCHW result a third time into NHWC (measured on the demo convroll4's rolls, 128 views: 3-8x faster)
        shape = (4 * b, 4 * c, *x.shape[2:])
        out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=memory_format_of(x))
        for i in range(4):
            for d in range(4):
                out[i * b : (i + 1) * b, d * c : (d + 1) * c].copy_(rot90(groups[(i + d) % 4], -d))
        return out


class CyclicDenseRoll(nn.Module):
    """(G*B, D) -> (G*B, G*D): each orientation's feature vector followed by those of the next orientations."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.chunk(self.group_size, dim=0)
        g = self.group_size
        return torch.cat([torch.cat([groups[(i + d) % g] for d in range(g)], dim=1) for i in range(g)], dim=0)


class CyclicPool(nn.Module):
    """(G*B, D) -> (B, D): pool each feature over the G orientations; `rms` was best in the original."""

    def __init__(self, group_size: int = 4, kind: str = "rms"):
        super().__init__()
        if kind not in ("rms", "mean", "max"):
            raise ValueError(f"cyclic pool must be rms, mean or max, got {kind!r}")
        self.group_size, self.kind = group_size, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stacked = x.reshape(self.group_size, -1, *x.shape[1:])  # (G, B, D)
        if self.kind == "mean":
            return stacked.mean(0)
        if self.kind == "max":
            return stacked.amax(0)
        return torch.sqrt(stacked.square().mean(0) + 1e-12)
