"""Splits: stratification per class, reproducibility, bagging splits that differ, tiny classes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from deepsea.data.splits import all_images_split, kfold_splits, stratified_split
from deepsea.errors import ConfigError

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
    with caplog.at_level("WARNING", logger="deepsea.data.splits"):
        split = stratified_split(ids, labels, names, 0.1, seed=0)
    assert len(split.notes) == 40  # the split file keeps every class's line
    lines = caplog.text.splitlines()
    assert len(lines) == 6 and sum("has only 2 image(s)" in line for line in lines) == 5
    assert "and 35 more classes with fewer than 10 images, 35 of them without a validation image" in lines[-1]


def test_copies_of_an_image_stay_on_one_side() -> None:
    """Class 'a' holds sets of identical images: for every seed each set is wholly in training or in validation."""
    ids, labels, names = _data()
    copy_set = {i: f"set{int(i.split('/')[1].split('.')[0]) // 4}" for i in ids if i.startswith("a/")}  # 50 x 4
    digests = [copy_set.get(i, i) for i in ids]  # other classes: every image unique
    for seed in range(20):
        split = stratified_split(ids, labels, names, 0.1, seed, digests=digests)
        held = {copy_set[i] for i in split.valid_ids if i in copy_set}
        trained = {copy_set[i] for i in split.train_ids if i in copy_set}
        assert held and held.isdisjoint(trained)  # never one copy validated and another trained on
        assert sum(i in copy_set for i in split.valid_ids) == 20  # 5 whole sets of 4: the class's 10%
        plain = stratified_split(ids, labels, names, 0.1, seed)
        others = [i for i in plain.valid_ids if i not in copy_set]
        assert [i for i in split.valid_ids if i not in copy_set] == others  # classes without copies: unchanged


def test_without_copies_the_digests_change_nothing() -> None:
    from deepsea.data.duplicates import pixel_digest

    ids, labels, names = _data()
    rng = np.random.default_rng(0)
    digests = [pixel_digest(rng.integers(0, 256, (5, 7), dtype=np.uint8)) for _ in ids]
    for purpose in ("valid", "bag"):
        assert stratified_split(ids, labels, names, 0.1, 3, purpose=purpose, digests=digests) == stratified_split(
            ids, labels, names, 0.1, 3, purpose=purpose
        )


def test_duplicate_groups_compare_shape_and_pixels() -> None:
    from deepsea.data.duplicates import duplicate_groups, pixel_digest

    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    images = [a, a.T.copy(), a.copy(), a.reshape(3, 2), np.zeros((2, 3), np.uint8)]
    # a.reshape(3, 2) has a's bytes in another shape: a different image
    assert duplicate_groups(["x", "y", "b", "c", "z"], [pixel_digest(i) for i in images]) == [["b", "x"]]


def test_kfold_partitions_every_image_into_one_validation_fold() -> None:
    """Every image is validated on exactly once, by a split that does not train on it; folds are stratified and
    within one image of each other in size; the folds do not depend on the listing order."""
    ids, labels, names = _data()
    splits = kfold_splits(ids, labels, names, 5, seed=0)
    valid = [i for split in splits for i in split.valid_ids]
    assert sorted(valid) == sorted(ids) and len(set(valid)) == len(ids)
    for split in splits:
        assert set(split.train_ids).isdisjoint(split.valid_ids)
        assert sorted(split.train_ids + split.valid_ids) == sorted(ids)
    sizes = [len(split.valid_ids) for split in splits]
    assert max(sizes) - min(sizes) <= 1
    per_class = [Counter(i.split("/")[0] for i in split.valid_ids) for split in splits]
    assert [c["a"] for c in per_class] == [40] * 5 and sorted(c["b"] for c in per_class) == [11, 11, 11, 12, 12]
    assert any("'e' has 1 image(s): 4 fold models never see it" in note for note in splits[0].notes)
    order = np.random.default_rng(9).permutation(len(ids))
    again = kfold_splits([ids[i] for i in order], [labels[i] for i in order], names, 5, seed=0)
    assert [s.valid_ids for s in again] == [s.valid_ids for s in splits]
    other_seed = kfold_splits(ids, labels, names, 5, seed=1)
    assert [s.valid_ids for s in other_seed] != [s.valid_ids for s in splits]
    everyone = all_images_split(splits)
    assert everyone.train_ids == [] and everyone.valid_ids == sorted(ids)
    with pytest.raises(ConfigError, match="splits.folds: at least 2"):
        kfold_splits(ids, labels, names, 1, seed=0)


def test_kfold_keeps_identical_images_in_one_fold() -> None:
    ids, labels, names = _data()
    digests = [f"copy{k % 7}" if i.startswith("a/") else i for k, i in enumerate(ids)]  # 7 groups of copies in 'a'
    splits = kfold_splits(ids, labels, names, 5, seed=3, digests=digests)
    fold_of = {i: k for k, split in enumerate(splits) for i in split.valid_ids}
    for group in {d for d in digests if d.startswith("copy")}:
        members = [i for i, d in zip(ids, digests, strict=True) if d == group]
        assert len({fold_of[m] for m in members}) == 1
