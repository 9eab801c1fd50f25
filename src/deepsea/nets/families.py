"""The architectures' shapes, without torch: the Deep Sea model table (`FAMILY`) and the input sizes each takes.

Kept apart from registry.py (which builds the networks) so that choosing an input size for the data (`input_size:
auto`) and the workflow's summary need no torch. Details the write-ups do not give (the exact widths of the "big"
models, the second stream of the multiscale models) are our reconstruction and say so in `note`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepsea.errors import ConfigError

PLAIN_WIDTHS = (16, 32, 64)  # the plain net's default conv widths, one pooled block each
PRETRAINED_DOWNSAMPLING = 5  # ResNets and EfficientNet-Lites: five stride-2 steps (input 32x the last map)

# The 13-layer model of the Deep Sea blog post's table: conv widths per stage, each stage ending in 3x3s2 max-pooling.
CONVROLL4 = ((32, 16), (64, 32), (128, 128, 64), (256, 256, 128))
BIG = tuple(tuple(w * 3 // 2 for w in stage) for stage in CONVROLL4)  # 1.5x wider
CONVROLL5 = (*CONVROLL4, (512, 512, 256))  # a fifth stage, not pooled: 95 px still ends at 5x5


@dataclass(frozen=True)
class SecondStream:
    """A fixed-scale stream of a multiscale model: the image shrunk by `fixed_scale`, not size-normalised."""

    fixed_scale: float
    size: str = "half"  # input size: "half" of the main input (rounded to odd) or the "same"
    width: float = 0.5  # width relative to the main stream
    depth: int = 3  # stages


@dataclass(frozen=True)
class Family:
    stages: tuple[tuple[int, ...], ...] = CONVROLL4
    roll: str = "pool"
    dihedral: bool = False
    first_filter: int = 3
    final_pool: bool = True
    dense: int = 512
    streams: tuple[SecondStream, ...] = ()
    rotations: tuple[float, ...] = (0.0,)  # input channels: the view turned by these angles (cp8: 0 and 45)
    note: str = ""


FAMILY: dict[str, Family] = {
    "convroll4": Family(note="the 13-layer example of the Deep Sea blog post (10 conv + 3 dense layers)"),
    "convroll4_1024_lesswd": Family(dense=1024, note="1024 maxout units; 'lesswd' is train.weight_decay"),
    "convroll4_big_wd_maxout512": Family(stages=BIG, note="1.5x wider convolutions (our reading of 'big')"),
    "convroll4_big_weightdecay": Family(stages=BIG, dense=1024, note="1.5x wider, 1024 maxout units"),
    "convroll4_doublescale_fs5": Family(streams=(SecondStream(5.0),), note="+ a half-width stream at 1/5 scale"),
    "convroll_all_broaden_7x7": Family(
        stages=tuple(tuple(w * 5 // 4 for w in stage) for stage in CONVROLL4),
        roll="all",
        first_filter=7,
        note="rolls after every convolution, 1.25x wider, 7x7 first filters",
    ),
    "cp8": Family(
        roll="none",
        rotations=(0.0, 45.0),
        note="8-way cyclic pooling over 45-degree steps (0 and 45 degree inputs, 4 turns each), no rolls",
    ),
    "cp8_dihedral": Family(
        roll="none",
        dihedral=True,
        note="cp8 over the square's 8 symmetries (4 turns of the image and of its mirror): exactly invariant to "
        "turns and flips, no 45-degree interpolation",
    ),
    "cr4_ds": Family(streams=(SecondStream(2.0),), note="convroll4 + a half-width stream at 1/2 scale"),
    "doublescale_fs5_latemerge_2233": Family(
        streams=(SecondStream(5.0, size="same", width=1.0, depth=4),),
        note="two full (2-2-3-3 conv) streams, size-rescaled and 1/5 scale, merged after their dense layers",
    ),
    "triplescale_fs2_fs5": Family(
        streams=(SecondStream(2.0), SecondStream(5.0)), note="size-rescaled + 1/2 scale + 1/5 scale streams"
    ),
    "convroll5_preinit": Family(
        stages=CONVROLL5, final_pool=False, note="convroll4 + a fifth conv stage; set `preinit: <convroll4 entry>`"
    ),
}


def rotation_invariant(architecture: str) -> bool:
    """Does the architecture pool over turned copies of its input (every `FAMILY` model; `plain` does not)? Such a
    model cannot tell an image from itself turned by 90 degrees (a 6 from a 9), whatever its views."""
    return architecture in FAMILY


def pooled_stages(architecture: str, params: dict[str, Any]) -> int:
    """How many 3x3 stride-2 poolings the main stream applies (a `depth` keeps that many stages, all pooled)."""
    if architecture == "plain":
        return len(params.get("widths", PLAIN_WIDTHS))
    if architecture in ("pretrained", "probe"):
        return PRETRAINED_DOWNSAMPLING
    if architecture not in FAMILY:
        raise ConfigError(
            f"architecture: unknown '{architecture}'. Known: {sorted(['plain', 'pretrained', 'probe', *FAMILY])}."
        )
    family = FAMILY[architecture]
    depth = params.get("depth", 0)
    if depth:
        return min(depth, len(family.stages))
    return len(family.stages) - (0 if family.final_pool else 1)


def nearest_input_size(architecture: str, params: dict[str, Any], wanted: float, at_most: int = 10**6) -> int:
    """The input size nearest `wanted` that the architecture takes symmetrically: after p poolings of 3x3 stride 2,
    sizes 2^p x m - 1 (31, 47, 63, 95 ...) leave every map odd, so the cyclic nets' rolled maps align exactly (31 ->
    15 -> 7 -> 3); the plain net takes multiples of 2^p. At least two such steps, so the last map is not 1 px; not
    above `at_most` where a smaller one exists."""
    step = 2 ** pooled_stages(architecture, params)
    offset = 1 if architecture in FAMILY else 0
    m = max(2, round((wanted + offset) / step))
    while m > 2 and step * m - offset > at_most:
        m -= 1
    return step * m - offset
