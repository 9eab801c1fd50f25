"""Splits: stratification per class, reproducibility, bagging splits that differ, tiny classes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from deepsea.errors import ConfigError
from deepsea.splits import stratified_split

COUNTS = {"a": 200, "b": 57, "c": 10, "d": 3, "e": 1}


def _data():
    ids, labels = [], []
    for label, (name, n) in enumerate(COUNTS.items()):
        ids += [f"{name}/{i}.jpg" for i in range(n)]
        labels += [label] * n
    # shuffle the listing: the split must not depend on it
    order = np.random.default_rng(5).permutation(len(ids))
    return [ids[i] for i in order], [labels[i] for i in order], list(COUNTS)


def test_stratified_per_class() -> None:
    ids, labels, names = _data()
    split = stratified_split(ids, labels, names, 0.1, seed=0)
    assert set(split.train_ids).isdisjoint(split.valid_ids)
    assert sorted(split.train_ids + split.valid_ids) == sorted(ids)
    valid_per_class = Counter(i.split("/")[0] for i in split.valid_ids)
    # round(0.1 * n), but never the whole class: 200 -> 20, 57 -> 6, 10 -> 1, 3 -> 0, 1 -> 0
    assert valid_per_class == {"a": 20, "b": 6, "c": 1}
    train_per_class = Counter(i.split("/")[0] for i in split.train_ids)
    assert set(train_per_class) == set(COUNTS)  # every class is learnable
    assert any("'e' has only 1 image" in note for note in split.notes)


def test_reproducible_and_order_independent() -> None:
    ids, labels, names = _data()
    a = stratified_split(ids, labels, names, 0.1, seed=4)
    b = stratified_split(ids[::-1], labels[::-1], names, 0.1, seed=4)
    assert a == b


def test_bagging_splits_differ_by_seed_and_from_valid() -> None:
    ids, labels, names = _data()
    valid = stratified_split(ids, labels, names, 0.1, seed=0, purpose="valid")
    bag0 = stratified_split(ids, labels, names, 0.1, seed=0, purpose="bag")
    bag1 = stratified_split(ids, labels, names, 0.1, seed=1, purpose="bag")
    assert len({tuple(valid.valid_ids), tuple(bag0.valid_ids), tuple(bag1.valid_ids)}) == 3
    assert bag1 == stratified_split(ids, labels, names, 0.1, seed=1, purpose="bag")
    assert Counter(i.split("/")[0] for i in bag1.valid_ids) == Counter(i.split("/")[0] for i in valid.valid_ids)


def test_fraction_out_of_range() -> None:
    ids, labels, names = _data()
    with pytest.raises(ConfigError, match="valid_fraction"):
        stratified_split(ids, labels, names, 1.5, seed=0)


def test_a_long_tail_of_small_classes_is_summarised_in_the_log(caplog) -> None:
    """NDSB-like tails (dozens of classes under 10 images) get five named lines and a count, not a line each."""
    names = [f"rare{k:02d}" for k in range(40)]
    ids = [f"{name}/{i}.jpg" for name in names for i in range(2)]
    labels = [k for k in range(40) for _ in range(2)]
    with caplog.at_level("WARNING", logger="deepsea.splits"):
        split = stratified_split(ids, labels, names, 0.1, seed=0)
    assert len(split.notes) == 40  # the split file keeps every class's line
    lines = caplog.text.splitlines()
    assert len(lines) == 6 and sum("has only 2 image(s)" in line for line in lines) == 5
    assert "and 35 more classes with fewer than 10 images, 35 of them without a validation image" in lines[-1]
