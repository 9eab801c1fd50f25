"""The Makefile's everyday targets on a fresh clone: `make clean` and `make help` (they need no venv)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).parents[2]


def _fresh_checkout(tmp: Path) -> Path:
    """The tracked files a fresh clone has (git ls-files), copied: no results, no venv."""
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        if (REPO / name).is_file():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tmp / name)
    return tmp


def test_make_clean_removes_results_and_records_but_not_the_data(tmp_path: Path) -> None:
    root = _fresh_checkout(tmp_path)
    assert subprocess.run(["make", "clean"], cwd=root, capture_output=True).returncode == 0  # nothing to clean yet
    for made in ("results/models/plain/model.pt", ".snakemake/metadata/x", "data/demo/manifest.json"):
        (root / made).parent.mkdir(parents=True, exist_ok=True)
        (root / made).write_text("x")
    result = subprocess.run(["make", "clean"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not (root / "results").exists() and not (root / ".snakemake").exists()
    assert (root / "data/demo/manifest.json").exists()


def test_make_help_lists_every_target() -> None:
    makefile = (REPO / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.*)$", makefile, re.M)
    assert phony
    # as a child of `make test` too: no "Entering directory" lines
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    help_ = ["make", "--no-print-directory", "help"]
    shown = subprocess.run(help_, cwd=REPO, capture_output=True, text=True, check=True, env=env).stdout
    listed = {line.split()[0] for line in shown.splitlines() if line.strip()}
    assert set(phony.group(1).split()) == listed
