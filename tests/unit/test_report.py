"""The report's tables: the ablation rows against scikit-learn's log loss, the top-k file, the model table.

(The rendered HTML report is checked end to end in test_workflow.py.)
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss

from deepsea.blending.submission import write_submission, write_top_k
from deepsea.data.imageset import ImageSet
from deepsea.data.splits import Split
from deepsea.io import read_json
from deepsea.predictions import Predictions
from deepsea.report.ablation import ModelPredictions, ablation_table


def _random_probs(rng: np.random.Generator, labels: np.ndarray, n_classes: int, skill: float) -> np.ndarray:
    """Probabilities that put `skill` extra logit on the true class: higher skill, lower loss."""
    logits = rng.normal(size=(len(labels), n_classes))
    logits[np.arange(len(labels)), labels] += skill
    probs = np.exp(logits)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture()
def ablation_inputs(tiny_packed: dict[str, Path], tmp_path: Path):
    data = ImageSet.load(tiny_packed["train"])
    test = ImageSet.load(tiny_packed["test"])
    split = Split.from_json(read_json(tiny_packed["split"]), "split")
    valid_labels = data.labels[data.index_of(split.valid_ids)]
    rng = np.random.default_rng(0)
    test_labels = rng.integers(0, len(data.class_names), len(test))
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "class"])
        writer.writerows([i, data.class_names[c]] for i, c in zip(test.ids, test_labels, strict=True))
    truth = {"valid": valid_labels, "test": test_labels}
    ids = {"valid": list(split.valid_ids), "test": list(test.ids)}
    written: dict[str, np.ndarray] = {}

    def write(name: str, subset: str, skill: float) -> str:
        probs = _random_probs(rng, truth[subset], len(data.class_names), skill)
        path = tmp_path / f"{name}.{subset}.npy"
        kind = name.rpartition("_")[2]
        meta = {"views": [{}] * 70} if kind == "tta" else {}
        if kind == "fused":  # fused from what moved on: the TTA mean (the meta of a chosen prediction says which)
            meta = {"fused_from": str(tmp_path / f"{name.replace('fused', 'tta')}.{subset}.npy")}
        Predictions(probs, ids[subset], data.class_names, meta).save(path)
        written[str(path)] = probs
        return str(path)

    skills = {"weak": 0.5, "strong": 2.0}
    models = []
    for name, skill in skills.items():
        files = [write(f"{name}_{kind}", subset, skill + bonus) for kind, bonus in
                 (("centre", 0.0), ("tta", 0.3), ("fused", 0.5)) for subset in ("valid", "test")]  # fmt: skip
        models.append(ModelPredictions(name, *files))
    ensemble = (write("ensemble", "valid", 3.0), write("ensemble", "test", 3.0))
    return models, ensemble, tiny_packed, tmp_path / "labels.csv", truth, written


def test_ablation_rows_match_scikit_learn(ablation_inputs, tmp_path: Path) -> None:
    models, ensemble, packed, labels, truth, written = ablation_inputs
    rows = ablation_table(
        models,
        str(packed["train"]),
        str(packed["split"]),
        tmp_path / "a.csv",
        ensemble=ensemble,
        test_labels=str(labels),
    )
    assert [r["what"] for r in rows] == [
        "best single model (strong), centre view",  # chosen by validation loss with TTA, not by test labels
        "+ 70-view TTA",
        "+ feature fusion",
        "uniform blend of 2 models",
        "weighted ensemble (arithmetic blend)",  # the fixture's meta names no blend: the original's is assumed
    ]
    n_classes = next(iter(written.values())).shape[1]
    strong = models[1]
    expected_files = [
        ([strong.centre_valid], [strong.centre_test]),
        ([strong.tta_valid], [strong.tta_test]),
        ([strong.fused_valid], [strong.fused_test]),
        ([m.fused_valid for m in models], [m.fused_test for m in models]),
        ([ensemble[0]], [ensemble[1]]),
    ]
    for row, (valid_files, test_files) in zip(rows, expected_files, strict=True):
        valid = np.mean([written[f].astype(np.float64) for f in valid_files], axis=0)
        test = np.mean([written[f].astype(np.float64) for f in test_files], axis=0)
        valid, test = valid / valid.sum(axis=1, keepdims=True), test / test.sum(axis=1, keepdims=True)
        labels_range = list(range(n_classes))
        assert row["valid_log_loss"] == pytest.approx(sk_log_loss(truth["valid"], valid, labels=labels_range), abs=1e-4)
        assert row["test_log_loss"] == pytest.approx(sk_log_loss(truth["test"], test, labels=labels_range), abs=1e-4)
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["delta_valid_log_loss"] == pytest.approx(
            after["valid_log_loss"] - before["valid_log_loss"], abs=2e-4
        )
    with open(tmp_path / "a.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)


def test_ablation_without_test_labels_leaves_test_columns_empty(ablation_inputs, tmp_path: Path) -> None:
    models, ensemble, packed, _, _, _ = ablation_inputs
    rows = ablation_table(models[:1], str(packed["train"]), str(packed["split"]), tmp_path / "a.csv")
    assert [r["what"] for r in rows] == ["best single model (weak), centre view", "+ 70-view TTA", "+ feature fusion"]
    assert all(r["test_log_loss"] == "" for r in rows)


def test_ablation_notes_a_model_whose_centre_view_moved_on(ablation_inputs, tmp_path: Path) -> None:
    """A model whose TTA was not adopted (views_choice.py) shows the TTA row marked, then no fusion row when its
    predictions moved on unfused."""
    models, _, packed, _, _, _ = ablation_inputs
    weak = models[0]
    chosen = Predictions.load(weak.centre_valid)
    chosen.meta = {"views_used": "centre"}
    chosen.save(tmp_path / "weak_chosen.valid.npy")
    unfused = ModelPredictions(**{**weak.__dict__, "fused_valid": str(tmp_path / "weak_chosen.valid.npy")})
    rows = ablation_table([unfused], str(packed["train"]), str(packed["split"]), tmp_path / "a.csv")
    assert [r["what"] for r in rows] == [
        "best single model (weak), centre view",
        "+ 70-view TTA (not adopted: the centre view moves on)",
    ]


def test_top5_lists_the_most_likely_classes_in_order(tmp_path: Path) -> None:
    classes = [f"c{i}" for i in range(7)]
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(7), size=12)
    ids = [f"{i}.jpg" for i in range(12)]
    write_submission(tmp_path / "s.csv.gz", ids, classes, probs)
    write_top_k(tmp_path / "s.csv.gz", tmp_path / "top5.csv", 5)
    with open(tmp_path / "top5.csv", newline="") as fh:
        rows = {r["image"]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(ids)
    for i, image in enumerate(ids):
        order = np.argsort(-probs[i])[:5]
        assert [rows[image][f"class_{j}"] for j in range(1, 6)] == [classes[k] for k in order]
        listed = [float(rows[image][f"prob_{j}"]) for j in range(1, 6)]
        assert listed == sorted(listed, reverse=True)
        assert listed[0] == pytest.approx(probs[i].max(), abs=1e-5)


def test_report_figures_are_images(tiny_packed: dict[str, Path], tmp_path: Path) -> None:
    from deepsea.report.plots import plot_class_counts, plot_confusion, sample_grid

    data = ImageSet.load(tiny_packed["train"])
    plot_class_counts(data, tmp_path / "counts.png")
    sample_grid(data, tmp_path / "grid.png", per_class=3)
    labels = data.labels[:20]
    plot_confusion(np.eye(len(data.class_names))[labels], labels, data.class_names, "t", tmp_path / "cm.png")
    grid = cv2.imread(str(tmp_path / "grid.png"), cv2.IMREAD_GRAYSCALE)
    assert grid is not None and grid.shape[0] == len(data.class_names) * (64 + 4)  # one row per class
    for name in ("counts.png", "cm.png"):
        assert cv2.imread(str(tmp_path / name)) is not None


def test_model_table_shows_each_gain_with_its_standard_error(ablation_inputs, tmp_path: Path) -> None:
    """Rows come from real `evaluate` files; an evaluation written before the standard errors still fits in."""
    import json

    from deepsea.report.evaluate import evaluate
    from deepsea.report.plots import model_table

    models, _, packed, _, _, _ = ablation_inputs
    paths = []
    for m in models:
        out = tmp_path / f"{m.name}.json"
        evaluate(m.tta_valid, packed["train"], packed["split"], out, centre_path=m.centre_valid)
        paths.append(out)
    older = json.loads(paths[0].read_text())
    del older["tta_gain_se"]
    (tmp_path / "older.json").write_text(json.dumps(older))
    rows = model_table([*paths, tmp_path / "older.json"], ["weak", "strong", "older"], tmp_path / "models.csv")
    for row, path in zip(rows, paths, strict=False):
        assert row["tta_gain_se"] == round(read_json(path)["tta_gain_se"], 4) > 0
    with open(tmp_path / "models.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["tta_gain_se"] and table[2]["tta_gain_se"] == ""  # the older file: an empty cell
