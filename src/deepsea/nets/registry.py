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
from typing import Any

from deepsea.data.augment import InputSpec
from deepsea.errors import ConfigError
from deepsea.nets.cyclic_net import CyclicConvNet, NetSpec, StreamSpec
from deepsea.nets.efficientnet_lite import SCALING, EfficientNetLite
from deepsea.nets.families import FAMILY, PLAIN_WIDTHS, Family
from deepsea.nets.plain import PlainConvNet
from deepsea.nets.resnet import BACKBONES, ResNet

Network = CyclicConvNet | PlainConvNet | ResNet | EfficientNetLite  # an nn.Module with `inputs`, its input specs
PRETRAINED_NETS = (ResNet, EfficientNetLite)  # networks that start from a backbone's weights and have param_groups
PRETRAINED_BACKBONES = sorted(BACKBONES) + sorted(SCALING)


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
    n_classes: int, input_size: int, widths: tuple[int, ...] = PLAIN_WIDTHS, dense: int = 128, dropout: float = 0.5
) -> PlainConvNet:
    """The foundation's baseline without rotation invariance."""
    return PlainConvNet(n_classes, input_size, list(widths), dense, dropout)


def pretrained(
    n_classes: int,
    input_size: int,
    *,
    backbone: str = "efficientnet_lite0",
    weights: str = "imagenet",
    backbone_lr: float = 0.1,
    dropout: float = 0.2,
) -> ResNet | EfficientNetLite:
    """A pretrained backbone with a new head (nets/resnet.py, nets/efficientnet_lite.py), fine-tuned; `weights`
    (imagenet, a file, none) are loaded when training starts (nets/pretrained_weights.py), never when a trained
    model file is read."""
    _check_pretrained(backbone, weights)
    if not 0 <= backbone_lr <= 1:
        raise ValueError(f"backbone_lr {backbone_lr} must be in [0, 1] (a fraction of the head's learning rate)")
    net = ResNet if backbone in BACKBONES else EfficientNetLite
    return net(backbone, n_classes, input_size, weights=weights, dropout=dropout, backbone_lr=backbone_lr)


def probe(
    n_classes: int,
    input_size: int,
    *,
    backbone: str = "efficientnet_lite0",
    weights: str = "imagenet",
    train_views: int = 4,
) -> EfficientNetLite:
    """A linear probe: the frozen pretrained backbone's pooled features and a logistic regression fitted on them
    (training/probe.py), held as the network's new head so it predicts, TTAs and bundles like any model.
    `train_views`: augmented views of every training image fitted on beside its centre view."""
    _check_pretrained(backbone, weights)
    if backbone not in SCALING:
        raise ValueError(f"a probe's backbone is one of {sorted(SCALING)}, got '{backbone}'")
    if train_views < 0:
        raise ValueError(f"train_views {train_views} must be 0 (the centre view only) or more")
    net = EfficientNetLite(backbone, n_classes, input_size, weights=weights, dropout=0.0, backbone_lr=0.0)
    net.train_views = train_views
    return net


def _check_pretrained(backbone: str, weights: str) -> None:
    if backbone not in PRETRAINED_BACKBONES:
        raise ValueError(f"backbone '{backbone}' is not one of {PRETRAINED_BACKBONES}")
    if not isinstance(weights, str) or not weights:
        raise ValueError("weights must be imagenet, none or the path of a weights file")


# Every family row is `build_family` with the row bound; its remaining keyword parameters are what `params:` accepts.
ARCHITECTURES: dict[str, Callable[..., Network]] = {
    "plain": plain,
    "pretrained": pretrained,
    "probe": probe,
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
