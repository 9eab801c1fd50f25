"""The model bundle and `deepsea classify`, on the demo run of conftest.demo_run.

- A copy of the bundle, classifying 50 of the demo's test images while the run's results/ is out of reach, gives
  their submission rows (at most 1e-6 apart: the CSVs' 6 digits); a k-fold bundle does the same
  (tests/unit/test_efficientnet_lite.py).
- A user's folder the bundle has never seen (nested folders, names with spaces, PNG/TIFF/BMP, an unreadable file, a
  text file) classifies in one command: every readable image gets a row, the others are listed with their reasons
  (on_bad_image skip) or stop the run naming them, leaving no output (error).
- A damaged, incomplete or foreign bundle is refused by name; a classify run stopped between chunks resumes.
- The counts table reports one count per class and says where it comes from (the adjusted counts, shrunk by their
  noise: tests/unit/test_calibration.py checks them against argmax counts over many samples, benchmarks/counts_shift.py
  on real images).
- With a finished training DAG, `snakemake classify` plans only the classify jobs.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import planned_jobs, run_snakemake
from deepsea.deploy import classify as classify_module
from deepsea.deploy.classify import ClassifyOptions, classify

pytestmark = pytest.mark.slow
DEEPSEA = [sys.executable, "-m", "deepsea.cli"]
N_COMPARED = 50  # test images classified against their submission rows (each costs every member's 35 views)


def _deepsea(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*DEEPSEA, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def _table(path: Path, opener=open) -> tuple[list[str], dict[str, np.ndarray]]:
    with opener(path, "rt") as handle:
        rows = list(csv.reader(handle))
    return rows[0], {row[0]: row for row in rows[1:]}


@pytest.fixture(scope="module")
def bundle(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo run's bundle in a folder of its own."""
    copy = tmp_path_factory.mktemp("elsewhere") / "bundle"
    shutil.copytree(demo_run / "results" / "bundle", copy)
    return copy


def test_bundle_reproduces_the_submission_without_the_results(demo_run: Path, bundle: Path, tmp_path: Path) -> None:
    images = _some_test_images(demo_run, tmp_path / "images", N_COMPARED)
    hidden = demo_run / "results.hidden"
    (demo_run / "results").rename(hidden)  # classify must not need the results tree
    try:
        result = _deepsea("classify", "--bundle", str(bundle), "--images", str(images),
                          "--out", str(tmp_path / "classified.csv"), "--all-probabilities", cwd=tmp_path)  # fmt: skip
    finally:
        hidden.rename(demo_run / "results")
    assert result.returncode == 0, result.stderr[-3000:]
    header, submission = _table(next((demo_run / "results/submission").glob("*.csv.gz")), gzip.open)
    columns, classified = _table(tmp_path / "classified.csv")
    assert len(classified) == N_COMPARED and set(classified) <= set(submission)
    submission = {image: submission[image] for image in sorted(classified)}  # classified alone, image by image
    classes = header[1:]
    at = [columns.index(name) for name in classes]
    got = np.array([[float(classified[i][k]) for k in at] for i in submission])
    want = np.array([[float(v) for v in submission[i][1:]] for i in submission])
    assert np.abs(got - want).max() <= 1e-6
    best = {i: classes[int(np.argmax(row))] for i, row in zip(submission, want, strict=True)}
    assert all(classified[i][1] == best[i] for i in submission)  # the predicted class is the top probability
    counts = list(csv.DictReader(open(tmp_path / "classified.counts.csv")))
    for estimate in ("count", "predicted", "probability_sum", "adjusted", "adjusted_raw"):  # each sums to the images
        assert sum(float(row[estimate]) for row in counts) == pytest.approx(N_COMPARED, abs=0.05)
        assert all(float(row[estimate]) >= 0 for row in counts)
    for estimate in ("count", "predicted", "probability_sum", "adjusted", "adjusted_raw"):
        assert all(float(r[f"{estimate}_low"]) <= float(r[f"{estimate}_high"]) for r in counts)
    for row in counts:  # the reported count is the shrunk adjusted count, and says how much of the correction it kept
        assert row["count"] == row["adjusted"] and 0 <= float(row["adjustment_kept"]) <= 1
        assert row["count_from"].startswith("predicted" if float(row["adjustment_kept"]) == 0 else "adjusted")
    report = json.loads((tmp_path / "classified.report.json").read_text())
    assert report["n_images"] == N_COMPARED and report["skipped"] == [] and report["thresholds"] is None
    assert report["validation_images"] > 0


def _some_test_images(demo_run: Path, folder: Path, n: int) -> Path:
    """The first `n` of the demo's test images in a folder of their own (a classify call costs every member's
    test-time views per image: the tests that need no particular images take fewer)."""
    folder.mkdir(parents=True)
    for source in sorted((demo_run / "data/demo/test").glob("*.jpg"))[:n]:
        shutil.copy(source, folder)
    return folder


