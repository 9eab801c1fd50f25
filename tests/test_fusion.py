"""Late fusion: an untrained (zero) correction reproduces the convnet; rows are independent; ids are checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepsea.errors import DataMismatchError
from deepsea.features import FeatureSettings, extract_features
from deepsea.fusion import FeatureGroup, FusionNet, FusionSettings, fuse
from deepsea.imageset import ImageSet
from deepsea.io import load_predictions, read_json, save_predictions
from deepsea.splits import Split


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
        save_predictions(tmp_path / f"{subset}.npy", probs, ids, data.class_names)
        paths[subset] = tmp_path / f"{subset}.npy"
    test_ids = ImageSet.load(tiny_packed["test"]).ids.tolist()
    save_predictions(tmp_path / "test.npy", rng.dirichlet(np.ones(4), len(test_ids)), test_ids, data.class_names)
    paths["test"] = tmp_path / "test.npy"
    for subset in ("train", "test"):
        extract_features(
            tiny_packed[subset], tmp_path / f"f_{subset}.npz", tmp_path / f"f_{subset}.json", FeatureSettings()
        )
    paths["features_train"], paths["features_test"] = tmp_path / "f_train.npz", tmp_path / "f_test.npz"
    return paths


SMALL = FusionSettings(copies=2, epochs=5)


def _fuse(inputs: dict[str, Path], packed: dict[str, Path], out: Path, test: Path | None = None) -> dict:
    return fuse(
        inputs["train"],
        inputs["valid"],
        test or inputs["test"],
        inputs["features_train"],
        inputs["features_test"],
        packed["train"],
        packed["split"],
        SMALL,
        out / "valid.npy",
        out / "test.npy",
        out / "report.json",
    )


def test_fusion_is_row_independent_and_keeps_ids(fusion_inputs, tiny_packed, tmp_path: Path) -> None:
    report = _fuse(fusion_inputs, tiny_packed, tmp_path / "all")
    assert set(report["groups"]) == {"momentsinfo", "haralick"}
    full, ids, _ = load_predictions(tmp_path / "all" / "test.npy")
    assert ids == load_predictions(fusion_inputs["test"])[1]
    # fuse only the first 10 test images: their fused rows are the same, and no other id appears
    probs, test_ids, classes = load_predictions(fusion_inputs["test"])
    save_predictions(tmp_path / "part.npy", probs[:10], test_ids[:10], classes)
    _fuse(fusion_inputs, tiny_packed, tmp_path / "part", test=tmp_path / "part.npy")
    part, part_ids, _ = load_predictions(tmp_path / "part" / "test.npy")
    assert part_ids == test_ids[:10]
    np.testing.assert_allclose(part, full[:10], rtol=1e-6)
    assert np.isfinite(full).all()


def test_missing_features_named(fusion_inputs, tiny_packed, tmp_path: Path) -> None:
    probs, ids, classes = load_predictions(fusion_inputs["test"])
    save_predictions(tmp_path / "odd.npy", probs[:2], ["nothere.jpg", ids[1]], classes)
    with pytest.raises(DataMismatchError, match=r"no features for 1 image\(s\), e.g. \['nothere.jpg'\]"):
        _fuse(fusion_inputs, tiny_packed, tmp_path / "x", test=tmp_path / "odd.npy")


def test_settings_from_config_json() -> None:
    settings = FusionSettings.from_json(
        json.loads(
            '{"groups": [{"name": "tex", "features": ["haralick"], "weight_decay": 0.1}], "hidden": [8], "copies": 3}'
        )
    )
    assert settings.groups == (FeatureGroup("tex", ("haralick",), 0.1),) and settings.hidden == (8,)
