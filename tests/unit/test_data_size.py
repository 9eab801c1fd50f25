"""Settings that follow the labelled set's size (workflow/data_size.py): splits.scheme auto and bags under k-fold."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepsea.dag.data_size import KFOLD_BELOW, apply_data_size, count_training_images


def _config(train_dir: Path, scheme: str = "auto", n_train: int = 800) -> dict:
    return {
        "data": {"train_dir": str(train_dir)},
        "demo": {"dir": str(train_dir.parents[1] / "demo"), "n_train": n_train},
        "splits": {"scheme": scheme},
        "models": {"a": {"bags": [1, 2]}, "b": {"bags": []}},
    }


def _folder(root: Path, per_class: dict[str, int]) -> Path:
    for name, count in per_class.items():
        (root / name / "deeper").mkdir(parents=True)
        for i in range(count):
            (root / name / ("deeper" if i % 2 else "") / f"{i}.png").write_bytes(b"")
        (root / name / "notes.txt").write_text("not an image")
    return root


@pytest.mark.parametrize(("images", "scheme"), [(KFOLD_BELOW - 1, "kfold"), (KFOLD_BELOW, "holdout")])
def test_auto_is_kfold_below_the_threshold_and_drops_the_bags(tmp_path: Path, images: int, scheme: str) -> None:
    train = _folder(tmp_path / "train", {"x": images // 2, "y": images - images // 2})
    assert count_training_images(train) == images
    config = _config(train)
    notes = apply_data_size(config)
    assert config["splits"]["scheme"] == scheme and f"{images} training images" in notes[0]
    assert ("bags" in config["models"]["a"]) == (scheme == "holdout")


def test_the_demo_not_yet_generated_counts_its_planned_images(tmp_path: Path) -> None:
    config = _config(tmp_path / "demo" / "train", n_train=150)
    apply_data_size(config)
    assert config["splits"]["scheme"] == "kfold"
    config = _config(tmp_path / "demo" / "train", n_train=800)
    apply_data_size(config)
    assert config["splits"]["scheme"] == "holdout"


def test_an_explicit_scheme_stays(tmp_path: Path) -> None:
    config = _config(_folder(tmp_path / "train", {"x": 3}), scheme="holdout")
    assert apply_data_size(config) == ["splits.scheme: holdout"] and config["models"]["a"]["bags"] == [1, 2]
