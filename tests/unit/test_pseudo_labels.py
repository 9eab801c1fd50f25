"""Pseudo-labels: shards, batch composition, shard separation, soft targets, shard-model combination."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepsea.blending.combine_shards import combine_shards
from deepsea.data.augment import AugmentationRanges, InputSpec
from deepsea.data.batches import ClassIndex, Normalisation, training_positions
from deepsea.data.imageset import ImageSet
from deepsea.data.shards import shard_test_set
from deepsea.errors import ConfigError, DataMismatchError, DeepseaError
from deepsea.io import write_json
from deepsea.predictions import Predictions, average
from deepsea.training.pseudo_labels import PseudoLabelBatches, PseudoLabelPool
from deepsea.training.settings import PseudoLabelSettings, load_model_settings


def test_shards_partition_the_test_set_deterministically() -> None:
    ids = [f"{i}.jpg" for i in range(50)]
    shards = shard_test_set(ids, 3, seed=0)
    assert sorted(i for s in shards for i in s) == sorted(ids)  # every id exactly once
    assert sorted(len(s) for s in shards) == [16, 17, 17]
    assert shard_test_set(list(reversed(ids)), 3, seed=0) == shards  # the listing order does not matter
    assert shard_test_set(ids, 3, seed=1) != shards
    with pytest.raises(DeepseaError, match="at least 2 shards"):
        shard_test_set(ids, 1, seed=0)


def _soft_targets(n: int, n_classes: int, seed: int = 0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(n, n_classes)) * 2
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


@pytest.fixture()
def test_with_targets(tiny_packed, tmp_path: Path) -> tuple[ImageSet, Path, list[list[str]], np.ndarray]:
    """The tiny test set, 'ensemble' predictions for it saved in a shuffled row order, and 3 shards."""
    test = ImageSet.load(tiny_packed["test"])
    classes = ImageSet.load(tiny_packed["train"]).class_names
    ids = test.ids.tolist()
    targets = _soft_targets(len(ids), len(classes))  # row i belongs to ids[i]
    order = np.random.default_rng(1).permutation(len(ids))  # the file lists the ids in another order
    Predictions(targets[order], [ids[i] for i in order], classes).save(tmp_path / "ens.npy")
    return test, tmp_path / "ens.npy", shard_test_set(ids, 3, seed=0), targets


def test_pool_excludes_the_held_out_shard_and_aligns_targets(test_with_targets, tiny_packed) -> None:
    test, ens, shards, targets = test_with_targets
    classes = ImageSet.load(tiny_packed["train"]).class_names
    for k in range(3):
        pool = PseudoLabelPool.build(test, ens, shards, PseudoLabelSettings(0.33, k, 3), classes)
        pool_ids = set(pool.images.ids.tolist())
        assert not pool_ids & set(shards[k])  # never the pseudo-labels of its own shard
        assert pool_ids == {i for j, s in enumerate(shards) if j != k for i in s}
        row = {image_id: r for r, image_id in enumerate(test.ids.tolist())}
        expected = targets[[row[i] for i in pool.images.ids.tolist()]]
        np.testing.assert_array_equal(pool.targets, expected)  # each image keeps its own soft target


def test_pool_refuses_mismatched_inputs(test_with_targets, tiny_packed) -> None:
    test, ens, shards, _ = test_with_targets
    classes = ImageSet.load(tiny_packed["train"]).class_names
    with pytest.raises(DeepseaError, match="expects 4"):
        PseudoLabelPool.build(test, ens, shards, PseudoLabelSettings(0.33, 0, 4), classes)
    with pytest.raises(DataMismatchError, match="classes differ"):
        PseudoLabelPool.build(test, ens, shards, PseudoLabelSettings(0.33, 0, 3), classes[::-1])
    bad_shards = [shards[0], shards[1], [*shards[2], "unknown.jpg"]]
    with pytest.raises(DataMismatchError, match=r"no prediction for 1 test images .*unknown\.jpg"):
        PseudoLabelPool.build(test, ens, bad_shards, PseudoLabelSettings(0.33, 0, 3), classes)


@pytest.mark.parametrize(("fraction", "n_pseudo"), [(0.33, 5), (0.67, 11)])
def test_batches_mix_the_configured_fraction_with_soft_targets(
    test_with_targets, tiny_packed, fraction: float, n_pseudo: int
) -> None:
    test, ens, shards, _ = test_with_targets
    train = ImageSet.load(tiny_packed["train"])
    pool = PseudoLabelPool.build(test, ens, shards, PseudoLabelSettings(fraction, 2, 3), train.class_names)
    spec = InputSpec(16)
    batches = PseudoLabelBatches(
        train, pool, [spec], 16, fraction, ranges=AugmentationRanges(), norm=Normalisation.fit(train, spec), seed=0
    )
    seen: list[str] = []
    steps = int(np.ceil(len(pool.images) / n_pseudo))  # one pass over the pool
    for step in range(steps):
        (x,), y = batches[step]
        train_idx, pool_idx = batches.indices(step)
        assert len(pool_idx) == n_pseudo and len(train_idx) == 16 - n_pseudo  # round(fraction x 16)
        assert x.shape == (16, 1, 16, 16) and y.shape == (16, len(train.class_names))
        one_hot = torch.nn.functional.one_hot(torch.from_numpy(train.labels[train_idx].astype(np.int64)), 4)
        assert torch.equal(y[: len(train_idx)], one_hot.float())  # training images: their true labels
        assert torch.equal(y[len(train_idx) :], torch.from_numpy(pool.targets[pool_idx]))  # soft, not argmax
        assert (y[len(train_idx) :].max(1).values < 1).all()
        seen += pool.images.ids[pool_idx].tolist()
    assert set(seen) == set(pool.images.ids.tolist())  # every pseudo-labelled image once per pass ...
    assert not set(seen) & set(shards[2])  # ... and never one of the held-out shard
    (x0,), y0 = batches[3]
    (x1,), y1 = batches[3]
    assert torch.equal(x0, x1) and torch.equal(y0, y1)  # a pure function of the step (resume, workers)
    balanced = PseudoLabelBatches(
        train,
        pool,
        [spec],
        16,
        fraction,
        ranges=AugmentationRanges(),
        norm=Normalisation.fit(train, spec),
        seed=0,
        balanced_steps=2,
    )  # train.balanced_until: the training rows class-balanced for the first steps; the pool rows as before
    for step in range(4):
        expected = training_positions(ClassIndex.of(train.labels), 16 - n_pseudo, step, 0, balanced_steps=2)
        np.testing.assert_array_equal(balanced.indices(step)[0], expected)
        np.testing.assert_array_equal(balanced.indices(step)[1], batches.indices(step)[1])
    assert not np.array_equal(balanced.indices(0)[0], batches.indices(0)[0])
    np.testing.assert_array_equal(balanced.indices(2)[0], batches.indices(2)[0])


def _write(path: Path, probs: np.ndarray, ids: list[str]) -> Path:
    Predictions(probs, ids, ["a", "b"]).save(path)
    return path


def test_combine_shards_mean_and_held_out(tmp_path: Path) -> None:
    ids = ["t1", "t2", "t3", "t4"]
    shards = [["t1", "t3"], ["t2"], ["t4"]]
    per_model = [np.full((4, 2), 0.5, np.float32) for _ in range(3)]
    for k in range(3):
        per_model[k][:, 0] = [0.1, 0.2, 0.3, 0.4][k] + 0.05 * np.arange(4)
        per_model[k][:, 1] = 1 - per_model[k][:, 0]
    paths = [_write(tmp_path / f"m{k}.npy", per_model[k], ids) for k in range(3)]
    # model 1 lists its ids in another order: combination must go by id, not by row
    _write(paths[1], per_model[1][::-1].copy(), ids[::-1])
    result = combine_shards(paths, shards, "mean")
    mean, out_ids = result.probs, result.ids
    assert out_ids == ids
    np.testing.assert_allclose(mean, np.mean(per_model, axis=0), atol=1e-6)
    held_out = combine_shards(paths, shards, "held_out").probs
    expected = np.stack([per_model[0][0], per_model[1][1], per_model[0][2], per_model[2][3]])
    np.testing.assert_allclose(held_out, expected, atol=1e-7)  # each image from its own shard's model
    with pytest.raises(DeepseaError, match="one prediction per shard"):
        combine_shards(paths[:2], shards, "held_out")


def test_weighted_average_golden(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.npy", np.array([[0.2, 0.8], [0.6, 0.4]], np.float32), ["x", "y"])
    b = _write(tmp_path / "b.npy", np.array([[0.4, 0.6], [1.0, 0.0]], np.float32)[::-1].copy(), ["y", "x"])
    probs = average([a, b], [0.5, 0.5]).probs
    np.testing.assert_allclose(probs, [[0.3, 0.7], [0.8, 0.2]], atol=1e-7)  # b's rows matched by id
    probs = average([a, b], [3.0, 1.0]).probs  # normalised: 0.75 / 0.25
    np.testing.assert_allclose(probs, [[0.25, 0.75], [0.7, 0.3]], atol=1e-7)
    with pytest.raises(DataMismatchError, match="one non-negative weight per file"):
        average([a, b], [1.0])


def test_geometric_and_logit_averages_golden(tmp_path: Path) -> None:
    """A bag's members averaged as views are: the normalised (weighted) geometric mean, the mean log-odds."""
    pa, pb = np.array([[0.2, 0.8], [0.6, 0.4]]), np.array([[0.4, 0.6], [0.9, 0.1]])
    a = _write(tmp_path / "a.npy", pa.astype(np.float32), ["x", "y"])
    b = _write(tmp_path / "b.npy", pb[::-1].astype(np.float32), ["y", "x"])
    geometric = (pa * pb) ** 0.5
    result = average([a, b], mean="geometric")
    probs, ids = result.probs, result.ids
    assert ids == ["x", "y"]
    np.testing.assert_allclose(probs, geometric / geometric.sum(1, keepdims=True), atol=1e-6)
    weighted = pa**0.75 * pb**0.25
    probs = average([a, b], [3.0, 1.0], mean="geometric").probs
    np.testing.assert_allclose(probs, weighted / weighted.sum(1, keepdims=True), atol=1e-6)
    odds = np.sqrt(pa / (1 - pa) * pb / (1 - pb))  # the mean log-odds, mapped back: p = odds / (1 + odds)
    logit = odds / (1 + odds)
    probs = average([a, b], mean="logit").probs
    np.testing.assert_allclose(probs, logit / logit.sum(1, keepdims=True), atol=1e-6)
    with pytest.raises(ConfigError, match="mean: one of arithmetic, geometric, logit, got 'median'"):
        average([a, b], mean="median")  # not silently one of the others


