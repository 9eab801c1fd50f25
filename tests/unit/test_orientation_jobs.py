"""The jobs that turn images (`deepsea train`, `deepsea predict`) apply data.orientation as the workflow passes it.

On images at random angles (the tiny demo, upright score about 0.5) `--orientation auto` must make the same model
and the same prediction bytes as the command without any orientation option (what the jobs ran before the option
existed): the demo's results cannot move. Forced upright, the model file records the limited augmentation and no
test-time view turns or mirrors an image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from deepsea.cli import main
from deepsea.data.orientation import UPRIGHT_TILT

SETTINGS = {
    "name": "t",
    "input_size": 24,
    "params": {"widths": [8, 16], "dense": 32},
    "train": {"steps": 20, "batch_size": 16, "eval_every": 10, "checkpoint_every": 10, "workers": 0},
}
VIEWS = json.dumps({"method": "halton", "views": 6})


def _train_and_predict(packed: dict[str, Path], out: Path, *orientation: str) -> Path:
    """Train SETTINGS and predict the validation images with VIEWS, passing `orientation` options to both."""
    inputs = ["--data", str(packed["train"]), "--split", str(packed["split"])]
    model = out / "model.pt"
    assert main(["train", "--settings", json.dumps(SETTINGS), *inputs, "--out", str(model), "--log-csv",
                 str(out / "log.csv"), *orientation]) == 0  # fmt: skip
    assert main(["predict", "--model", str(model), *inputs, "--subset", "valid", "--tta", VIEWS,
                 "--out", str(out / "valid.npy"), *orientation]) == 0  # fmt: skip
    return out


def test_auto_on_images_at_random_angles_changes_no_byte(tiny_packed: dict[str, Path], tmp_path: Path) -> None:
    report = str(tiny_packed["train"].with_name("train_report.json"))
    assert json.loads(Path(report).read_text())["orientation_auto"] == "free"
    before = _train_and_predict(tiny_packed, tmp_path / "before")
    auto = _train_and_predict(tiny_packed, tmp_path / "auto", "--orientation", "auto", "--pack-report", report)
    a, b = (torch.load(d / "model.pt", weights_only=False) for d in (before, auto))
    assert a["settings"] == b["settings"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    for name in ("valid.npy", "valid.meta.json"):
        assert (before / name).read_bytes() == (auto / name).read_bytes(), name


def test_upright_jobs_never_turn_over_or_mirror(tiny_packed: dict[str, Path], tmp_path: Path) -> None:
    out = _train_and_predict(tiny_packed, tmp_path, "--orientation", "upright")
    augmentation = torch.load(out / "model.pt", weights_only=False)["settings"]["augmentation"]
    assert augmentation["rotation"] == UPRIGHT_TILT and augmentation["flip"] is False
    views = json.loads((out / "valid.meta.json").read_text())["views"]
    assert len(views) == 6 and all(0 <= v["rotation"] < UPRIGHT_TILT and not v["flip"] for v in views)
    assert np.isfinite(np.load(out / "valid.npy")).all()
