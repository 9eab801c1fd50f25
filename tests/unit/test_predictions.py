"""The Predictions record: one writer, one reader, one alignment, and the joins the k-fold scheme needs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepsea.errors import DataMismatchError, NonFiniteError
from deepsea.predictions import Predictions, average, common_images, concatenate, load_aligned, meta_path


def _probs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(3), n).astype(np.float32)


def test_round_trip_keeps_ids_classes_and_meta(tmp_path: Path) -> None:
    written = Predictions(_probs(4), ["a", "b", "c", "d"], ["x", "y", "z"], {"views": [1, 2]})
    written.save(tmp_path / "p.npy")
    assert json.loads(meta_path(tmp_path / "p.npy").read_text())["ids"] == ["a", "b", "c", "d"]
    read = Predictions.load(tmp_path / "p.npy")
    assert read.ids == written.ids and read.class_names == written.class_names and read.meta == {"views": [1, 2]}
    np.testing.assert_array_equal(read.probs, written.probs)
    with pytest.raises(DataMismatchError, match="no prediction for 1 images"):
        read.in_order_of(["a", "q"], "here")
    with pytest.raises(DataMismatchError, match="shape"):
        Predictions(_probs(3), ["a", "b"], ["x", "y", "z"]).save(tmp_path / "bad.npy")
    with pytest.raises(NonFiniteError):
        Predictions(np.full((1, 3), np.nan, np.float32), ["a"], ["x", "y", "z"]).save(tmp_path / "nan.npy")


def test_aligned_files_follow_the_first_files_order(tmp_path: Path) -> None:
    probs = _probs(3)
    Predictions(probs, ["a", "b", "c"], ["x", "y", "z"]).save(tmp_path / "1.npy")
    Predictions(probs[::-1].copy(), ["c", "b", "a"], ["x", "y", "z"]).save(tmp_path / "2.npy")
    first, second = load_aligned([tmp_path / "1.npy", tmp_path / "2.npy"])
    assert second.ids == ["a", "b", "c"]
    np.testing.assert_array_equal(second.probs, first.probs)


def test_folds_concatenate_to_every_image_once(tmp_path: Path) -> None:
    probs = _probs(5, seed=1)
    Predictions(probs[[3, 0]], ["d", "a"], ["x", "y", "z"], {"views": [0]}).save(tmp_path / "f0.npy")
    Predictions(probs[[1, 2, 4]], ["b", "c", "e"], ["x", "y", "z"]).save(tmp_path / "f1.npy")
    joined = concatenate([tmp_path / "f0.npy", tmp_path / "f1.npy"])
    assert joined.ids == ["a", "b", "c", "d", "e"] and joined.meta == {"views": [0]}
    np.testing.assert_array_equal(joined.probs, probs)
    Predictions(probs[[0]], ["a"], ["x", "y", "z"]).save(tmp_path / "again.npy")
    with pytest.raises(DataMismatchError, match="share images"):
        concatenate([tmp_path / "f0.npy", tmp_path / "again.npy"])


def test_an_average_over_the_images_every_file_has(tmp_path: Path) -> None:
    everyone, part = _probs(4, seed=2), _probs(2, seed=3)
    Predictions(everyone, ["a", "b", "c", "d"], ["x", "y", "z"]).save(tmp_path / "all.npy")
    Predictions(part, ["d", "b"], ["x", "y", "z"]).save(tmp_path / "part.npy")
    files = [tmp_path / "all.npy", tmp_path / "part.npy"]
    ids = common_images(files)
    assert ids == ["b", "d"]
    blended = average(files, [0.25, 0.75], ids=ids)
    expected = 0.25 * everyone[[1, 3]].astype(np.float64) + 0.75 * part[[1, 0]].astype(np.float64)
    np.testing.assert_allclose(blended.probs, expected, atol=1e-6)
    with pytest.raises(DataMismatchError):
        average(files)  # without `ids` the files must predict the same images
