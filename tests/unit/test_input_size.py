"""`input_size: auto`: chosen from the packed training images' sizes, within the sizes each architecture takes,
recorded in the model and said in the closing summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import train_tiny
from deepsea.dag.summary import input_size_summary
from deepsea.data.imageset import ImageSet, longest_side_p75
from deepsea.io import read_json
from deepsea.nets.families import FAMILY, nearest_input_size, pooled_stages
from deepsea.nets.registry import build_model
from deepsea.training.model_file import load_model
from deepsea.training.settings import AUTO_SIZE_RANGE, auto_input_size

SHAPES = [("plain", {}), ("plain", {"widths": [8, 16]}), ("convroll4", {}), ("cr4_ds", {"depth": 3})]
SHAPES += [("convroll5_preinit", {}), ("cp8", {"depth": 2})]


@pytest.mark.parametrize(("architecture", "params"), SHAPES)
@pytest.mark.parametrize("p75", [5.0, 31.0, 40.0, 52.3, 70.0, 94.0, 95.0, 120.0, 400.0])
def test_auto_sizes_stay_in_range_and_suit_the_architecture(architecture: str, params: dict, p75: float) -> None:
    size = auto_input_size(p75, architecture, params)
    step = 2 ** pooled_stages(architecture, params)
    low, high = AUTO_SIZE_RANGE
    assert low <= size <= high
    if architecture == "plain":
        assert size % step == 0
    else:  # every map odd after each 3x3 stride-2 pooling: the rolled maps align
        assert (size + 1) % step == 0
    assert abs(size - min(max(p75, low), high)) <= step  # the nearest such size, not just any


@pytest.mark.parametrize("architecture", ["cr4_ds", "convroll4_doublescale_fs5", "plain"])
def test_the_chosen_size_builds_and_predicts(architecture: str) -> None:
    params = {"width": 0.125, "depth": 3, "dense": 16} if architecture in FAMILY else {"widths": [4, 8, 8], "dense": 8}
    size = auto_input_size(52.0, architecture, params)
    model = build_model(architecture, 3, size, params).eval()
    inputs = [torch.zeros(2, 1, spec.size, spec.size) for spec in model.inputs]
    assert model(*inputs).shape == (2, 3)


def test_sizes_in_pixels_are_left_alone() -> None:
    assert nearest_input_size("convroll4", {}, 95) == 95 and nearest_input_size("plain", {}, 32) == 32


def test_a_model_asking_for_auto_trains_at_the_size_the_pack_report_implies(tiny_packed, tmp_path: Path) -> None:
    data = ImageSet.load(tiny_packed["train"])
    report = read_json(tiny_packed["train"].with_name("train_report.json"))
    assert report["longest_side_p75"] == pytest.approx(longest_side_p75(data.shapes))
    settings = {
        "name": "m",
        "architecture": "plain",
        "input_size": "auto",
        "params": {"widths": [4, 8], "dense": 8},
        "train": {"steps": 2, "batch_size": 8, "workers": 0, "eval_every": 2},
    }
    model_path = train_tiny(settings, tiny_packed, tmp_path)
    model, trained, _, _ = load_model(model_path, "cpu")
    expected = auto_input_size(report["longest_side_p75"], "plain", settings["params"])
    assert trained.input_size == expected and model.inputs[0].size == expected
    lines = input_size_summary({"m": settings}, tiny_packed["train"].with_name("train_report.json"))
    assert lines == [
        f"deepsea: input_size auto (3 in 4 training images at most {report['longest_side_p75']:.0f} px on their "
        f"longest side): m {expected} px"
    ]
    assert json.loads(json.dumps(trained.to_dict()))["input_size"] == expected  # resolved in the model file


def test_no_summary_line_without_auto(tiny_packed) -> None:
    report = tiny_packed["train"].with_name("train_report.json")
    assert input_size_summary({"m": {"architecture": "plain", "input_size": 32}}, report) == []
    assert np.isfinite(read_json(report)["longest_side_p75"])
