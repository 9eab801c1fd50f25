"""Shared fixtures: a tiny demo data set, generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepsea.data.demo import DemoSettings, make_demo_data

TINY_DEMO = DemoSettings(n_train=160, n_test=40, n_classes=4, seed=3, imbalance=0.35)


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<dir>/train/<class>/*.jpg`, `<dir>/test/*.jpg`, `<dir>/test_labels.csv` with 4 classes."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    make_demo_data(out, TINY_DEMO, workers=1)
    return out


@pytest.fixture(scope="session")
def tiny_packed(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny demo packed (train/test .npz) with its standard validation split."""
    from deepsea.data.imageset import ImageSet
    from deepsea.data.pack import pack
    from deepsea.data.splits import stratified_split
    from deepsea.io import write_json

    out = tmp_path_factory.mktemp("packed")
    pack(tiny_demo / "train", "train", out / "train.npz", out / "train_report.json")
    pack(tiny_demo / "test", "test", out / "test.npz", out / "test_report.json")
    data = ImageSet.load(out / "train.npz")
    split = stratified_split(data.ids, data.labels, data.class_names, 0.2, seed=0)
    write_json(out / "valid.json", split.to_json())
    return {"train": out / "train.npz", "test": out / "test.npz", "split": out / "valid.json"}


def train_tiny(settings: dict, packed: dict[str, Path], out_dir: Path) -> Path:
    """Train a model from a settings dict on the tiny packed set; return the model file."""
    import json

    from deepsea.training.loop import train
    from deepsea.training.settings import load_model_settings

    train(
        load_model_settings(json.dumps(settings)),
        packed["train"],
        packed["split"],
        out_dir / "model.pt",
        out_dir / "log.csv",
    )
    return out_dir / "model.pt"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run A of tests/test_workflow.py: `make run`'s DAG on the shipped config, uninterrupted (shared with
    tests/test_classify.py, which uses its model bundle)."""
    from test_workflow import DEMO_ARGS, _snakemake, _workdir

    workdir = _workdir(tmp_path_factory.mktemp("run_a") / "wf")
    result = _snakemake(workdir, *DEMO_ARGS, timeout=3600)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir
