"""Packing: round trip of the ragged store, format conversions, and bad files named in the error."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from deepsea.data.images import read_gray
from deepsea.data.imageset import NO_LABEL, ImageSet
from deepsea.data.pack import list_files, pack
from deepsea.errors import BadImageError, DeepseaError


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def test_imageset_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w), dtype=np.uint8) for h, w in [(1, 1), (8, 400), (37, 21), (200, 3)]]
    original = ImageSet.from_images(images, ["a", "b/c.jpg", "d", "e"], [0, 1, 1, 0], ["x", "y"])
    original.save(tmp_path / "set.npz")
    loaded = ImageSet.load(tmp_path / "set.npz")
    assert loaded.ids.tolist() == ["a", "b/c.jpg", "d", "e"]
    assert loaded.labels.tolist() == [0, 1, 1, 0]
    assert loaded.class_names == ["x", "y"]
    for expected, got in zip(images, loaded, strict=True):
        np.testing.assert_array_equal(expected, got)
    sub = loaded.subset([2, 0])
    np.testing.assert_array_equal(sub.image(0), images[2])
    assert sub.ids.tolist() == ["d", "a"]


def test_loaded_pixels_are_mapped_not_read(tmp_path: Path) -> None:
    """Streaming stages stay bounded because the pixels are a read-only map of the file; a compressed .npz (made
    by hand) still loads, into memory; an empty set loads too (an empty array cannot be mapped)."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (h, w), dtype=np.uint8) for h, w in [(3, 5), (64, 9)]]
    original = ImageSet.from_images(images, ["a", "b"], [0, 1], ["x", "y"])
    original.save(tmp_path / "set.npz")
    loaded = ImageSet.load(tmp_path / "set.npz")
    assert isinstance(loaded.pixels, np.memmap) and not loaded.pixels.flags.writeable
    np.testing.assert_array_equal(loaded.image(1), images[1])
    fields = {k: getattr(original, k) for k in ("pixels", "offsets", "shapes", "ids", "labels")}
    np.savez_compressed(tmp_path / "zipped.npz", class_names=np.array(["x", "y"]), **fields)
    zipped = ImageSet.load(tmp_path / "zipped.npz")
    assert not isinstance(zipped.pixels, np.memmap)
    np.testing.assert_array_equal(zipped.image(1), images[1])
    ImageSet.from_images([], [], [], ["x"]).save(tmp_path / "empty.npz")
    assert len(ImageSet.load(tmp_path / "empty.npz")) == 0


def test_pack_demo_layout(tiny_demo: Path, tmp_path: Path) -> None:
    report = pack(tiny_demo / "train", "train", tmp_path / "train.npz", tmp_path / "report.json", workers=2)
    packed = ImageSet.load(tmp_path / "train.npz")
    assert len(packed) == 160 == report.n_images
    assert packed.class_names == sorted(p.name for p in (tiny_demo / "train").iterdir())
    # ids are class/file; labels agree with the folder the file was in
    for image_id, label in zip(packed.ids.tolist(), packed.labels.tolist(), strict=True):
        assert image_id.split("/")[0] == packed.class_names[label]
    some = packed.ids.tolist().index(sorted(packed.ids.tolist())[5])
    np.testing.assert_array_equal(packed.image(some), cv2.imread(str(tiny_demo / "train" / packed.ids[some]), 0))
    test = pack(tiny_demo / "test", "test", tmp_path / "test.npz", tmp_path / "test_report.json")
    assert test.n_images == 40
    assert (ImageSet.load(tmp_path / "test.npz").labels == NO_LABEL).all()