def test_pseudo_label_settings_checked() -> None:
    with pytest.raises(ConfigError, match=r"models\.m\.pseudo_label: fraction must be in \(0, 1\)"):
        load_model_settings('{"name": "m", "pseudo_label": {"fraction": 1.5, "shard": 0, "shards": 3}}')
    with pytest.raises(ConfigError, match=r"shard in \[0, shards\)"):
        load_model_settings('{"name": "m", "pseudo_label": {"fraction": 0.3, "shard": 3, "shards": 3}}')


def test_train_a_shard_model_from_the_cli(test_with_targets, tiny_packed, tmp_path: Path) -> None:
    """`deepsea train` with the pseudo-label files: trains, says which shards it used; a missing file is named."""
    _, ens, shards, _ = test_with_targets
    write_json(tmp_path / "shards.json", {"seed": 0, "shards": shards})
    settings = {
        "name": "pl_shard1",
        "input_size": 16,
        "params": {"widths": [8], "dense": 16},
        "train": {"steps": 8, "batch_size": 12, "eval_every": 4, "workers": 0},
        "pseudo_label": {"fraction": 0.5, "shard": 1, "shards": 3},
    }
    base = [sys.executable, "-m", "deepsea.cli", "train", "--settings", json.dumps(settings)]
    base += ["--data", str(tiny_packed["train"]), "--split", str(tiny_packed["split"])]
    base += ["--out", str(tmp_path / "m" / "model.pt"), "--log-csv", str(tmp_path / "m" / "log.csv")]
    pl_files = ["--test-data", str(tiny_packed["test"]), "--shards", str(tmp_path / "shards.json")]
    result = subprocess.run([*base, *pl_files, "--pseudo-labels", str(ens)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    n_pool = len(shards[0]) + len(shards[2])
    assert f"pseudo-labels: {n_pool} test images of 2 shards (all but shard 1), 50% of every batch" in result.stderr
    assert (tmp_path / "m" / "model.pt").is_file()
    result = subprocess.run(base, capture_output=True, text=True)  # fraction > 0 but no pseudo-label files
    assert result.returncode != 0
    assert "a pseudo-label model needs --test-data, --shards and --pseudo-labels" in result.stderr
    assert "Traceback" not in result.stderr


def test_load_predictions_round_trip_for_combined(tmp_path: Path) -> None:
    """The combine-shards CLI writes a file every consumer accepts (rows sum to 1, ids kept)."""
    ids = ["t1", "t2", "t3"]
    probs = np.array([[0.3, 0.7], [0.5, 0.5], [0.9, 0.1]], np.float32)
    paths = [_write(tmp_path / f"m{k}.npy", probs, ids) for k in range(2)]
    write_json(tmp_path / "shards.json", {"seed": 0, "shards": [["t1"], ["t2", "t3"]]})
    out = tmp_path / "combined.npy"
    cmd = [sys.executable, "-m", "deepsea.cli", "combine-shards", "--pred", *map(str, paths)]
    cmd += ["--shards", str(tmp_path / "shards.json"), "--mode", "held_out", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    result = Predictions.load(out)
    combined, out_ids, classes = result.probs, result.ids, result.class_names
    assert out_ids == ids and classes == ["a", "b"]
    np.testing.assert_allclose(combined, probs, atol=1e-7)
