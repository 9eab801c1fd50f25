"""Determinism at full size: two complete runs of the default demo DAG (config.yaml as shipped) on CPU give the same
splits, the same predictions of every model and the same submission bytes.

Each run is `make run`'s DAG (about 10 minutes on 2 cores), so the pair with the rest of the tests takes longer
than the CI budget allows (`.ci/run` must finish in 20 minutes): it runs with `make test-determinism`, not in
`make test`. `make test` checks the same property on the tiny config
(`test_workflow.py::test_same_config_same_bytes`), with the demo's thread and worker counts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from test_workflow import SNAKEMAKE, _workdir

pytestmark = pytest.mark.full_demo

COMPARED = ("splits", "features", "predictions", "fused", "ensemble", "final", "submission")  # under results/


def _full_demo_run(workdir: Path) -> Path:
    result = subprocess.run(
        [*SNAKEMAKE, "--cores", "all", "final_submission"], cwd=workdir, capture_output=True, text=True, timeout=3600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_two_full_demo_runs_give_identical_bytes(tmp_path: Path) -> None:
    import torch

    a, b = (_full_demo_run(_workdir(tmp_path / name)) for name in ("run_a", "run_b"))
    files = sorted(p.relative_to(a) for folder in COMPARED for p in (a / "results" / folder).rglob("*") if p.is_file())
    assert any(str(f).endswith("submission.csv.gz") for f in files) and len(files) > 50
    differing = [str(f) for f in files if (a / f).read_bytes() != (b / f).read_bytes()]
    assert not differing, f"{len(differing)} files differ between two runs of the same config: {differing[:10]}"
    models = sorted(p.relative_to(a) for p in (a / "results" / "models").rglob("model.pt"))
    assert len(models) >= 8
    for rel in models:
        ours, theirs = (torch.load(d / rel, weights_only=False)["state_dict"] for d in (a, b))
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), rel
