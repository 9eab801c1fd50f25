"""The calibration stage (blending/temperature.py) and the report's reliability and threshold tables
(report/reliability.py): the temperature adopted only on evidence, the honest validation it is fitted on, the
temperature applied bit-exactly, the CLI round trip; bins, ECE and kept-label scores against hand-computed cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss

from deepsea.blending.calibration import temper
from deepsea.blending.ensemble import out_of_fold_blend, stratified_folds
from deepsea.blending.temperature import (
    apply_temperature,
    fit_calibration,
    honest_validation,
    out_of_fold_tempered,
)
from deepsea.cli import main
from deepsea.data.imageset import ImageSet
from deepsea.io import read_json
from deepsea.predictions import Predictions
from deepsea.report.reliability import Labelled, expected_calibration_error, reliability, threshold_rows


def _overconfident(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """0.99 on class 0 of two, right 70% of the time (labels shuffled)."""
    labels = rng.permutation(np.array([0] * (7 * n // 10) + [1] * (n - 7 * n // 10)))
    return np.tile([0.99, 0.01], (n, 1)), labels


def test_a_clear_gain_adopts_the_fitted_temperature() -> None:
    probs, labels = _overconfident(1000, np.random.default_rng(0))
    fit = fit_calibration(probs, labels, folds=5, seed=0, min_gain_se=1.0)
    assert fit["temperature"] == fit["fitted_temperature"] == pytest.approx(math.log(99) / math.log(7 / 3), rel=1e-3)
    losses = fit["valid_log_loss"]
    assert losses["used"] == pytest.approx(sklearn_log_loss(labels, temper(probs, fit["temperature"])), abs=1e-9)
    assert losses["used"] < losses["uncalibrated"] and losses["out_of_fold"] < losses["uncalibrated"]
    assert fit["adoption"]["adopted"] == "fitted" and fit["valid_images"] == 1000


def test_weak_evidence_keeps_the_blend_uncalibrated() -> None:
    """Calibrated predictions of 40 images (each label drawn from its own probabilities): whatever T fits on them,
    it gains nothing beyond noise on the images it was not fitted on."""
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), 40)
    labels = np.array([rng.choice(3, p=p) for p in probs])
    fit = fit_calibration(probs, labels, folds=5, seed=0, min_gain_se=1.0)
    assert fit["temperature"] == 1.0 and fit["adoption"]["adopted"] == "uncalibrated"
    assert fit["valid_log_loss"]["used"] == pytest.approx(fit["valid_log_loss"]["uncalibrated"])


def test_out_of_fold_temperature_comes_from_the_other_folds() -> None:
    """Each fold's rows are tempered with the temperature fitted on the other folds' images."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 90)
    probs = rng.dirichlet(np.ones(3) * 0.3, 90)
    oof = out_of_fold_tempered(probs, labels, 3, 4)
    folds = stratified_folds(labels, 3, 4)
    from deepsea.blending.calibration import fit_temperature

    for fold in range(3):
        held = folds == fold
        t = fit_temperature(probs[~held], labels[~held]).temperature
        np.testing.assert_allclose(oof[held], temper(probs[held], t))


def test_temperature_one_changes_no_bit() -> None:
    probs = np.random.default_rng(3).dirichlet(np.ones(5), 20).astype(np.float32)
    assert apply_temperature(probs, 1.0).tobytes() == probs.tobytes()
    tempered = apply_temperature(probs, 2.0)
    assert tempered.dtype == np.float32 and not np.array_equal(tempered, probs)


