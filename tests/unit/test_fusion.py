"""Late fusion: an untrained (zero) correction reproduces the convnet; rows are independent; ids are checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepsea.blending.fusion import FeatureGroup, FusionFiles, FusionNet, FusionSettings, fuse
from deepsea.blending.fusion_nets import FusionNets
from deepsea.data.features import FeatureSettings, extract_features
from deepsea.data.imageset import ImageSet
from deepsea.data.splits import Split
from deepsea.errors import DataMismatchError
from deepsea.io import read_json
from deepsea.predictions import Predictions


def test_zero_feature_branch_reproduces_the_convnet_exactly() -> None:
    torch.manual_seed(0)
    net = FusionNet(n_features=7, n_classes=4, hidden=(80, 80))  # the correction layer starts at zero
    probs = torch.softmax(torch.randn(5, 4, dtype=torch.float64), 1).float()
    fused = torch.softmax(net(torch.randn(5, 7), torch.log(probs)), 1)
    torch.testing.assert_close(fused, probs, rtol=1e-6, atol=1e-7)


@pytest.fixture
def fusion_inputs(tiny_packed, tmp_path: Path) -> dict[str, Path]:
    """Made-up convnet predictions (noisy but informative) and real features of the tiny demo."""
    data = ImageSet.load(tiny_packed["train"])
    split = Split.from_json(read_json(tiny_packed["split"]))
    rng = np.random.default_rng(0)
    paths: dict[str, Path] = {}
    for subset, ids in (("train", split.train_ids), ("valid", split.valid_ids)):
        labels = data.labels[data.index_of(ids)]
        probs = rng.dirichlet(np.ones(4), len(ids)) * 0.5 + np.eye(4)[labels] * 0.5
        Predictions(probs, ids, data.class_names).save(tmp_path / f"{subset}.npy")
        paths[subset] = tmp_path / f"{subset}.npy"
    test_ids = ImageSet.load(tiny_packed["test"]).ids.tolist()
    Predictions(rng.dirichlet(np.ones(4), len(test_ids)), test_ids, data.class_names).save(tmp_path / "test.npy")
    paths["test"] = tmp_path / "test.npy"
    for subset in ("train", "test"):
        extract_features(
            tiny_packed[subset], tmp_path / f"f_{subset}.npz", tmp_path / f"f_{subset}.json", FeatureSettings()
        )
    paths["features_train"], paths["features_test"] = tmp_path / "f_train.npz", tmp_path / "f_test.npz"
    return paths


SMALL = FusionSettings(copies=2, epochs=5)


def _fuse(inputs: dict[str, Path], packed: dict[str, Path], out: Path, test: Path | None = None, nets=None) -> dict:
    files = FusionFiles(
        pred_train=inputs["train"],
        pred_valid=inputs["valid"],
        pred_test=test or inputs["test"],
        features_train=inputs["features_train"],
        features_test=inputs["features_test"],
        data=packed["train"],
        split=packed["split"],
    )
    return fuse(
        files,
        SMALL,
        out / "valid.npy",
        out / "test.npy",
        out / "report.json",
        nets_path=nets,
    )


def test_fusion_is_row_independent_and_keeps_ids(fusion_inputs, tiny_packed, tmp_path: Path) -> None:
    report = _fuse(fusion_inputs, tiny_packed, tmp_path / "all")
    assert set(report["groups"]) == {"momentsinfo", "haralick"}
    result = Predictions.load(tmp_path / "all" / "test.npy")
    full, ids = result.probs, result.ids
    assert ids == Predictions.load(fusion_inputs["test"]).ids
    # fuse only the first 10 test images: their fused rows are the same, and no other id appears
    result = Predictions.load(fusion_inputs["test"])
    probs, test_ids, classes = result.probs, result.ids, result.class_names
    Predictions(probs[:10], test_ids[:10], classes).save(tmp_path / "part.npy")
    _fuse(fusion_inputs, tiny_packed, tmp_path / "part", test=tmp_path / "part.npy")
    result = Predictions.load(tmp_path / "part" / "test.npy")
    part, part_ids = result.probs, result.ids
    assert part_ids == test_ids[:10]
    np.testing.assert_allclose(part, full[:10], rtol=1e-6)
    assert np.isfinite(full).all()


def test_saved_nets_fuse_new_images_as_the_test_set_was(fusion_inputs, tiny_packed, tmp_path: Path) -> None:
    """What a model bundle keeps (fusion_nets.py): the nets, applied to the test images' features and convnet
    predictions, give the fused test prediction `fuse` wrote, to the bit; a subset of the rows gives those rows."""
    _fuse(fusion_inputs, tiny_packed, tmp_path / "out", nets=tmp_path / "out" / "nets.pt")
    nets = FusionNets.load(tmp_path / "out" / "nets.pt")
    table = np.load(fusion_inputs["features_test"])
    nets.check_inputs(table["names"].tolist(), Predictions.load(fusion_inputs["test"]).class_names, "test")
    convnet = Predictions.load(fusion_inputs["test"])
    rows = [table["ids"].tolist().index(i) for i in convnet.ids]
    fused = nets.fuse(table["values"][rows], convnet.probs).astype(np.float32)
    assert np.array_equal(fused, Predictions.load(tmp_path / "out" / "test.npy").probs)
    part = nets.fuse(table["values"][rows[5:12]], convnet.probs[5:12]).astype(np.float32)
    np.testing.assert_allclose(part, fused[5:12], rtol=0, atol=1e-7)
    assert len(nets.folds) == 1 and [g.name for g in nets.folds[0]] == ["momentsinfo", "haralick"]
    assert all(len(g.states) == SMALL.copies for g in nets.folds[0])
    _fuse(fusion_inputs, tiny_packed, tmp_path / "again", nets=tmp_path / "again" / "nets.pt")
    assert (tmp_path / "again" / "nets.pt").read_bytes() == (tmp_path / "out" / "nets.pt").read_bytes()


def test_missing_features_named(fusion_inputs, tiny_packed, tmp_path: Path) -> None:
    result = Predictions.load(fusion_inputs["test"])
    probs, ids, classes = result.probs, result.ids, result.class_names
    Predictions(probs[:2], ["nothere.jpg", ids[1]], classes).save(tmp_path / "odd.npy")
    with pytest.raises(DataMismatchError, match=r"no features for 1 image\(s\), e.g. \['nothere.jpg'\]"):
        _fuse(fusion_inputs, tiny_packed, tmp_path / "x", test=tmp_path / "odd.npy")


def test_settings_from_config_json() -> None:
    settings = FusionSettings.from_json(
        json.loads(
            '{"groups": [{"name": "tex", "features": ["haralick"], "weight_decay": 0.1}], "hidden": [8], "copies": 3}'
        )
    )
    assert settings.groups == (FeatureGroup("tex", ("haralick",), 0.1),) and settings.hidden == (8,)
