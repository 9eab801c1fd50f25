"""ResNets (He et al. 2016, "Deep Residual Learning for Image Recognition") for fine-tuning pretrained weights.

The pretrained model entry (`architecture: pretrained`, nets/pretrained.py) fine-tunes an ImageNet-pretrained
backbone, the approach of the winning fine-tuned-network write-up that deepsea rebuilds beside Deep Sea (Keras'
pretrained Inception and ResNet, aggressive augmentation, 10-view TTA, checkpoint ensembles). The networks are
defined here, with the parameter names of torchvision's and timm's ResNets (`conv1`, `bn1`, `layer1.0.conv1`, ...,
`layer2.0.downsample.0`, `fc`), so the weights files those libraries publish load as they are; the libraries
themselves are not needed (docs/pretrained.md says why).

One input channel: the grey images. A pretrained RGB stem is folded into it by summing its filters over the colour
channels (nets/pretrained_weights.py), which computes exactly what the RGB network computes on the grey image
copied into all three channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepsea.data.augment import InputSpec


@dataclass(frozen=True)
class ResNetShape:
    """Blocks per stage and the kind of block: the ResNet paper's table 1."""

    blocks: tuple[int, int, int, int]
    bottleneck: bool


BACKBONES = {
    "resnet18": ResNetShape((2, 2, 2, 2), bottleneck=False),
    "resnet34": ResNetShape((3, 4, 6, 3), bottleneck=False),
    "resnet50": ResNetShape((3, 4, 6, 3), bottleneck=True),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)
        self.downsample = _shortcut(channels_in, channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(x)) + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(channels_in, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)  # stride here: v1.5
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.act = nn.ReLU(inplace=True)
        self.downsample = _shortcut(channels_in, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act(self.bn1(self.conv1(x)))
        x = self.act(self.bn2(self.conv2(x)))
        return self.act(self.bn3(self.conv3(x)) + shortcut)


def _shortcut(channels_in: int, channels_out: int, stride: int) -> nn.Sequential | None:
    """A 1x1 projection where the block changes shape (torchvision's and timm's `downsample.0`/`.1`)."""
    if stride == 1 and channels_in == channels_out:
        return None
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 1, stride=stride, bias=False), nn.BatchNorm2d(channels_out)
    )


def _stage(
    block: type[BasicBlock] | type[Bottleneck], channels_in: int, channels: int, count: int, stride: int
) -> nn.Sequential:
    """`count` blocks, the first one strided (and projecting its shortcut)."""
    first = block(channels_in, channels, stride)
    rest = [block(channels * block.expansion, channels, 1) for _ in range(count - 1)]
    return nn.Sequential(first, *rest)


class ResNet(nn.Module):
    """A ResNet (`backbone`, a BACKBONES name) over one grey input channel with a new `n_classes` head;
    `backbone_lr` scales the learning rate of everything but the head (discriminative fine-tuning: the pretrained
    layers move less than the new head). `weights` says where training starts from (imagenet, a file, none: read by
    nets/pretrained_weights.py when training starts); it is recorded, never loaded here."""

    def __init__(
        self,
        backbone: str,
        n_classes: int,
        input_size: int,
        *,
        weights: str = "none",
        dropout: float = 0.0,
        backbone_lr: float = 1.0,
    ) -> None:
        super().__init__()
        shape = BACKBONES[backbone]
        self.inputs = [InputSpec(input_size)]
        self.backbone, self.weights, self.backbone_lr = backbone, weights, backbone_lr
        self.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        block = Bottleneck if shape.bottleneck else BasicBlock
        widths = (64, 128, 256, 512)
        self.layer1 = _stage(block, 64, widths[0], shape.blocks[0], stride=1)
        self.layer2 = _stage(block, widths[0] * block.expansion, widths[1], shape.blocks[1], stride=2)
        self.layer3 = _stage(block, widths[1] * block.expansion, widths[2], shape.blocks[2], stride=2)
        self.layer4 = _stage(block, widths[2] * block.expansion, widths[3], shape.blocks[3], stride=2)
        channels_in = widths[3] * block.expansion
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels_in, n_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """He init for convolutions, unit BatchNorm (torchvision's), so a backbone without pretrained weights
        trains from scratch sensibly."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def param_groups(self) -> list[dict]:
        """The optimiser's parameter groups: the backbone at `backbone_lr` x the learning rate, the head at 1 x
        (`lr_scale`, read by the training loop's schedule)."""
        head = list(self.fc.parameters())
        head_ids = {id(p) for p in head}
        backbone = [p for p in self.parameters() if id(p) not in head_ids]
        return [{"params": backbone, "lr_scale": self.backbone_lr}, {"params": head, "lr_scale": 1.0}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) normalised grey images -> (B, n_classes) logits."""
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))
