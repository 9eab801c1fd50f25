"""Demo data: NDSB layout, deterministic, imbalanced, varied sizes, hidden labels kept apart."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import cv2
import numpy as np

from deepsea.data.demo import DemoSettings, class_counts, class_specs, make_demo_data


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_and_determinism(tiny_demo: Path, tmp_path: Path) -> None:
    from conftest import TINY_DEMO

    make_demo_data(tmp_path / "again", TINY_DEMO, workers=2)  # other worker count, same bytes
    assert _digest(tmp_path / "again") == _digest(tiny_demo)
    classes = sorted(p.name for p in (tiny_demo / "train").iterdir())
    assert len(classes) == 4
    test_files = sorted(p.name for p in (tiny_demo / "test").iterdir())
    with open(tiny_demo / "test_labels.csv") as fh:
        labels = {row["image"]: row["class"] for row in csv.DictReader(fh)}
    assert sorted(labels) == test_files and set(labels.values()) <= set(classes)
    assert not any("label" in p.name for p in (tiny_demo / "test").iterdir())


def test_default_set_properties(tmp_path: Path) -> None:
    counts = class_counts(1500, 10, 0.35)
    assert sum(counts) == 1500 and min(counts) < 30  # train share of the smallest class is under 20
    make_demo_data(tmp_path / "d", DemoSettings(n_train=300, n_test=60, n_classes=10), workers=2)
    train_counts = [len(list(p.iterdir())) for p in (tmp_path / "d" / "train").iterdir()]
    assert sum(train_counts) == 300 and max(train_counts) > 4 * min(train_counts)
    sides = [cv2.imread(str(p), 0).shape for p in (tmp_path / "d" / "train").rglob("*.jpg")]
    assert min(min(s) for s in sides) < 40 and max(max(s) for s in sides) > 150
    gray = cv2.imread(str(next((tmp_path / "d" / "test").iterdir())), 0)
    assert np.median(gray) > 200 and gray.min() < 150  # light background, dark organism


def test_class_names_unique_for_121() -> None:
    names = [s.name for s in class_specs(121)]
    assert len(set(names)) == 121
