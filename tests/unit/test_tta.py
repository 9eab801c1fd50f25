"""Test-time augmentation: Halton points, inverse CDFs, views, averaging, and the batched predictor."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import train_tiny
from deepsea.data.augment import CENTRE_VIEW, InputSpec
from deepsea.data.batches import Normalisation
from deepsea.data.imageset import ImageSet
from deepsea.inference.predict import PredictOptions, predict, predict_views
from deepsea.inference.views import (
    ORIGINAL_TTA,
    TTASettings,
    icdf_bernoulli,
    icdf_log_uniform,
    icdf_normal,
    icdf_uniform,
    make_views,
    unit_points,
)
from deepsea.means import combine

PRIMES = (2, 3, 5, 7, 11, 13, 17)


def radical_inverse(i: int, base: int) -> Fraction:
    """Van der Corput: the digits of i in `base`, mirrored behind the radix point (computed exactly)."""
    result, scale = Fraction(0), Fraction(1, base)
    while i:
        i, digit = divmod(i, base)
        result += digit * scale
        scale /= base
    return result


def test_halton_points_are_radical_inverses() -> None:
    points = unit_points(TTASettings(views=12))
    assert points.shape == (12, 7)
    for n in range(12):
        expected = [float(radical_inverse(n + 1, b)) for b in PRIMES]  # the sequence starts at index 1
        np.testing.assert_allclose(points[n], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(points[0], [1 / 2, 1 / 3, 1 / 5, 1 / 7, 1 / 11, 1 / 13, 1 / 17])


def test_inverse_cdfs_median_and_ranges() -> None:
    assert icdf_uniform(0.5, -8, 8) == 0
    assert icdf_log_uniform(0.5, 1 / 1.4, 1.4) == pytest.approx(1.0)
    assert icdf_normal(0.5, 0.0, 4.0, -8, 8) == pytest.approx(0.0)
    assert not icdf_bernoulli(0.5) and icdf_bernoulli(0.51)
    u = np.random.default_rng(0).random(10_000)
    for values, low, high in [
        (icdf_uniform(u, -8, 8), -8, 8),
        (icdf_log_uniform(u, 1 / 1.2, 1.2), 1 / 1.2, 1.2),
        (icdf_normal(u, 0, 4, -8, 8), -8, 8),
        (icdf_normal(np.array([0.0, 1.0]), 0, 4, -8, 8), -8, 8),
    ]:
        assert values.min() >= low - 1e-12 and values.max() <= high + 1e-12
    assert 0.45 < icdf_bernoulli(u).mean() < 0.55


def test_views_are_seeded_and_in_range() -> None:
    s = ORIGINAL_TTA
    views = make_views(s)
    assert len(views) == 70 and views == make_views(replace(ORIGINAL_TTA))
    assert all(abs(v.shift_x) <= 8 and abs(v.shear) <= 10 and 1 / 1.4 <= v.zoom <= 1.4 for v in views)
    assert make_views(replace(s, seed=3)) == make_views(replace(s, seed=3)) != views  # generalized Halton
    assert make_views(replace(s, method="random", seed=1)) == make_views(replace(s, method="random", seed=1))
    assert len(make_views(replace(s, method="grid"))) == 8 * 3 * 2
    assert make_views(replace(s, method="centre")) == [CENTRE_VIEW]
    assert len(make_views(TTASettings())) == 35  # config.yaml's
    # quasi-random: the 70 rotations cover the circle more evenly than the largest gap of random ones
    halton_gap = np.diff(np.sort([v.rotation for v in views] + [360])).max()
    random_gap = np.diff(np.sort([v.rotation for v in make_views(replace(s, method="random"))] + [360])).max()
    assert halton_gap < random_gap


@pytest.mark.parametrize("mean", ["arithmetic", "geometric", "logit"])
def test_averaging_constant_views_returns_that_output(mean: str) -> None:
    logits = np.tile(np.array([[2.0, -1.0, 0.5]]), (4, 9, 1)).reshape(4, 9, 3)
    expected = np.exp([2.0, -1.0, 0.5]) / np.exp([2.0, -1.0, 0.5]).sum()
    np.testing.assert_allclose(combine(logits, mean), np.tile(expected, (4, 1)), rtol=1e-12)


class ConstantModel(torch.nn.Module):
    """Ignores the image: the same logits for every input."""

    inputs = [InputSpec(15)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[1.0, 0.0, -1.0]]).expand(x.shape[0], 3)


def test_predictor_with_constant_model_returns_constant() -> None:
    rng = np.random.default_rng(0)
    images = ImageSet.from_images(
        [rng.integers(0, 256, (20, 30), dtype=np.uint8) for _ in range(7)],
        [str(i) for i in range(7)],
        [0] * 7,
        ["a", "b", "c"],
    )
    averaged, centre = predict_views(
        ConstantModel(),
        images,
        Normalisation(0.5, 0.2),
        make_views(TTASettings()),
        "arithmetic",
        device=torch.device("cpu"),
        batch_size=50,
        chunk=3,
    )
    expected = torch.softmax(torch.tensor([1.0, 0.0, -1.0]), 0).numpy()
    np.testing.assert_allclose(averaged, np.tile(expected, (7, 1)), rtol=1e-6)
    np.testing.assert_allclose(centre, averaged, rtol=1e-6)


def test_tta_predictions_are_reproducible(tiny_packed, tmp_path: Path) -> None:
    settings = {
        "name": "t",
        "architecture": "convroll4",
        "input_size": 15,
        "params": {"width": 0.125, "depth": 2, "dense": 16},
        "train": {"steps": 10, "workers": 0},
    }
    train_tiny(settings, tiny_packed, tmp_path)
    tta = TTASettings(views=7, chunk_images=4)
    for run in ("a", "b"):
        predict(
            tmp_path / "model.pt",
            tiny_packed["test"],
            "test",
            tmp_path / f"{run}.npy",
            tmp_path / f"{run}.c.npy",
            options=PredictOptions(tta=tta, batch_size=10, workers=1 if run == "b" else 0),
        )
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.tobytes() == b.tobytes()
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    meta = json.loads((tmp_path / "a.meta.json").read_text())
    assert len(meta["views"]) == 7 and meta["tta"]["views"] == 7 and len(meta["ids"]) == 40
    assert not np.allclose(a, np.load(tmp_path / "a.c.npy"))  # the centre view alone differs from the average


def test_killed_prediction_leaves_no_output(tiny_packed, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    settings = {
        "name": "t",
        "architecture": "plain",
        "input_size": 16,
        "params": {"widths": [4], "dense": 8},
        "train": {"steps": 2, "workers": 0},
    }
    train_tiny(settings, tiny_packed, tmp_path)
    tta = json.dumps({"views": 2000, "chunk_images": 1})  # slow enough to be caught midway
    cmd = [
        sys.executable,
        "-m",
        "deepsea.cli",
        "predict",
        "--model",
        str(tmp_path / "model.pt"),
        "--data",
        str(tiny_packed["test"]),
        "--subset",
        "test",
        "--tta",
        tta,
        "--out",
        str(tmp_path / "test.npy"),
        "--out-centre",
        str(tmp_path / "test.centre.npy"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # kill once it has started predicting
        if "predicting" in line:
            break
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    assert not (tmp_path / "test.npy").exists() and not (tmp_path / "test.centre.npy").exists()


def test_geometric_and_logit_means_by_hand() -> None:
    logits = np.log(np.array([[[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]]]))  # one image, two views, probabilities given
    p = np.exp(logits)
    geometric = np.sqrt(p[0, 0] * p[0, 1])
    np.testing.assert_allclose(combine(logits, "geometric")[0], geometric / geometric.sum(), rtol=1e-12)
    odds = np.sqrt((p[0, 0] / (1 - p[0, 0])) * (p[0, 1] / (1 - p[0, 1])))  # mean log-odds = log of geometric odds
    logistic = odds / (1 + odds)
    np.testing.assert_allclose(combine(logits, "logit")[0], logistic / logistic.sum(), rtol=1e-12)
    np.testing.assert_allclose(combine(logits, "arithmetic")[0], p[0].mean(axis=0), rtol=1e-12)
