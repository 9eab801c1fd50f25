"""Submission: validation names each problem; the file round-trips and is byte-identical for identical input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepsea.blending.submission import read_submission, validate_submission, write_submission
from deepsea.errors import DataMismatchError, DeepseaError

IDS = ["1.jpg", "2.jpg", "10.jpg"]
CLASSES = ["b_class", "a_class", "c_class"]


def _probs() -> np.ndarray:
    return np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [1.0, 0.0, 0.0]])


def test_round_trip_sorted_columns_and_natural_order(tmp_path: Path) -> None:
    write_submission(tmp_path / "s.csv.gz", IDS, CLASSES, _probs())
    ids, columns, probs = read_submission(tmp_path / "s.csv.gz")
    assert ids == ["1.jpg", "2.jpg", "10.jpg"]
    assert columns == ["a_class", "b_class", "c_class"]
    np.testing.assert_allclose(probs[0], [0.5, 0.2, 0.3], atol=1e-6)


def test_identical_bytes(tmp_path: Path) -> None:
    write_submission(tmp_path / "a.csv.gz", IDS, CLASSES, _probs())
    write_submission(tmp_path / "b.csv.gz", IDS, CLASSES, _probs())
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()


def test_commas_and_quotes_in_names_round_trip(tmp_path: Path) -> None:
    """File and folder names may hold CSV's own characters ('img, 2.jpg', 'copepod "cyclopoid"'): quoted, not split."""
    ids = ["img, 2.jpg", 'say "hi".png', "plain.jpg"]
    classes = ["copepod, small", 'diatom "chain"', "radiolarian"]
    write_submission(tmp_path / "s.csv.gz", ids, classes, _probs())
    read_ids, columns, probs = read_submission(tmp_path / "s.csv.gz")
    assert sorted(read_ids) == sorted(ids) and columns == sorted(classes)
    assert probs.shape == (3, 3)
    row = read_ids.index("img, 2.jpg")
    np.testing.assert_allclose(probs[row], [0.2, 0.5, 0.3], atol=1e-6)  # columns sorted: 'copepod, ...' first


def test_class_order_file(tmp_path: Path) -> None:
    (tmp_path / "order.txt").write_text("c_class\na_class\nb_class\n")
    write_submission(tmp_path / "s.csv.gz", IDS, CLASSES, _probs(), class_order=str(tmp_path / "order.txt"))
    assert read_submission(tmp_path / "s.csv.gz")[1] == ["c_class", "a_class", "b_class"]
    (tmp_path / "bad.txt").write_text("c_class\na_class\n")
    with pytest.raises(DataMismatchError, match="missing"):
        write_submission(tmp_path / "t.csv.gz", IDS, CLASSES, _probs(), class_order=str(tmp_path / "bad.txt"))


def test_rejects_missing_id() -> None:
    with pytest.raises(DataMismatchError, match="missing, e.g. '10.jpg'"):
        validate_submission(IDS[:2], CLASSES, _probs()[:2], IDS, CLASSES)


def test_rejects_nan() -> None:
    probs = _probs()
    probs[1, 2] = np.nan
    with pytest.raises(DataMismatchError, match="NaN or inf in the row of image '2.jpg'"):
        validate_submission(IDS, CLASSES, probs, IDS, CLASSES)


def test_rejects_row_not_summing_to_one() -> None:
    probs = _probs()
    probs[2] = [0.5, 0.2, 0.2]
    with pytest.raises(DataMismatchError, match="'10.jpg' sums to 0.900000"):
        validate_submission(IDS, CLASSES, probs, IDS, CLASSES)


def test_rejects_duplicate_and_extra_ids() -> None:
    with pytest.raises(DataMismatchError, match="appears more than once"):
        validate_submission(["1.jpg", "1.jpg", "2.jpg"], CLASSES, _probs(), IDS, CLASSES)
    with pytest.raises(DataMismatchError, match="not test images"):
        probs = np.vstack([_probs(), [[0.3, 0.3, 0.4]]])
        validate_submission([*IDS, "x.jpg"], CLASSES, probs, IDS, CLASSES)


def test_read_rejects_non_submission(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("id,a\n1,0.5\n")
    with pytest.raises(DeepseaError, match="header must start with 'image'"):
        read_submission(tmp_path / "x.csv")
