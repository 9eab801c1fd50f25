"""The pretrained model entry (nets/resnet.py, nets/pretrained_weights.py), without network access.

Weights files are made here: a randomly initialised RGB ResNet with ImageNet's 1,000-class head, saved as
.safetensors and .pth and loaded through the entry's `params.weights` path, as a user on an offline node would.
`imagenet` is exercised with the hub client made to fail as it does offline. Checked: the grey stem is the RGB one
summed, the head is new with the data's classes, a wrong file or a failed download names the entry and the fixes,
fine-tuning lowers the training loss, the backbone learns at `backbone_lr` x the head's rate, and a trained model
file is read without ever touching the weights source again.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from conftest import train_tiny
from deepsea.errors import ConfigError
from deepsea.nets.families import nearest_input_size
from deepsea.nets.pretrained_weights import grey_stem, load_pretrained
from deepsea.nets.registry import build_model
from deepsea.training.loop import learning_rate, make_optimizer
from deepsea.training.model_file import load_model
from deepsea.training.settings import load_model_settings

WHERE = "models.tuned"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may reach the internet: the hub client is told it is offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _imagenet_like(backbone: str, path: Path) -> dict[str, torch.Tensor]:
    """A random `backbone` state dict as the libraries publish it: 3-channel stem, 1,000-class head."""
    model = build_model("pretrained", 1000, 64, {"backbone": backbone, "weights": "none"})
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["conv1.weight"] = torch.randn(64, 3, 7, 7)
    state = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": state}, path)
    return state


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_weights_file_loads_with_a_grey_stem_and_a_new_head(tmp_path: Path, suffix: str) -> None:
    file = tmp_path / f"resnet18{suffix}"
    published = _imagenet_like("resnet18", file)
    model = build_model("pretrained", 7, 64, {"backbone": "resnet18", "weights": str(file)})
    head = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("fc.")}
    load_pretrained(model, str(file), "resnet18", WHERE)
    loaded = model.state_dict()
    torch.testing.assert_close(loaded["conv1.weight"], published["conv1.weight"].sum(dim=1, keepdim=True))
    for key in ("layer3.1.conv2.weight", "layer2.0.downsample.0.weight", "bn1.running_var"):
        torch.testing.assert_close(loaded[key], published[key])
    assert loaded["fc.weight"].shape == (7, 512) and torch.equal(loaded["fc.weight"], head["fc.weight"])


def test_the_grey_stem_computes_what_the_rgb_stem_computes_on_a_grey_image() -> None:
    rgb = torch.randn(8, 3, 7, 7)
    grey = torch.rand(2, 1, 20, 20)
    by_rgb = torch.nn.functional.conv2d(grey.expand(-1, 3, -1, -1), rgb)
    torch.testing.assert_close(torch.nn.functional.conv2d(grey, grey_stem(rgb)), by_rgb)


def test_a_wrong_or_missing_file_names_the_entry_and_the_fix(tmp_path: Path) -> None:
    other = tmp_path / "resnet34.pth"
    _imagenet_like("resnet34", other)
    model = build_model("pretrained", 4, 64, {"backbone": "resnet18", "weights": "none"})
    with pytest.raises(ConfigError, match=r"models\.tuned\.params\.weights: .* is not a resnet18's weights.*"
                                          r"models\.tuned\.params\.backbone"):  # fmt: skip
        load_pretrained(model, str(other), "resnet18", WHERE)
    with pytest.raises(ConfigError, match=r"models\.tuned\.params\.weights: .*nowhere\.pth is not a file"):
        load_pretrained(model, str(tmp_path / "nowhere.pth"), "resnet18", WHERE)


def test_imagenet_without_network_names_both_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def offline(*args: object, **kwargs: object) -> str:
        raise OSError("no route to huggingface.co")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    model = build_model("pretrained", 4, 64, {"backbone": "resnet18", "weights": "imagenet"})
    with pytest.raises(ConfigError) as caught:
        load_pretrained(model, "imagenet", "resnet18", WHERE)
    message = str(caught.value)
    assert "models.tuned.params.weights" in message and "timm/resnet18.a1_in1k" in message
    assert "reach huggingface.co" in message and "set models.tuned.params.weights to its path" in message


def test_unknown_backbones_and_bad_rates_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"models\.x: cannot build 'pretrained'.*backbone 'vgg16'"):
        build_model("pretrained", 4, 64, {"backbone": "vgg16"}, "models.x")
    with pytest.raises(ConfigError, match="backbone_lr"):
        build_model("pretrained", 4, 64, {"backbone_lr": 2.0}, "models.x")
    assert [nearest_input_size("pretrained", {}, w) for w in (40, 80, 100)] == [64, 64, 96]  # 32 px steps


@pytest.mark.parametrize(("backbone", "head_name"), [("resnet18", "fc"), ("efficientnet_lite0", "_fc")])
def test_the_backbone_learns_at_a_fraction_of_the_heads_rate(backbone: str, head_name: str) -> None:
    settings = load_model_settings(json.dumps({
        "name": "tuned", "architecture": "pretrained", "input_size": 64,
        "params": {"backbone": backbone, "weights": "none", "backbone_lr": 0.1},
        "train": {"steps": 100, "learning_rate": 0.01},
    }))  # fmt: skip
    model = build_model("pretrained", 4, 64, dict(settings.params))
    optimizer = make_optimizer(settings, model)
    backbone_group, head = optimizer.param_groups
    assert {id(p) for p in head["params"]} == {id(p) for p in getattr(model, head_name).parameters()}
    assert len(backbone_group["params"]) + len(head["params"]) == len(list(model.parameters()))
    assert (backbone_group["lr_scale"], head["lr_scale"]) == (0.1, 1.0)
    assert learning_rate(settings, 0) * backbone_group["lr_scale"] == pytest.approx(0.001)


def test_fine_tuning_lowers_the_training_loss_and_the_model_file_stands_alone(
    tiny_packed: dict[str, Path], tmp_path: Path
) -> None:
    weights = tmp_path / "weights" / "resnet18.safetensors"
    weights.parent.mkdir()
    _imagenet_like("resnet18", weights)
    settings = {
        "name": "tuned", "architecture": "pretrained", "input_size": 32,
        "params": {"backbone": "resnet18", "weights": str(weights), "backbone_lr": 0.5},
        "train": {"steps": 40, "batch_size": 16, "learning_rate": 0.003, "eval_every": 10, "workers": 0},
    }  # fmt: skip
    model_path = train_tiny(settings, tiny_packed, tmp_path)
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    losses = [float(row["train_loss"]) for row in rows]
    assert losses[-1] < losses[0], losses
    weights.unlink()  # the trained model file holds the fine-tuned weights: the source is never read again
    model, loaded, *_ = load_model(model_path, "cpu")
    assert loaded.params["weights"] == str(weights) and model.fc.out_features == 4
    with torch.no_grad():
        assert np.isfinite(model(torch.zeros(2, 1, 32, 32)).numpy()).all()
