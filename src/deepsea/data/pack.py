"""`deepsea pack`: read every image of a data folder once, validate it, store it as an `ImageSet`.

Layouts (NDSB): training data is `<train_dir>/<class name>/<image>`; test data is `<test_dir>/<image>` (images in
sub-folders are accepted; their id is the path relative to `test_dir`). Image ids are paths relative to the data
folder with `/` separators, so they are unique even when two folders hold files of the same name. Class names are
the sorted sub-folder names, so the label numbering does not depend on the file system's listing order.

Bad input (unreadable, empty, zero-size, a non-image file, a file outside any class folder) either stops packing
with one error that lists every bad file (`on_bad_image: error`, the default) or is skipped and listed in the
report (`on_bad_image: skip`). Hidden files (`.DS_Store`, `._x.jpg`) and what operating systems and archivers
leave beside images (`Thumbs.db`, `desktop.ini`, a `__MACOSX` folder) are ignored silently.

Background: every later stage assumes the plankton convention, dark organisms on a light background (warps pad
with white, images become "ink" by inversion, the features measure ink). Data with a dark background (UVP plankton
images, fluorescence, white-on-black digits) is inverted here, once, so the rest of the pipeline needs no second
convention. `background: auto` decides from the training images: an image whose mean is lighter than its border
(median of its outermost pixels) shows a light organism; the median over the images decides, so a mid-gray
background works either way. The test set is packed with the training set's decision, never its own (with a
warning when its own images clearly say otherwise).

Copies (`duplicates.py`): identical images within a set, and test images identical to training images, are listed
in the report and warned about; nothing is dropped, the user decides.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from deepsea.data.duplicates import copies_of, duplicate_groups, pixel_digest
from deepsea.data.images import DecodedImage, border_level, is_image_file, read_gray
from deepsea.data.imageset import NO_LABEL, ImageSet, longest_side_p75
from deepsea.data.orientation import MIN_IMAGES, UPRIGHT_SCORE, UPRIGHT_TILT, auto_orientation, check_orientation
from deepsea.errors import BadImageError, DeepseaError
from deepsea.io import read_json, write_json

log = logging.getLogger(__name__)

Subset = Literal["train", "test"]
OnBadImage = Literal["error", "skip"]
Background = Literal["auto", "light", "dark"]

# written by Windows Explorer, macOS Finder (the "Icon\r" of a custom folder icon) and macOS's zip (__MACOSX)
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r", "__macosx"})


def _ignored(name: str) -> bool:
    """Hidden and system files or folders: never data, so neither packed nor reported as bad files."""
    return name.startswith(".") or name.lower() in SYSTEM_FILES


@dataclass
class PackReport:
    """What packing found: kept counts, skipped files with reasons, conversions made."""

    subset: str
    source: str
    n_images: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    converted: dict[str, int] = field(default_factory=dict)
    min_side: int = 0
    max_side: int = 0
    longest_side_p75: float = 0.0  # what `input_size: auto` starts from (training/settings.py)
    background: str = "light"  # what the images were: "dark" ones are stored inverted (light background)
    border_level: float | None = None  # median of the images' border medians (gray level of the background)
    ink_contrast: float | None = None  # median of (image mean - border level): < 0 dark organisms, > 0 light ones
    # set when the background was given (a test set takes its training set's) and these images clearly look the
    # other way: e.g. a test folder exported inverted, whose predictions would be near chance without a word
    background_mismatch: str | None = None
    # ids of identical images (same decoded pixels), one list per image copied; the split keeps each list together
    duplicates: list[list[str]] = field(default_factory=list)
    duplicates_across_classes: int = 0  # of those lists, the ones filed under more than one class: label noise
    copies_of_training_images: list[list[str]] = field(default_factory=list)  # [test id, training id] pairs
    # training images: share that match their class better as they are than turned over or mirrored (orientation.py;
    # about 0.5 for images at random angles, near 1 for upright ones) and how many images were compared
    upright_score: float | None = None
    upright_images: int = 0
    # what `data.orientation: auto` decides from that: "upright" or "free" (a config's free or upright overrides it)
    orientation_auto: str | None = None
    orientation_override: str | None = None  # the config line that decides the other way


def detect_background(contrast: float) -> str:
    """'dark' when the typical image is lighter than its border (light organisms on a darker background).

    Relative to the border, not to mid-gray: dark organisms on a mid-gray background are the plankton convention
    (light), light organisms on it are not."""
    return "dark" if contrast > 0 else "light"


CLEAR_CONTRAST = 2.0  # gray levels of image mean minus border beyond which a data set's background is not in doubt


def background_mismatch(background: Background, contrast: float) -> str | None:
    """A warning when a given background ("light"/"dark") contradicts what the images clearly show, else None."""
    measured = detect_background(contrast)
    if background == "auto" or measured == background or abs(contrast) < CLEAR_CONTRAST:
        return None
    return (
        f"these images look {measured}-background (image mean minus border {contrast:+.1f}) but were packed as "
        f"{background} (data.background, or the training set's decision for its test set): if the subsets were "
        "exported differently, convert one of them so both have the same background, then rerun."
    )


def background_of_report(report_path: str | os.PathLike[str]) -> Background:
    """The background a data set was packed with (its pack report), so its test set is packed the same way."""
    value = read_json(report_path).get("background")
    if value not in ("light", "dark"):
        raise DeepseaError(f"{report_path}: no 'background' in this pack report; repack the training data.")
    return value


def list_files(root: Path, subset: Subset) -> tuple[list[tuple[Path, str]], list[dict[str, str]], list[str]]:
    """Find candidate files under `root`: ((path, class name or ''), not-image problems, class names)."""
    if not root.is_dir():
        raise DeepseaError(
            f"{root}: {subset} folder not found. Set data.{subset}_dir in your config to the folder that holds "
            f"the {subset} images" + (" (one sub-folder per class)." if subset == "train" else ".")
        )
    problems: list[dict[str, str]] = []
    entries: list[tuple[Path, str]] = []
    class_names: list[str] = []
    if subset == "train":
        for child in sorted(root.iterdir()):
            if _ignored(child.name):
                continue
            if child.is_dir():
                class_names.append(child.name)
                entries += [(p, child.name) for p in _walk(child)]
            else:
                problems.append(
                    {
                        "file": str(child),
                        "reason": "file outside any class folder (expected <train_dir>/<class>/<image>)",
                    }
                )
        if not class_names:
            raise DeepseaError(f"{root}: no class sub-folders. Training data must be <train_dir>/<class>/<image>.")
    else:
        entries = [(p, "") for p in _walk(root)]
    images: list[tuple[Path, str]] = []
    for path, cls in entries:
        if is_image_file(path):
            images.append((path, cls))
        else:
            problems.append({"file": str(path), "reason": f"not an image file (extension '{path.suffix}')"})
    return images, problems, class_names


def _walk(folder: Path) -> list[Path]:
    """All files below `folder` but hidden and system ones, sorted (the packed order must not depend on the file
    system).

    Symlinked sub-folders are followed (data sets are often assembled from links), each real folder once, so a
    link back to a parent cannot loop."""
    found: list[Path] = []
    seen = {os.path.realpath(folder)}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        kept = []
        for d in sorted(d for d in dirnames if not _ignored(d)):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real not in seen:
                seen.add(real)
                kept.append(d)
        dirnames[:] = kept
        found += [Path(dirpath, f) for f in filenames if not _ignored(f)]
    return sorted(found)


def _report_duplicates(
    report: PackReport,
    root: Path,
    ids: list[str],
    labels: list[int],
    *,
    digests: list[str],
    class_names: list[str],
) -> None:
    """Find identical images (see `duplicates.py`), record them in the report and warn, naming a few."""
    groups = duplicate_groups(ids, digests)
    if not groups:
        return
    label_of = dict(zip(ids, labels, strict=True))
    across = [g for g in groups if len({label_of[i] for i in g}) > 1]
    report.duplicates, report.duplicates_across_classes = groups, len(across)
    example = across[0] if across else groups[0]
    log.warning(
        "%s: %d image(s) have identical copies (%d sets, e.g. %s)%s; the pack report lists them all",
        root,
        sum(len(g) for g in groups),
        len(groups),
        example,
        f", {len(across)} set(s) filed under different classes (label noise: keep the right copy)"
        if across
        else (": the validation split keeps each set on one side" if class_names else ""),
    )


def _report_orientation(report: PackReport, root: Path, pixels: list[np.ndarray], labels: list[int]) -> None:
    """Measure whether the training images look upright and what `data.orientation: auto` makes of it
    (orientation.py). The config's setting is not pack's to know (pack would rerun whenever it changed): the jobs
    that turn images combine the two when they run."""
    check = check_orientation(pixels, labels)
    report.upright_score, report.upright_images = check.score, check.images
    report.orientation_auto = auto_orientation(check)
    report.orientation_override = f"data.orientation: {'free' if check.looks_upright else 'upright'}"
    log.info(
        "%s: orientation: %.0f%% of %d images match their class better as they are than turned over or mirrored "
        "(upright from %.0f%%, with at least %d images): data.orientation auto decides %s (%s); "
        "%s in the config overrides it",
        root,
        100 * check.score,
        check.images,
        100 * UPRIGHT_SCORE,
        MIN_IMAGES,
        report.orientation_auto,
        f"views tilt by at most {UPRIGHT_TILT:g} degrees, never turned over, nor mirrored with data.mirror: auto"
        if check.looks_upright
        else "views turn to any angle and mirror, as for plankton",
        report.orientation_override,
    )


def _decode(path: Path) -> DecodedImage | BadImageError:
    try:
        return read_gray(path)
    except BadImageError as err:
        return err


@dataclass
class _Decoded:
    """The readable images of a folder, in file order: pixels, ids (paths relative to the folder), labels."""

    pixels: list[np.ndarray] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


def _decode_all(
    root: Path, subset: Subset, files: list[tuple[Path, str]], class_names: list[str], *, workers: int
) -> tuple[_Decoded, list[dict[str, str]], dict[str, int]]:
    """Decode every file: (the readable images, the unreadable files with their reasons, conversions by kind)."""
    label_of = {name: i for i, name in enumerate(class_names)}
    decoded, problems, converted = _Decoded(), list[dict[str, str]](), dict[str, int]()
    # OpenCV's decoders release the GIL, so threads decode in parallel without pickling pixels between processes.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(_decode, [p for p, _ in files], chunksize=64)
        for (path, cls), result in tqdm(
            zip(files, results, strict=True), total=len(files), desc=f"pack {subset}", unit="img", mininterval=2.0
        ):
            if isinstance(result, BadImageError):
                problems.append({"file": str(path), "reason": str(result).removeprefix(f"{path}: ")})
                continue
            decoded.pixels.append(result.pixels)
            decoded.ids.append(path.relative_to(root).as_posix())
            decoded.labels.append(label_of[cls] if subset == "train" else NO_LABEL)
            if result.converted_from:
                converted[result.converted_from] = converted.get(result.converted_from, 0) + 1
    return decoded, problems, converted


SKIP_HINT = "set `data.on_bad_image: skip` in the config to skip them (they are then listed in the pack report)"


def refuse_or_skip(
    problems: list[dict[str, str]], root: Path, on_bad_image: OnBadImage, *, skip_hint: str = SKIP_HINT
) -> None:
    """Stop on bad files, listing them, unless told to skip them (then they are listed in the log); `skip_hint`
    says how to skip them with the command that ran (`deepsea classify` takes --on-bad-image)."""
    if not problems:
        return
    listing = "\n".join(f"  {p['file']}: {p['reason']}" for p in problems[:50])
    more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
    if on_bad_image == "error":
        raise BadImageError(
            f"{len(problems)} bad file(s) in {root}:\n{listing}{more}\nFix or remove them, or {skip_hint}."
        )
    log.warning("skipped %d bad file(s) in %s:\n%s%s", len(problems), root, listing, more)


def _count_classes(report: PackReport, root: Path, labels: list[int], class_names: list[str]) -> None:
    """Images per class of a training set; a class left without images is an error."""
    counts = [labels.count(i) for i in range(len(class_names))]
    empty = [name for name, n in zip(class_names, counts, strict=True) if n == 0]
    if empty:
        raise DeepseaError(
            f"{root}: class folder(s) with no usable images: {empty}. Add images or remove the folder(s); a "
            "class without training images cannot be learned."
        )
    report.per_class = dict(zip(class_names, counts, strict=True))


def _set_background(report: PackReport, root: Path, pixels: list[np.ndarray], background: Background) -> None:
    """Measure (or take) the background and store dark-background images inverted, in place."""
    borders = np.array([border_level(p) for p in pixels])
    report.border_level = float(np.median(borders))
    # mean minus background: negative where the organism is darker than its background, whatever the level
    report.ink_contrast = round(float(np.median([p.mean() for p in pixels] - borders)), 3)
    report.background = background if background != "auto" else detect_background(report.ink_contrast)
    log.info(
        "%s: background %s (%s; median border gray level %.0f, image mean minus border %+.1f)%s",
        root,
        report.background,
        "measured" if background == "auto" else "as configured",
        report.border_level,
        report.ink_contrast,
        ": stored inverted, dark organisms on white as every later stage expects"
        if report.background == "dark"
        else "",
    )
    report.background_mismatch = background_mismatch(background, report.ink_contrast)
    if report.background_mismatch:
        log.warning("%s: %s", root, report.background_mismatch)
    if report.background == "dark":
        for p in pixels:
            np.subtract(255, p, out=p)  # in place: a test set of 130,000 images is not held twice


def _report_training_copies(
    report: PackReport, root: Path, ids: list[str], digests: list[str], training_set: str | os.PathLike[str]
) -> None:
    """Test images identical to training images: the same specimen in both sets."""
    report.copies_of_training_images = copies_of(ids, digests, ImageSet.load(training_set))
    if report.copies_of_training_images:
        log.warning(
            "%s: %d image(s) are identical to training images (e.g. %s is %s): the same specimen in both sets, "
            "listed in the pack report (copies_of_training_images)",
            root,
            len(report.copies_of_training_images),
            *report.copies_of_training_images[0],
        )


def decode_files(
    root: Path,
    files: list[Path],
    background: Background,
    *,
    on_bad_image: OnBadImage = "error",
    skip_hint: str = SKIP_HINT,
    workers: int = 1,
) -> tuple[ImageSet, list[dict[str, str]]]:
    """Some unlabelled images under `root` as `pack` stores a test set packed with `background` (light, or dark:
    inverted), and the files that could not be read (listed with their reasons; they stop the run under
    on_bad_image: error). For classifying new images a chunk at a time (deepsea/deploy/classify.py)."""
    decoded, problems, _ = _decode_all(root, "test", [(f, "") for f in files], [], workers=workers)
    refuse_or_skip(problems, root, on_bad_image, skip_hint=skip_hint)
    if background == "dark":
        for pixels in decoded.pixels:
            np.subtract(255, pixels, out=pixels)
    return ImageSet.from_images(decoded.pixels, decoded.ids, decoded.labels, []), problems


def pack(
    root: str | os.PathLike[str],
    subset: Subset,
    out: str | os.PathLike[str],
    report_path: str | os.PathLike[str],
    *,
    on_bad_image: OnBadImage = "error",
    workers: int = 1,
    background: Background = "auto",
    training_set: str | os.PathLike[str] | None = None,
) -> PackReport:
    """Pack the images under `root` into `out` (.npz) and write a JSON report; return the report.

    `background`: "light" (plankton), "dark" (inverted while packing) or "auto" (measured from the images' borders;
    pass the training set's decision when packing its test set, see `background_of_report`). `training_set`: the
    packed training data, to report test images identical to training images."""
    root = Path(root)
    files, problems, class_names = list_files(root, subset)
    report = PackReport(subset=subset, source=str(root))
    decoded, unreadable, report.converted = _decode_all(root, subset, files, class_names, workers=workers)
    problems += unreadable
    refuse_or_skip(problems, root, on_bad_image)
    report.skipped = problems
    if not decoded.pixels:
        raise DeepseaError(f"{root}: no readable images found for the {subset} set.")
    if subset == "train":
        _count_classes(report, root, decoded.labels, class_names)
    for kind, n in report.converted.items():
        log.warning("%s: %d image(s) converted to upright 8-bit grayscale from: %s", root, n, kind)
    _set_background(report, root, decoded.pixels, background)
    if subset == "train":
        _report_orientation(report, root, decoded.pixels, decoded.labels)
    # one digest per image, after the inversion (which keeps identical images identical): for the copies within
    # this set and, as stored like the packed training images, for the copies of training images
    digests = [pixel_digest(p) for p in decoded.pixels]
    _report_duplicates(report, root, decoded.ids, decoded.labels, digests=digests, class_names=class_names)
    if training_set is not None:
        _report_training_copies(report, root, decoded.ids, digests, training_set)
    images = ImageSet.from_images(decoded.pixels, decoded.ids, decoded.labels, class_names)
    images.save(out)
    report.n_images = len(images)
    report.min_side = int(images.shapes.min())
    report.max_side = int(images.shapes.max())
    report.longest_side_p75 = longest_side_p75(images.shapes)
    write_json(report_path, report.__dict__)
    log.info("packed %d %s images from %s (%d skipped) -> %s", len(images), subset, root, len(problems), out)
    return report
