"""`deepsea choose-views`: the TTA mean moves on only where it beats the centre view beyond noise on validation,
and the same decision carries every subset of the model; `deepsea evaluate` reports both and which was used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepsea.cli import main
from deepsea.data.imageset import ImageSet
from deepsea.data.splits import Split
from deepsea.io import read_json
from deepsea.predictions import Predictions
from deepsea.report.evaluate import evaluate


def _noisy(rng: np.random.Generator, labels: np.ndarray, n_classes: int, skill: float) -> np.ndarray:
    """Probabilities with `skill` extra logit on the true class, image by image noisy."""
    logits = rng.normal(size=(len(labels), n_classes))
    logits[np.arange(len(labels)), labels] += skill
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


@pytest.fixture()
def predictions(tiny_packed, tmp_path: Path):
    """Write TTA mean and centre view for valid and test, the TTA mean `skill` better on validation."""
    data = ImageSet.load(tiny_packed["train"])
    test = ImageSet.load(tiny_packed["test"])
    split = Split.from_json(read_json(tiny_packed["split"]), "split")
    labels = data.labels[data.index_of(split.valid_ids)]
    n = len(data.class_names)

    def write(tta_skill: float, centre_skill: float, noise_seed: int = 0) -> dict[str, Path]:
        rng = np.random.default_rng(noise_seed)
        files = {}
        for kind, skill in (("tta", tta_skill), ("centre", centre_skill)):
            files[f"{kind}_valid"] = tmp_path / f"valid.{kind}.npy"
            Predictions(_noisy(rng, labels, n, skill), list(split.valid_ids), data.class_names, {"kind": kind}).save(
                files[f"{kind}_valid"]
            )
            files[f"{kind}_test"] = tmp_path / f"test.{kind}.npy"
            test_probs = _noisy(rng, np.zeros(len(test), int), n, 1.0)
            Predictions(test_probs, test.ids.tolist(), data.class_names, {"kind": kind}).save(files[f"{kind}_test"])
        return files

    return write


def _choose(files: dict[str, Path], subset: str, packed, out: Path, *extra: str) -> Predictions:
    args = ["choose-views", "--tta-valid", str(files["tta_valid"]), "--centre-valid", str(files["centre_valid"])]
    args += ["--tta", str(files[f"tta_{subset}"]), "--centre", str(files[f"centre_{subset}"])]
    assert main([*args, "--data", str(packed["train"]), "--out", str(out), *extra]) == 0
    return Predictions.load(out)


def test_a_clearly_better_tta_mean_moves_on_for_every_subset(predictions, tiny_packed, tmp_path: Path) -> None:
    files = predictions(tta_skill=4.0, centre_skill=0.0)
    for subset in ("valid", "test"):
        chosen = _choose(files, subset, tiny_packed, tmp_path / f"{subset}.npy")
        assert chosen.meta["kind"] == "tta" and chosen.meta["views_used"] == "tta"
        np.testing.assert_array_equal(chosen.probs, Predictions.load(files[f"tta_{subset}"]).probs)
        assert chosen.meta["views_choice"]["adoption"]["adopted"] == "the TTA mean"  # the simple choice kept


def test_a_worse_tta_mean_gives_way_to_the_centre_view(predictions, tiny_packed, tmp_path: Path) -> None:
    files = predictions(tta_skill=0.0, centre_skill=4.0)
    chosen = _choose(files, "test", tiny_packed, tmp_path / "test.npy")
    assert chosen.meta["kind"] == "centre" and chosen.meta["views_used"] == "centre"
    np.testing.assert_array_equal(chosen.probs, Predictions.load(files["centre_test"]).probs)
    assert "the centre view alone gains" in chosen.meta["views_choice"]["reason"]


def test_a_centre_view_better_within_noise_keeps_the_tta_mean(predictions, tiny_packed, tmp_path: Path) -> None:
    """A centre view better by less than its standard errors does not replace the views' mean; with no margin
    asked (min_gain_se 0) any gain does."""
    files = predictions(tta_skill=1.0, centre_skill=1.3)
    chosen = _choose(files, "valid", tiny_packed, tmp_path / "valid.npy", "--min-gain-se", "1000")
    assert chosen.meta["views_used"] == "tta"
    adoption = chosen.meta["views_choice"]["adoption"]
    any_gain = _choose(files, "valid", tiny_packed, tmp_path / "any.npy", "--min-gain-se", "0")
    assert any_gain.meta["views_used"] == ("centre" if adoption["gain"] > 0 else "tta")


def test_choice_views_always_takes_the_tta_mean(predictions, tiny_packed, tmp_path: Path) -> None:
    files = predictions(tta_skill=0.0, centre_skill=4.0)
    chosen = _choose(files, "test", tiny_packed, tmp_path / "test.npy", "--choice", "views")
    assert chosen.meta["views_used"] == "tta" and chosen.meta["views_choice"]["reason"] == "tta.choice: views"


def test_mismatched_validation_files_are_refused_by_name(predictions, tiny_packed, tmp_path: Path, capsys) -> None:
    files = predictions(tta_skill=1.0, centre_skill=1.0)
    files["centre_valid"] = files["centre_test"]  # other images
    args = ["choose-views", "--tta-valid", str(files["tta_valid"]), "--centre-valid", str(files["centre_valid"])]
    args += [
        "--tta",
        str(files["tta_test"]),
        "--centre",
        str(files["centre_test"]),
        "--data",
        str(tiny_packed["train"]),
    ]
    assert main([*args, "--out", str(tmp_path / "x.npy")]) == 2
    assert "not of the same images" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()


def test_evaluate_scores_what_moved_on_beside_both_views(predictions, tiny_packed, tmp_path: Path) -> None:
    files = predictions(tta_skill=0.0, centre_skill=4.0)
    chosen = tmp_path / "valid.npy"
    _choose(files, "valid", tiny_packed, chosen)
    result = evaluate(
        chosen,
        tiny_packed["train"],
        tiny_packed["split"],
        tmp_path / "eval.json",
        centre_path=files["centre_valid"],
        tta_path=files["tta_valid"],
    )
    assert result["views_used"] == "centre"
    assert result["valid"]["log_loss"] == pytest.approx(result["centre"]["log_loss"])
    assert result["tta_gain"] == pytest.approx(result["centre"]["log_loss"] - result["tta"]["log_loss"])
    (warning,) = result["warnings"]  # TTA hurt: said, with what moved on instead
    assert "its centre view moves on instead" in warning["problem"]