def test_conversions_to_gray_uint8(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (12, 1))
    colour = np.dstack([gray, gray // 2, 255 - gray])
    sixteen = gray.astype(np.uint16) * 257
    alpha = np.dstack([np.zeros_like(gray)] * 3 + [np.full_like(gray, 0)])  # fully transparent black -> white
    assert read_gray(_write(tmp_path / "g.png", gray)).converted_from is None
    np.testing.assert_array_equal(read_gray(tmp_path / "g.png").pixels, gray)
    c = read_gray(_write(tmp_path / "c.png", colour))
    assert c.converted_from == "colour" and c.pixels.shape == gray.shape
    s = read_gray(_write(tmp_path / "s.png", sixteen))
    assert "uint16" in s.converted_from
    np.testing.assert_array_equal(s.pixels, gray)
    camera_12_bit = (gray.astype(np.uint32) * 4095 // 255).astype(np.uint16)  # values 0-4095 in a 16-bit file
    twelve = read_gray(_write(tmp_path / "twelve.png", camera_12_bit))
    assert twelve.converted_from == "uint16 (12-bit)"
    np.testing.assert_array_equal(twelve.pixels, gray)  # not 16x darker: the background stays background
    signed_15_bit = (gray.astype(np.int32) * 32767 // 255).astype(np.int16)  # int16 TIFF using its whole range
    signed = read_gray(_write(tmp_path / "signed.tiff", signed_15_bit))
    assert signed.converted_from == "int16"  # int16 holds 15 bits: no 16-bit camera depth (half as bright)
    np.testing.assert_array_equal(signed.pixels, gray)
    floats = read_gray(_write(tmp_path / "f.tiff", gray.astype(np.float32) / 255.0))
    assert floats.converted_from == "float32"
    np.testing.assert_array_equal(floats.pixels, gray)
    a = read_gray(_write(tmp_path / "a.png", alpha))
    assert a.converted_from == "alpha" and (a.pixels == 255).all()
    assert read_gray(_write(tmp_path / "t.tiff", gray)).pixels.shape == gray.shape
    assert read_gray(_write(tmp_path / "b.bmp", gray)).pixels.shape == gray.shape


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_exif_orientation_is_applied_as_viewers_show_it(tmp_path: Path, suffix: str) -> None:
    """A phone photo stored sideways with an EXIF orientation is read upright (digits, upright specimens)."""
    from PIL import Image, ImageOps

    stored = np.random.default_rng(0).integers(0, 256, (6, 10)).astype(np.uint8)  # not square: turns show
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"{orientation}{suffix}"
        Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=100, lossless=True)
        decoded = read_gray(path)
        assert (decoded.converted_from == "EXIF-oriented") == (orientation != 1)  # counted in the pack report
        ours = decoded.pixels
        np.testing.assert_array_equal(ours, np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("L")))
        if suffix != ".webp":  # OpenCV applies the orientation itself when it converts to gray (JPEG, PNG)
            np.testing.assert_array_equal(ours, cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    np.testing.assert_array_equal(read_gray(tmp_path / f"6{suffix}").pixels[0], stored[::-1, 0])  # 90° clockwise
    with_icc = tmp_path / f"icc{suffix}"  # more metadata around the EXIF block: found where the format keeps it
    Image.fromarray(stored).save(with_icc, exif=exif.tobytes(), icc_profile=b"\0" * 3000, quality=100, lossless=True)
    assert read_gray(with_icc).pixels.shape == (10, 6)
    tiff = tmp_path / "6.tiff"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tiff, exif=exif.tobytes())
    assert read_gray(tiff).pixels.shape == (10, 6)  # OpenCV turns a TIFF itself: turned once, not twice


def test_gif_is_an_image_when_opencv_decodes_it(tmp_path: Path) -> None:
    """OpenCV 4.11+ reads GIF; a folder of GIFs must not be reported as 'not an image file'."""
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (12, 1))
    try:
        ok, _ = cv2.imencode(".gif", cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    except cv2.error:
        ok = False
    if not ok:
        pytest.skip(f"OpenCV {cv2.__version__} has no GIF codec")
    path = _write(tmp_path / "train" / "a" / "x.GIF", cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    images, problems, _ = list_files(tmp_path / "train", "train")
    assert images == [(path, "a")] and not problems
    assert read_gray(path).pixels.shape == gray.shape


def _bad_folder(tmp_path: Path) -> Path:
    root = tmp_path / "train"
    ok = np.full((20, 20), 200, np.uint8)
    for cls in ("alpha", "beta"):
        for i in range(3):
            _write(root / cls / f"{i}.jpg", ok)
    (root / "alpha" / "empty.jpg").write_bytes(b"")
    (root / "beta" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "beta" / "notes.txt").write_text("not an image")
    (root / "alpha" / ".DS_Store").write_bytes(b"\0")  # hidden: ignored silently
    return root


def test_bad_images_are_named(tmp_path: Path) -> None:
    root = _bad_folder(tmp_path)
    with pytest.raises(BadImageError) as err:
        pack(root, "train", tmp_path / "out.npz", tmp_path / "report.json")
    message = str(err.value)
    for name in ("empty.jpg", "corrupt.jpg", "notes.txt"):
        assert name in message
    assert "0 bytes" in message and "on_bad_image: skip" in message
    assert ".DS_Store" not in message
    assert not (tmp_path / "out.npz").exists()


def test_bad_images_skipped_and_reported(tmp_path: Path) -> None:
    root = _bad_folder(tmp_path)
    report = pack(root, "train", tmp_path / "out.npz", tmp_path / "report.json", on_bad_image="skip")
    assert report.n_images == 6
    skipped = {Path(s["file"]).name for s in json.loads((tmp_path / "report.json").read_text())["skipped"]}
    assert skipped == {"empty.jpg", "corrupt.jpg", "notes.txt"}


def test_system_files_and_mac_archive_folders_are_not_data(tmp_path: Path) -> None:
    """A folder copied from Windows or unzipped on a Mac: no error, no class named __MACOSX, nothing reported."""
    ok = np.full((12, 12), 200, np.uint8)
    for cls in ("alpha", "beta"):
        _write(tmp_path / "train" / cls / "1.png", ok)
        (tmp_path / "train" / cls / "Thumbs.db").write_bytes(b"\0")
    (tmp_path / "train" / "desktop.ini").write_text("[.ShellClassInfo]")  # beside the class folders
    (tmp_path / "train" / "beta" / "Icon\r").write_bytes(b"")
    _write(tmp_path / "train" / "__MACOSX" / "alpha" / "1.png", ok)  # zip's resource forks, named like images
    _write(tmp_path / "test" / "1.png", ok)
    _write(tmp_path / "test" / "__MACOSX" / "1.png", ok)
    (tmp_path / "test" / "Thumbs.db").write_bytes(b"\0")
    train = pack(tmp_path / "train", "train", tmp_path / "train.npz", tmp_path / "train.json")
    test = pack(tmp_path / "test", "test", tmp_path / "test.npz", tmp_path / "test.json")
    assert train.per_class == {"alpha": 1, "beta": 1} and not train.skipped
    assert ImageSet.load(tmp_path / "test.npz").ids.tolist() == ["1.png"] and not test.skipped


def test_empty_class_and_missing_folder(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "a" / "1.png", np.zeros((5, 5), np.uint8))
    (tmp_path / "train" / "b").mkdir()
    with pytest.raises(DeepseaError, match=r"no usable images: \['b'\]"):
        pack(tmp_path / "train", "train", tmp_path / "o.npz", tmp_path / "r.json")
    with pytest.raises(DeepseaError, match="data.test_dir"):
        pack(tmp_path / "nowhere", "test", tmp_path / "o.npz", tmp_path / "r.json")


def _blob_images(root: Path, background: int, ink: int, per_class: int = 3) -> dict[str, np.ndarray]:
    """Two classes of discs (small, large) on a plain background; returns {id: pixels} as written."""
    written = {}
    for cls, radius in (("small", 4), ("large", 9)):
        for i in range(per_class):
            image = np.full((24 + i, 26), background, np.uint8)
            cv2.circle(image, (13, 12), radius, ink, -1)
            _write(root / cls / f"{i}.png", image)
            written[f"{cls}/{i}.png"] = image
    return written


def test_dark_background_is_measured_and_inverted(tmp_path: Path) -> None:
    """Light organisms on black (UVP images, digits) are stored as dark on white, the convention of every stage."""
    written = _blob_images(tmp_path / "train", background=10, ink=230)
    report = pack(tmp_path / "train", "train", tmp_path / "train.npz", tmp_path / "report.json")
    assert report.background == "dark" and report.border_level == 10 and report.ink_contrast > 0
    assert json.loads((tmp_path / "report.json").read_text())["background"] == "dark"
    packed = ImageSet.load(tmp_path / "train.npz")
    for image_id, pixels in zip(packed.ids.tolist(), packed, strict=True):
        np.testing.assert_array_equal(pixels, 255 - written[image_id])


def test_light_background_is_kept_and_the_setting_overrides(tmp_path: Path) -> None:
    written = _blob_images(tmp_path / "light", background=245, ink=30)
    report = pack(tmp_path / "light", "train", tmp_path / "l.npz", tmp_path / "l.json")
    assert report.background == "light"
    packed = ImageSet.load(tmp_path / "l.npz")
    np.testing.assert_array_equal(packed.image(0), written[packed.ids[0]])
    dark = _blob_images(tmp_path / "dark", background=10, ink=230)
    forced = pack(tmp_path / "dark", "train", tmp_path / "d.npz", tmp_path / "d.json", background="light")
    assert forced.background == "light"  # as configured, not measured: stored as read
    packed = ImageSet.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(packed.image(0), dark[packed.ids[0]])


def test_a_mid_gray_background_is_judged_by_the_organisms(tmp_path: Path) -> None:
    """Background 120: dark organisms on it keep the plankton convention, light ones are inverted."""
    for name, ink, expected in (("dark_ink", 30, "light"), ("light_ink", 220, "dark")):
        _blob_images(tmp_path / name, background=120, ink=ink)
        report = pack(tmp_path / name, "train", tmp_path / f"{name}.npz", tmp_path / f"{name}.json")
        assert report.background == expected and report.border_level == 120, name


def test_test_set_follows_the_training_sets_background(tmp_path: Path) -> None:
    """A test set is packed with the training set's decision, even one whose own borders would say otherwise."""
    from deepsea.data.pack import background_of_report

    _blob_images(tmp_path / "train", background=10, ink=230)
    pack(tmp_path / "train", "train", tmp_path / "train.npz", tmp_path / "train.json")
    full = np.full((20, 20), 230, np.uint8)  # a test image filled by its organism: no contrast to its border
    _write(tmp_path / "test" / "1.png", full)
    test = pack(
        tmp_path / "test",
        "test",
        tmp_path / "test.npz",
        tmp_path / "t.json",
        background=background_of_report(tmp_path / "train.json"),
    )
    assert test.background == "dark"
    np.testing.assert_array_equal(ImageSet.load(tmp_path / "test.npz").image(0), 255 - full)
    assert test.background_mismatch is None  # no contrast to judge by: no warning
    (tmp_path / "old.json").write_text('{"subset": "train"}')
    with pytest.raises(DeepseaError, match="no 'background'.*repack"):
        background_of_report(tmp_path / "old.json")


def test_a_test_set_exported_the_other_way_is_warned_about(tmp_path: Path) -> None:
    """Training images light-on-black, test images dark-on-white: packed like the training set, and said so."""
    _blob_images(tmp_path / "train", background=10, ink=230)
    pack(tmp_path / "train", "train", tmp_path / "train.npz", tmp_path / "train.json")
    _blob_images(tmp_path / "test", background=245, ink=30)
    test = pack(tmp_path / "test", "test", tmp_path / "test.npz", tmp_path / "t.json", background="dark")
    assert test.background == "dark"  # the training set's decision still rules: one convention for both
    assert test.background_mismatch and "look light-background" in test.background_mismatch
    assert json.loads((tmp_path / "t.json").read_text())["background_mismatch"] == test.background_mismatch
    same_way = pack(tmp_path / "train", "test", tmp_path / "t2.npz", tmp_path / "t2.json", background="dark")
    assert same_way.background_mismatch is None


def test_identical_images_are_reported_with_the_ones_across_classes(tmp_path: Path, caplog) -> None:
    """A file exported twice in one class, and one filed under two classes (label noise): both in the report."""
    import logging
    import shutil

    _blob_images(tmp_path / "train", background=245, ink=30)
    shutil.copy(tmp_path / "train" / "small" / "0.png", tmp_path / "train" / "small" / "0 (copy).png")
    shutil.copy(tmp_path / "train" / "large" / "1.png", tmp_path / "train" / "small" / "wrong.png")
    with caplog.at_level(logging.WARNING, logger="deepsea.data.pack"):
        report = pack(tmp_path / "train", "train", tmp_path / "t.npz", tmp_path / "t.json")
    assert report.duplicates == [["large/1.png", "small/wrong.png"], ["small/0 (copy).png", "small/0.png"]]
    assert report.duplicates_across_classes == 1
    assert json.loads((tmp_path / "t.json").read_text())["duplicates"] == report.duplicates
    assert "4 image(s) have identical copies (2 sets" in caplog.text and "label noise" in caplog.text
    unique = pack(tmp_path / "train" / "large", "test", tmp_path / "u.npz", tmp_path / "u.json")
    assert unique.duplicates == [] and unique.duplicates_across_classes == 0


def test_test_images_identical_to_training_images_are_reported(tmp_path: Path) -> None:
    """The same specimen in both sets, compared as stored: here a dark-background set, inverted in both."""
    import shutil

    _blob_images(tmp_path / "train", background=10, ink=230)
    pack(tmp_path / "train", "train", tmp_path / "train.npz", tmp_path / "train.json")
    (tmp_path / "test").mkdir()
    shutil.copy(tmp_path / "train" / "large" / "2.png", tmp_path / "test" / "a.png")
    cv2.imwrite(str(tmp_path / "test" / "b.png"), np.full((24, 26), 10, np.uint8))  # in no class
    test = pack(
        tmp_path / "test", "test", tmp_path / "t.npz", tmp_path / "t.json", background="dark",
        training_set=tmp_path / "train.npz",
    )  # fmt: skip
    assert test.copies_of_training_images == [["a.png", "large/2.png"]]
    assert json.loads((tmp_path / "t.json").read_text())["copies_of_training_images"] == [["a.png", "large/2.png"]]
    alone = pack(tmp_path / "test", "test", tmp_path / "u.npz", tmp_path / "u.json", background="dark")
    assert alone.copies_of_training_images == []  # nothing to compare with: nothing reported


def test_symlinked_folders_are_followed_once(tmp_path: Path) -> None:
    """A test folder assembled from links: a linked sub-folder is read, a link back to a parent does not loop."""
    gray = np.full((10, 10), 200, np.uint8)
    _write(tmp_path / "elsewhere" / "batch2" / "2.png", gray)
    _write(tmp_path / "test" / "batch1" / "1.png", gray)
    (tmp_path / "test" / "batch2").symlink_to(tmp_path / "elsewhere" / "batch2", target_is_directory=True)
    (tmp_path / "test" / "batch1" / "loop").symlink_to(tmp_path / "test", target_is_directory=True)
    report = pack(tmp_path / "test", "test", tmp_path / "test.npz", tmp_path / "r.json")
    assert report.n_images == 2
    assert ImageSet.load(tmp_path / "test.npz").ids.tolist() == ["batch1/1.png", "batch2/2.png"]
