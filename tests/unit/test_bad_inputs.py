"""The bad-input corpus: what real folders and configs do to the pipeline, one case per test, each through the
stage that meets it. Every case ends in a clear error that names the file or key and says what to do, or in
documented handling (converted, skipped and reported, kept).
docs/robustness.md's "Bad input" table lists the same cases.

The corpus is generated here (no committed binaries): a small valid training folder that each case copies and
spoils in one way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from deepsea.blending.submission import submit
from deepsea.data.features import FeatureSettings, extract_features
from deepsea.data.images import _truncated_jpeg
from deepsea.data.imageset import ImageSet
from deepsea.data.pack import pack
from deepsea.data.splits import stratified_split
from deepsea.errors import BadImageError, DataMismatchError, DeepseaError, NonFiniteError
from deepsea.predictions import Predictions, average

REPO = Path(__file__).parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _blob(size: int, seed: int = 0) -> np.ndarray:
    """A dark blob on a light background, like a plankton image."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size), 235, np.uint8)
    cv2.circle(image, (size // 2, size // 2), max(1, size // 3), int(rng.integers(40, 90)), -1)
    return image


@pytest.fixture(scope="module")
def good_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "train"
    for c, cls in enumerate(("alpha", "beta")):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            cv2.imwrite(str(root / cls / f"{c}{i}.jpg"), _blob(30 + 5 * i, i))
    return root


def _spoiled(good: Path, tmp_path: Path, files: dict[str, bytes | np.ndarray | None]) -> Path:
    """A copy of the good folder with `files` added (bytes as written, arrays encoded by their extension, None: a
    folder)."""
    root = tmp_path / "train"
    shutil.copytree(good, root)
    for rel, content in files.items():
        path = root / rel
        if content is None:
            path.mkdir(parents=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            assert cv2.imwrite(str(path), content)
    return root


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


BAD_FILES = {
    "corrupt JPEG": ("beta/corrupt.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "not a readable image"),
    "truncated JPEG": ("beta/cut.jpg", _jpeg(_blob(120))[:700], "truncated"),
    "0-byte JPEG": ("alpha/empty.jpg", b"", "0 bytes"),
    "non-image file in a class folder": ("alpha/notes.txt", b"counts: 12", "not an image file"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_named_with_the_fix_or_skipped(case: str, good_train: Path, tmp_path: Path) -> None:
    rel, content, reason = BAD_FILES[case]
    root = _spoiled(good_train, tmp_path, {rel: content})
    with pytest.raises(BadImageError) as err:
        pack(root, "train", tmp_path / "train.npz", tmp_path / "report.json")
    message = str(err.value)
    assert Path(rel).name in message and reason in message
    assert "data.on_bad_image: skip" in message  # the fix
    assert not (tmp_path / "train.npz").exists()  # nothing half-written for a later stage
    report = pack(root, "train", tmp_path / "train.npz", tmp_path / "report.json", on_bad_image="skip")
    assert report.n_images == 10
    assert [Path(s["file"]).name for s in json.loads((tmp_path / "report.json").read_text())["skipped"]] == [
        Path(rel).name
    ]


def test_truncated_jpeg_detector() -> None:
    """Some OpenCV builds decode a cut-off JPEG with a grey band instead of failing; the end marker decides."""
    whole = np.frombuffer(_jpeg(_blob(80)), np.uint8)
    assert not _truncated_jpeg(whole)
    assert not _truncated_jpeg(np.concatenate([whole, np.zeros(16, np.uint8)]))  # padding after the marker is fine
    assert _truncated_jpeg(whole[: len(whole) - 40])
    assert not _truncated_jpeg(np.frombuffer(cv2.imencode(".png", _blob(20))[1].tobytes(), np.uint8))


def test_png_colour_16bit_and_alpha_are_converted_and_reported(good_train: Path, tmp_path: Path) -> None:
    blob = _blob(40)
    root = _spoiled(
        good_train,
        tmp_path,
        {
            "alpha/gray.png": blob,
            "alpha/colour.png": np.dstack([blob, blob // 2, 255 - blob]),
            "beta/deep.png": blob.astype(np.uint16) * 257,
            "beta/see_through.png": np.dstack([blob, blob, blob, np.full_like(blob, 128)]),
        },
    )
    report = pack(root, "train", tmp_path / "train.npz", tmp_path / "report.json")
    assert report.n_images == 14
    assert report.converted == {"colour": 1, "uint16": 1, "alpha": 1}


def test_tiny_and_huge_images_pass_every_image_stage(good_train: Path, tmp_path: Path) -> None:
    """1x1 and 5000x5000 images: packed, featurised (finite values) and warped to a network input."""
    from deepsea.data.augment import view_uint8

    root = _spoiled(good_train, tmp_path, {"alpha/dot.png": np.zeros((1, 1), np.uint8), "beta/huge.png": _blob(5000)})
    report = pack(root, "train", tmp_path / "train.npz", tmp_path / "report.json")
    assert (report.min_side, report.max_side) == (1, 5000)
    extract_features(tmp_path / "train.npz", tmp_path / "f.npz", tmp_path / "f.json", FeatureSettings(), workers=1)
    values = np.load(tmp_path / "f.npz")["values"]
    assert values.shape[0] == 12 and np.isfinite(values).all()
    data = ImageSet.load(tmp_path / "train.npz")
    for image_id in ("alpha/dot.png", "beta/huge.png"):
        view = view_uint8(data.image(int(np.flatnonzero(data.ids == image_id)[0])), 32)
        assert view.shape == (32, 32)


def test_empty_class_folder_is_named(good_train: Path, tmp_path: Path) -> None:
    root = _spoiled(good_train, tmp_path, {"gamma": None})
    with pytest.raises(DeepseaError, match=r"no usable images: \['gamma'\].*Add images or remove the folder"):
        pack(root, "train", tmp_path / "train.npz", tmp_path / "report.json")


def test_class_with_one_image_trains_and_is_reported(good_train: Path, tmp_path: Path) -> None:
    root = _spoiled(good_train, tmp_path, {"solo/only.jpg": _blob(33)})
    pack(root, "train", tmp_path / "train.npz", tmp_path / "report.json")
    data = ImageSet.load(tmp_path / "train.npz")
    split = stratified_split(data.ids, data.labels, data.class_names, 0.2, seed=0)
    assert "solo/only.jpg" in split.train_ids  # a class never loses its only image to validation
    assert any("'solo' has only 1 image(s)" in note for note in split.notes)


def test_missing_test_folder_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(DeepseaError, match="Set data.test_dir"):
        pack(tmp_path / "no_test_here", "test", tmp_path / "test.npz", tmp_path / "report.json")


def test_duplicate_test_names_in_different_folders_stay_apart(tmp_path: Path) -> None:
    """Test ids are paths relative to the test folder, so a/1.jpg and b/1.jpg are two images."""
    for folder in ("a", "b"):
        (tmp_path / "test" / folder).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "test" / folder / "1.jpg"), _blob(30))
    pack(tmp_path / "test", "test", tmp_path / "test.npz", tmp_path / "report.json")
    assert sorted(ImageSet.load(tmp_path / "test.npz").ids.tolist()) == ["a/1.jpg", "b/1.jpg"]


def test_prediction_ids_that_differ_from_the_test_set_are_refused(tmp_path: Path) -> None:
    for name in ("1.jpg", "2.jpg"):
        (tmp_path / "test").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "test" / name), _blob(30))
    pack(tmp_path / "test", "test", tmp_path / "test.npz", tmp_path / "report.json")
    Predictions(np.full((2, 2), 0.5), ["1.jpg", "3.jpg"], ["alpha", "beta"]).save(tmp_path / "pred.npy")
    with pytest.raises(DataMismatchError, match=r"pred.npy: its image ids differ .*rerun its prediction"):
        submit([str(tmp_path / "pred.npy")], tmp_path / "test.npz", tmp_path / "sub.csv.gz")
    assert not (tmp_path / "sub.csv.gz").exists()


def test_prediction_with_nan_is_refused_when_written_and_when_read(tmp_path: Path) -> None:
    probs = np.full((2, 2), 0.5, np.float32)
    probs[1, 0] = np.nan
    with pytest.raises(NonFiniteError, match="NaN or inf in 1 rows"):
        Predictions(probs, ["1.jpg", "2.jpg"], ["alpha", "beta"]).save(tmp_path / "p.npy")
    np.save(tmp_path / "p.npy", probs)  # a file made some other way: every consumer reads through load_predictions
    (tmp_path / "p.meta.json").write_text(json.dumps({"ids": ["1.jpg", "2.jpg"], "class_names": ["alpha", "beta"]}))
    with pytest.raises(NonFiniteError, match=r"p.npy: NaN or inf"):
        Predictions.load(tmp_path / "p.npy")
    with pytest.raises(NonFiniteError):
        average([tmp_path / "p.npy"])


def _embedded_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize(
    "case, change, named",
    [
        ("mistyped key", lambda c: c["data"].update(trian_dir="x"), "'trian_dir' was unexpected"),
        ("wrong type", lambda c: c["tta"].update(views="seventy"), "'seventy' is not of type 'integer'"),
        ("negative learning rate", lambda c: c["models"]["plain"]["train"].update(learning_rate=-0.1),
         "-0.1 is less than or equal to the minimum of 0"),
        ("duplicate bag seeds", lambda c: c["models"]["plain"].update(bags=[1, 1]), "has non-unique elements"),
        ("final weight neither a number nor fit", lambda c: c["pseudo_labels"].update(final_weight="fitt"),
         "['pseudo_labels']['properties']['final_weight']"),
        ("final weight above 1", lambda c: c["pseudo_labels"].update(final_weight=1.5), "'final_weight'"),
        ("balanced fraction above 1", lambda c: c["models"]["plain"]["train"].update(balanced_until=1.5),
         "'balanced_until'"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(case: str, change, named: str) -> None:
    config = _embedded_config()
    validate(config, str(SCHEMA))  # the embedded config itself is valid
    config = _embedded_config()
    change(config)
    with pytest.raises(WorkflowError) as err:
        validate(config, str(SCHEMA))
    assert named in str(err.value), str(err.value)[:2000]
