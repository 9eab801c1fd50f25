"""Architecture registry: a name in `config.yaml` -> the network it builds.

The models of the Deep Sea documentation's appendix are rows of one table (`FAMILY`), built by one function, so the
differences between them are visible at a glance. Details the write-ups do not give (the exact widths of the "big"
models, the second stream of the multiscale models) are our reconstruction and say so in `note`.

Every model takes the same parameters (`params:` of a model entry): `width` multiplies every layer width (the demo
runs the same architectures at a fraction of the width), `depth` keeps only the first stages (small inputs), and
`dense`, `pool`, `dropout`, `untied_bias` as named. Unknown parameters are an error that names the model entry.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deepsea.data.augment import InputSpec
from deepsea.errors import ConfigError
from deepsea.nets.cyclic_net import CyclicConvNet, NetSpec, StreamSpec
from deepsea.nets.plain import PlainConvNet

Network = CyclicConvNet | PlainConvNet  # what build_model returns: an nn.Module with `inputs`, its input specs

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


def _widths(stages: tuple[tuple[int, ...], ...], width: float, depth: int) -> tuple[tuple[int, ...], ...]:
    kept = stages[:depth] if depth else stages
    return tuple(tuple(max(2, round(w * width)) for w in stage) for stage in kept)


def _odd_half(size: int) -> int:
    half = size // 2
    return half if half % 2 else half + 1


def build_family(
    family: Family,
    n_classes: int,
    input_size: int,
    *,
    width: float = 1.0,
    depth: int = 0,
    dense: int | None = None,
    pool: str = "rms",
    dropout: float = 0.5,
    untied_bias: bool = True,
) -> CyclicConvNet:
    """Build a `Family` row; `width`/`depth` shrink it, `dense` overrides its dense units (before `width`)."""
    units = max(2, round((dense or family.dense) * width))
    main = StreamSpec(
        _widths(family.stages, width, depth),
        InputSpec(input_size, None, family.rotations),
        family.roll,
        family.first_filter,
        family.final_pool if not depth else True,
        units,
    )
    extra = tuple(
        StreamSpec(
            _widths(family.stages, width * s.width, min(s.depth, depth) if depth else s.depth),
            InputSpec(_odd_half(input_size) if s.size == "half" else input_size, s.fixed_scale),
            family.roll,
            3,
            True,
            units,
        )
        for s in family.streams
    )
    spec = NetSpec(
        (main, *extra),
        merged_dense=(units,),
        dihedral=family.dihedral,
        pool=pool,
        dropout=dropout,
        untied_bias=untied_bias,
        notes=(family.note,),
    )
    return CyclicConvNet(spec, n_classes)


def plain(
    n_classes: int, input_size: int, widths: tuple[int, ...] = (16, 32, 64), dense: int = 128, dropout: float = 0.5
) -> PlainConvNet:
    """The foundation's baseline without rotation invariance."""
    return PlainConvNet(n_classes, input_size, list(widths), dense, dropout)


# Every family row is `build_family` with the row bound; its remaining keyword parameters are what `params:` accepts.
ARCHITECTURES: dict[str, Callable[..., Network]] = {
    "plain": plain,
    **{name: functools.partial(build_family, family) for name, family in FAMILY.items()},
}


def build_model(
    architecture: str, n_classes: int, input_size: int, params: dict[str, Any], where: str = "model"
) -> Network:
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