def test_fit_calibration_and_calibrate_from_the_cli(tiny_packed: dict[str, Path], tmp_path: Path) -> None:
    """The temperature is fitted on the final blend rebuilt without in-sample ensemble weights (the ensemble's
    out-of-fold blend, the pseudo-label entries with the final blend's weights from its meta) and `calibrate`
    applies it."""
    data = ImageSet.load(tiny_packed["train"])
    ids = json.loads(tiny_packed["split"].read_text())["valid_ids"]
    label_of = dict(zip(data.ids.tolist(), data.labels.tolist(), strict=True))
    y = np.array([label_of[i] for i in ids])
    c, rng = len(data.class_names), np.random.default_rng(4)
    noisy = [0.6 * np.eye(c)[y] + 0.4 * rng.dirichlet(np.ones(c), len(y)) for _ in range(3)]
    for k, probs in enumerate(noisy[:2]):
        Predictions(probs, ids, data.class_names).save(tmp_path / f"m{k}.npy")
    Predictions(noisy[2], ids, data.class_names).save(tmp_path / "pl.npy")
    final = Predictions(0.7 * (noisy[0] + noisy[1]) / 2 + 0.3 * noisy[2], ids, data.class_names)
    final.meta = {"weights": [0.7, 0.3]}
    final.save(tmp_path / "final.npy")
    (tmp_path / "weights.json").write_text(json.dumps({"mean": "arithmetic", "weights": {"m0": 0.5, "m1": 0.5}}))
    out = tmp_path / "temperature.json"
    args = ["fit-calibration", "--source-valid", str(tmp_path / "final.npy"), "--ensemble-valid",
            str(tmp_path / "m0.npy"), str(tmp_path / "m1.npy"), "--ensemble-weights", str(tmp_path / "weights.json"),
            "--pseudo-labels", str(tmp_path / "pl.npy"), "--data", str(tiny_packed["train"]), "--folds", "3",
            "--min-gain-se", "0", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    fit = read_json(out)
    stored = np.stack([p.astype(np.float32).astype(np.float64) for p in noisy])
    honest = 0.7 * out_of_fold_blend(stored[:2], y, 3, 0, "arithmetic") + 0.3 * stored[2]
    assert fit["valid_log_loss"]["uncalibrated"] == pytest.approx(sklearn_log_loss(y, honest, labels=range(c)))
    assert main(["calibrate", "--pred", str(tmp_path / "final.npy"), "--calibration", str(out),
                 "--out", str(tmp_path / "cal.npy")]) == 0  # fmt: skip
    calibrated = Predictions.load(tmp_path / "cal.npy")
    expected = apply_temperature(Predictions.load(tmp_path / "final.npy").probs, fit["temperature"])
    np.testing.assert_array_equal(calibrated.probs, expected)
    assert calibrated.meta["temperature"] == fit["temperature"]
    # a final blend whose meta lacks its weights is named
    Predictions(final.probs, ids, data.class_names).save(tmp_path / "final.npy")
    assert main(args) != 0


def test_reliability_bins_and_ece_by_hand() -> None:
    """Two images at confidence 0.95 (one right), two at 0.55 (both right): bins 10 and 6; ECE = the mean gap
    (2 x |0.5 - 0.95| + 2 x |1 - 0.55|) / 4 = 0.45."""
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 1, 0, 1])
    confidence, accuracy, count = reliability(probs, labels)
    assert count.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert confidence[9] == pytest.approx(0.95) and accuracy[9] == 0.5
    assert confidence[5] == pytest.approx(0.55) and accuracy[5] == 1.0
    assert expected_calibration_error(probs, labels) == pytest.approx(0.45)


def test_threshold_rows_score_the_kept_labels() -> None:
    """Class 0 predicted 12 times, the 2 least confident wrong: at precision 1 its threshold keeps the top 10
    (precision 1, recall 10/10, 2 of 12 unclassified); class 1 is predicted twice: pooled threshold."""
    conf0 = np.linspace(0.99, 0.6, 12)
    probs = np.vstack([np.column_stack([conf0, 1 - conf0]), [[0.2, 0.8], [0.3, 0.7]]])
    labels = np.array([0] * 10 + [1, 1] + [1, 1])
    rows = threshold_rows(["a", "b"], Labelled(probs, labels), None, 1.0)
    a, b, everything = rows
    assert a["threshold"] == pytest.approx(conf0[9], abs=1e-4) and a["valid_predicted"] == 12
    assert (a["valid_precision"], a["valid_recall"], a["valid_unclassified"]) == (1.0, 1.0, round(2 / 12, 4))
    assert b["valid_predicted"] == 2 and everything["class"] == "all classes"
    assert "test_precision" not in a


@pytest.mark.parametrize(("final_weights", "n_images"), [([1.0, 0.0], "all"), ([0.6, 0.4], "fold 0")])
def test_a_final_blend_without_pseudo_labels_calibrates_on_every_out_of_fold_image(
    tiny_packed: dict[str, Path], tmp_path: Path, final_weights: list[float], n_images: str
) -> None:
    """Under k-fold the pseudo-label models predict only fold 0's images; where the final blend gave them no weight,
    the temperature is fitted on all the ensemble's out-of-fold images, else on the images both have."""
    data = ImageSet.load(tiny_packed["train"])
    ids, c, rng = data.ids.tolist(), len(data.class_names), np.random.default_rng(5)
    for k in range(2):
        Predictions(rng.dirichlet(np.ones(c), len(ids)), ids, data.class_names).save(tmp_path / f"m{k}.npy")
    fold0 = ids[: len(ids) // 4]
    Predictions(rng.dirichlet(np.ones(c), len(fold0)), fold0, data.class_names).save(tmp_path / "pl.npy")
    final = Predictions(rng.dirichlet(np.ones(c), len(fold0)), fold0, data.class_names)
    final.meta = {"weights": final_weights}
    final.save(tmp_path / "final.npy")
    (tmp_path / "weights.json").write_text(json.dumps({"mean": "arithmetic", "weights": {"m0": 0.5, "m1": 0.5}}))
    ensemble = ([str(tmp_path / "m0.npy"), str(tmp_path / "m1.npy")], str(tmp_path / "weights.json"))
    probs, labels, got = honest_validation(
        [str(tmp_path / "final.npy")], ensemble, [str(tmp_path / "pl.npy")], tiny_packed["train"], folds=3, seed=0
    )
    assert sorted(got) == sorted(ids if n_images == "all" else fold0) and len(probs) == len(labels) == len(got)