def test_thresholds_send_doubtful_images_to_unclassified(demo_run: Path, bundle: Path, tmp_path: Path) -> None:
    """--precision 0.9: per-class thresholds fitted on the bundle's validation predictions; an image keeps its
    class in `label` exactly when its probability reaches that class's threshold."""
    out = tmp_path / "kept.csv"
    classify(bundle, _some_test_images(demo_run, tmp_path / "images", 60), out, ClassifyOptions(precision=0.9))
    report = json.loads((tmp_path / "kept.report.json").read_text())
    thresholds = report["thresholds"]
    header, rows = _table(out)
    assert header[:4] == ["image", "class", "probability", "label"]
    for row in rows.values():
        if abs(float(row[2]) - thresholds[row[1]]) > 1e-6:  # (the CSV's 6 digits cannot settle a tie)
            assert row[3] == (row[1] if float(row[2]) >= thresholds[row[1]] else "unclassified")
    unclassified = sum(row[3] == "unclassified" for row in rows.values()) / len(rows)
    assert report["unclassified_share"] == pytest.approx(unclassified)


def _users_folder(demo_run: Path, root: Path) -> list[str]:
    """40 of the demo's test images as a user might keep them; returns the ids of the readable ones."""
    sources = sorted((demo_run / "data/demo/test").glob("*.jpg"))[:40]
    ids = []
    for k, source in enumerate(sources):
        suffix = (".png", ".tif", ".bmp")[k % 3]
        name = Path(f"cruise 1/station {k % 4}/img {k}{suffix}" if k % 5 else f"cruise 1/img {k}{suffix}")
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), cv2.imread(str(source), cv2.IMREAD_GRAYSCALE))
        ids.append(name.as_posix())
    (root / "cruise 1" / "broken.png").write_bytes(b"not an image at all")
    (root / "cruise 1" / "notes.txt").write_text("sampled at dawn")
    return ids


def test_a_users_folder_classifies_in_one_command(demo_run: Path, bundle: Path, tmp_path: Path) -> None:
    ids = _users_folder(demo_run, tmp_path / "new sample")
    out = tmp_path / "out" / "sample.csv"
    result = _deepsea("classify", "--bundle", str(bundle), "--images", str(tmp_path / "new sample"), "--out",
                      str(out), "--on-bad-image", "skip", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    header, rows = _table(out)
    assert header[:3] == ["image", "class", "probability"] and len(header) == 11  # top 5: class and probability
    assert sorted(rows) == sorted(ids)
    skipped = {
        Path(item["file"]).name for item in json.loads((tmp_path / "out/sample.report.json").read_text())["skipped"]
    }
    assert skipped == {"broken.png", "notes.txt"}
    failed = _deepsea("classify", "--bundle", str(bundle), "--images", str(tmp_path / "new sample"), "--out",
                      str(tmp_path / "strict.csv"), cwd=tmp_path)  # fmt: skip
    assert failed.returncode == 2 and "notes.txt" in failed.stderr and "--on-bad-image skip" in failed.stderr
    assert not (tmp_path / "strict.csv").exists()


@pytest.mark.parametrize("damage", ["edited", "missing", "other version"])
def test_a_damaged_or_foreign_bundle_is_refused_by_name(bundle: Path, tmp_path: Path, damage: str) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    model = sorted((copy / "models").glob("*.pt"))[0]
    if damage == "edited":
        model.write_bytes(model.read_bytes() + b"\0")
        expected = f"{model.name}: its contents differ from the bundle's manifest"
    elif damage == "missing":
        model.unlink()
        expected = f"{model.name}: missing from the bundle"
    else:
        manifest = json.loads((copy / "manifest.json").read_text())
        (copy / "manifest.json").write_text(json.dumps({**manifest, "deepsea_version": "0.0.1"}))
        expected = "written by deepsea 0.0.1"
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.full((20, 20), 200, np.uint8))
    result = _deepsea("classify", "--bundle", str(copy), "--images", str(tmp_path / "images"), "--out",
                      str(tmp_path / "x.csv"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and expected in result.stderr, result.stderr[-2000:]


def test_a_stopped_run_resumes_from_its_finished_chunks(
    demo_run: Path, bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    images, options = _some_test_images(demo_run, tmp_path / "images", 66), ClassifyOptions(chunk=32)  # 3 chunks
    classify(bundle, images, tmp_path / "whole.csv", options)
    calls = []
    real = classify_module._classify_chunk

    def stop_at_the_third(*args, **kwargs):
        calls.append(args[3].name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as Ctrl-C or a killed job
        return real(*args, **kwargs)

    monkeypatch.setattr(classify_module, "_classify_chunk", stop_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        classify(bundle, images, tmp_path / "resumed.csv", options)
    assert not (tmp_path / "resumed.csv").exists() and len(list((tmp_path / "resumed.parts").glob("*.npz"))) == 2
    calls.clear()
    monkeypatch.setattr(classify_module, "_classify_chunk", real)
    monkeypatch.setattr(classify_module, "_classify_chunk", lambda *a, **k: (calls.append(a[3].name), real(*a, **k)))
    classify(bundle, images, tmp_path / "resumed.csv", options)
    assert calls == ["part-00002.npz"] and not (tmp_path / "resumed.parts").exists()
    assert (tmp_path / "resumed.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_snakemake_classify_plans_only_the_classify_jobs(demo_run: Path) -> None:
    folder = demo_run / "data/demo/test"
    result = run_snakemake(demo_run, "-n", "--config", f"classify={{dir: {folder}}}", "--", "classify")
    assert result.returncode == 0, result.stderr[-3000:]
    assert {rule for rule, _ in planned_jobs(result.stdout)} == {"classify_images", "classify"}
    unset = run_snakemake(demo_run, "-n", "--", "classify")
    assert unset.returncode != 0 and "set classify.dir" in unset.stdout + unset.stderr
