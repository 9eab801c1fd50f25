"""The CLI: user errors print one clear message (no traceback) and exit 2; the command line is logged first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepsea.cli", *args], capture_output=True, text=True)


def test_user_error_without_traceback(tmp_path: Path) -> None:
    result = _run(
        "pack",
        "--dir",
        str(tmp_path / "missing"),
        "--subset",
        "train",
        "--out",
        str(tmp_path / "o.npz"),
        "--report",
        str(tmp_path / "r.json"),
    )
    assert result.returncode == 2
    assert "deepsea pack: error:" in result.stderr and "data.train_dir" in result.stderr
    assert "Traceback" not in result.stderr
    assert "$ deepsea pack --dir" in result.stderr  # the log starts with the command, to rerun it by hand


def test_score_demo_submission(tmp_path: Path) -> None:
    from deepsea.blending.submission import write_submission

    (tmp_path / "labels.csv").write_text("image,class\n1.jpg,a\n2.jpg,b\n")
    write_submission(tmp_path / "s.csv.gz", ["1.jpg", "2.jpg"], ["a", "b"], [[0.8, 0.2], [0.4, 0.6]])
    result = _run("score", "--submission", str(tmp_path / "s.csv.gz"), "--labels", str(tmp_path / "labels.csv"))
    assert result.returncode == 0, result.stderr
    assert '"accuracy": 1.0' in result.stdout
