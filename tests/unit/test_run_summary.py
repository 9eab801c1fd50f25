"""The summary a finished run prints: scores of the evaluations that exist, and their warnings."""

from __future__ import annotations

import json
from pathlib import Path

from deepsea.dag.summary import blend_summary, bundle_summary, data_summary, run_summary


def _write(path: Path, valid: float, prior: float, centre: float | None = None, warnings: list | None = None) -> Path:
    scores = {"valid": {"log_loss": valid}, "class_prior": {"log_loss": prior}, "warnings": warnings or []}
    if centre is not None:
        scores["centre"] = {"log_loss": centre}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(scores))
    return path


TTA_WORSE = {"problem": "test-time augmentation made it worse", "fix": "train longer"}


def test_scores_and_warnings_of_existing_evaluations(tmp_path: Path) -> None:
    plain = _write(tmp_path / "plain.json", 2.9168, 4.1436, 2.8704, [TTA_WORSE])
    fused = _write(tmp_path / "fused" / "plain.json", 2.894, 4.1436)
    missing = tmp_path / "cr4_ds.json"
    broken = tmp_path / "old.json"
    broken.write_text("{not json")
    lines = run_summary([plain, missing, broken, fused])
    assert lines[0] == "deepsea: validation log loss (results/eval/):"
    assert "plain" in lines[1] and "2.9168" in lines[1] and "centre view 2.8704" in lines[1] and "4.1436" in lines[1]
    assert "plain (fused)" in lines[2] and "2.8940" in lines[2] and "centre" not in lines[2]
    assert lines[3] == "deepsea: 1 warning(s) about these results:"
    assert lines[4:] == ["  plain: test-time augmentation made it worse", "    -> train longer"]


def test_a_fix_shared_by_several_models_is_given_once(tmp_path: Path) -> None:
    fusion_worse = {"problem": "fusion made it worse", "fix": "other groups"}
    a = _write(tmp_path / "a.json", 1.0, 2.0, 0.9, [TTA_WORSE])
    b = _write(tmp_path / "b.json", 1.0, 2.0, 0.9, [TTA_WORSE, fusion_worse])
    lines = run_summary([a, b])
    assert lines[3:] == [
        "deepsea: 3 warning(s) about these results:",
        "  a: test-time augmentation made it worse",
        "  b: test-time augmentation made it worse",
        "    -> train longer",
        "  b: fusion made it worse",
        "    -> other groups",
    ]


def test_nothing_evaluated_prints_nothing(tmp_path: Path) -> None:
    assert run_summary([tmp_path / "plain.json"]) == []


def test_blend_lines_say_what_the_ensemble_and_the_final_weight_chose(tmp_path: Path) -> None:
    ensemble = tmp_path / "weights.json"
    ensemble.write_text(
        json.dumps({"mean": "geometric", "weights": {"a": 0.25, "b": 0.75}, "valid_log_loss": {"weighted": 0.2001}})
    )
    final = tmp_path / "blend.json"
    losses = {"fitted": 0.21, "ensemble_out_of_fold": 0.2116, "pseudo_labels": 0.26, "half_and_half": 0.22}
    final.write_text(json.dumps({"final_weight": 0.125, "valid_log_loss": losses}))
    lines = blend_summary(ensemble, final)
    assert "geometric blend, valid log loss 0.2001 (in-sample); weights a 0.250, b 0.750" in lines[0]
    assert "pseudo-label weight 0.12, valid log loss 0.2100 (ensemble out-of-fold 0.2116" in lines[1]
    assert blend_summary(ensemble, tmp_path / "none.json") == lines[:1]  # a fixed final_weight: no blend.json
    # with the adoption (the ensemble and the final weight fell back to the uniform choice): said, with why
    reason = "uniform: the fitted blend gains +0.0030 log loss over the uniform one on 80 images it was not fitted on"
    adoption = {"adopted": "uniform", "reason": reason}
    uniform = {"weighted": 0.19, "used": 0.2227}
    ensemble.write_text(json.dumps({"mean": "arithmetic", "weights": {"a": 0.5, "b": 0.5}, "adoption": adoption,
                                    "valid_log_loss": uniform}))  # fmt: skip
    final.write_text(
        json.dumps({"final_weight": 0.5, "valid_log_loss": {**losses, "used": 0.22}, "adoption": adoption})
    )
    lines = blend_summary(ensemble, final)
    assert "arithmetic blend, valid log loss 0.2227 (uniform: nothing fitted); weights a 0.500, b 0.500" in lines[0]
    assert lines[1] == f"    -> weights {reason}"
    assert "pseudo-label weight 0.50, valid log loss 0.2200" in lines[2] and lines[3] == f"    -> weight {reason}"
    ensemble.write_text("{not json")
    assert blend_summary(ensemble, tmp_path / "none.json") == []


def test_data_lines_come_from_real_pack_reports(tmp_path: Path) -> None:
    """Counts, sizes, a dark background, skipped and converted files: read from what `pack` writes."""
    import cv2
    import numpy as np

    from deepsea.data.pack import pack

    for cls, side in (("a", 12), ("b", 30)):
        image = np.full((side, side), 5, np.uint8)  # light organisms on black
        cv2.circle(image, (side // 2, side // 2), side // 4, 220, -1)
        (tmp_path / "train" / cls).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "train" / cls / "1.png"), image)
    cv2.imwrite(str(tmp_path / "train" / "b" / "2.png"), np.full((9, 9, 3), 5, np.uint8) + np.uint8([0, 0, 90]))
    (tmp_path / "train" / "a" / "notes.txt").write_text("not an image")
    pack(tmp_path / "train", "train", tmp_path / "train.npz", tmp_path / "train_report.json", on_bad_image="skip")
    lines = data_summary([tmp_path / "train_report.json", tmp_path / "test_report.json"])  # no test report yet
    assert lines[0] == "deepsea: data (results/data/):" and len(lines) == 2
    assert lines[1].startswith("  train: 3 images in 2 classes, 9-30 px, dark background (stored inverted")
    assert "1 bad file(s) skipped" in lines[1] and "converted: 1 colour" in lines[1]
    assert "identical" not in lines[1]  # no copies: nothing said
    assert data_summary([tmp_path / "nothing.json"]) == []
    light_test = np.full((20, 20), 250, np.uint8)  # a test set exported dark-on-white, unlike its training set
    cv2.circle(light_test, (10, 10), 5, 20, -1)
    (tmp_path / "test").mkdir()
    cv2.imwrite(str(tmp_path / "test" / "1.png"), light_test)
    cv2.imwrite(str(tmp_path / "test" / "2.png"), light_test)  # and a copy of it
    pack(tmp_path / "test", "test", tmp_path / "test.npz", tmp_path / "test_report.json", background="dark")
    test_line = data_summary([tmp_path / "train_report.json", tmp_path / "test_report.json"])[2]
    assert test_line.startswith("  test: 2 images, 20-20 px, dark background")
    assert "WARNING these images look" in test_line and "2 identical copies in 1 sets" in test_line


def test_the_summary_ends_with_the_bundle_and_how_to_use_it(tmp_path: Path) -> None:
    assert bundle_summary(tmp_path / "bundle") == []  # not written (yet)
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "manifest.json").write_text("{}")
    [line] = bundle_summary(tmp_path / "bundle")
    assert f"deepsea classify --bundle {tmp_path / 'bundle'} --images FOLDER" in line
