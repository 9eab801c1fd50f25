"""`deepsea` commands of the data stages: the demo set, packing, the splits, the test shards, the features."""

from __future__ import annotations

import argparse
import logging

from deepsea.cli.common import AddCommand
from deepsea.data.demo import DemoSettings  # the defaults of the options: the settings' own
from deepsea.data.features import FeatureSettings
from deepsea.errors import DeepseaError

log = logging.getLogger("deepsea")


def _cmd_make_demo_data(a: argparse.Namespace) -> None:
    from deepsea.data.demo import make_demo_data

    make_demo_data(
        a.out,
        DemoSettings(n_train=a.n_train, n_test=a.n_test, n_classes=a.classes, seed=a.seed, imbalance=a.imbalance),
        workers=a.workers,
    )


def _cmd_pack(a: argparse.Namespace) -> None:
    from deepsea.data.pack import background_of_report, pack

    background = background_of_report(a.background_from) if a.background_from else a.background
    pack(
        a.dir,
        a.subset,
        a.out,
        a.report,
        on_bad_image=a.on_bad_image,
        workers=a.workers,
        background=background,
        training_set=a.copies_from,
    )


def _cmd_split(a: argparse.Namespace) -> None:
    from deepsea.data.duplicates import pixel_digest
    from deepsea.data.imageset import ImageSet
    from deepsea.data.splits import stratified_split
    from deepsea.io import write_json

    data = ImageSet.load(a.data)
    digests = [pixel_digest(pixels) for pixels in data]  # copies of an image stay on one side of the split
    split = stratified_split(
        data.ids, data.labels, data.class_names, a.valid_fraction, a.seed, purpose=a.purpose, digests=digests
    )
    write_json(a.out, split.to_json())
    log.info(
        "split (%s, seed %d): %d train / %d valid -> %s",
        a.purpose,
        a.seed,
        len(split.train_ids),
        len(split.valid_ids),
        a.out,
    )


def _cmd_split_folds(a: argparse.Namespace) -> None:
    from deepsea.data.duplicates import pixel_digest
    from deepsea.data.imageset import ImageSet
    from deepsea.data.splits import all_images_split, kfold_splits
    from deepsea.io import write_json

    if len(a.out) != a.folds:
        raise DeepseaError(f"split-folds: --out names {len(a.out)} files for {a.folds} folds; give one per fold.")
    data = ImageSet.load(a.data)
    digests = [pixel_digest(pixels) for pixels in data]  # copies of an image stay in one fold
    splits = kfold_splits(data.ids, data.labels, data.class_names, a.folds, a.seed, digests=digests)
    for split, out in zip(splits, a.out, strict=True):
        write_json(out, split.to_json())
    write_json(a.out_all, all_images_split(splits).to_json())
    sizes = [len(split.valid_ids) for split in splits]
    log.info("%d folds (seed %d) of %s images -> %s, %s", a.folds, a.seed, sizes, " ".join(a.out), a.out_all)


def _cmd_extract_features(a: argparse.Namespace) -> None:
    from deepsea.data.features import extract_features

    settings = FeatureSettings(tuple(a.groups), a.haralick_levels)
    extract_features(a.data, a.out, a.report, settings, workers=a.workers)


def _cmd_shard_test(a: argparse.Namespace) -> None:
    from deepsea.data.imageset import ImageSet
    from deepsea.data.shards import shard_test_set
    from deepsea.io import write_json

    shards = shard_test_set(ImageSet.load(a.data).ids, a.shards, a.seed)
    write_json(a.out, {"seed": a.seed, "shards": shards})
    sizes = [len(shard) for shard in shards]
    log.info("%d test images in %d shards of %s -> %s", sum(sizes), a.shards, sizes, a.out)


def _add_reading(add: AddCommand) -> None:
    p = add("make-demo-data", _cmd_make_demo_data, "generate the synthetic plankton-like demo data set")
    p.add_argument("--out", default="data/demo", help="output folder (default: data/demo)")
    p.add_argument("--n-train", type=int, default=DemoSettings.n_train, help="training images (default %(default)s)")
    p.add_argument("--n-test", type=int, default=DemoSettings.n_test, help="test images (default %(default)s)")
    p.add_argument(
        "--classes", type=int, default=DemoSettings.n_classes, help="classes (default %(default)s; NDSB: 121)"
    )
    p.add_argument(
        "--imbalance", type=float, default=DemoSettings.imbalance, help="decay of class sizes (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=DemoSettings.seed)
    p.add_argument("--workers", type=int, default=1, help="processes drawing images")

    p = add("pack", _cmd_pack, "read, validate and pack a folder of images (NDSB layout)")
    p.add_argument("--dir", required=True, help="train folder (<dir>/<class>/<image>) or test folder")
    p.add_argument("--subset", required=True, choices=["train", "test"])
    p.add_argument("--out", required=True, help="packed .npz to write")
    p.add_argument("--report", required=True, help="JSON report to write (counts, skipped files)")
    p.add_argument("--on-bad-image", choices=["error", "skip"], default="error")
    p.add_argument("--workers", type=int, default=1, help="decoding threads")
    p.add_argument(
        "--background",
        choices=["auto", "light", "dark"],
        default="auto",
        help="light (plankton) or dark image background; dark images are stored inverted. auto: measured",
    )
    p.add_argument("--background-from", help="a training set's pack report: pack with its background (test sets)")
    p.add_argument("--copies-from", help="packed training data (.npz): report test images identical to its images")

    p = add("extract-features", _cmd_extract_features, "handcrafted features of the raw images of a packed set")
    p.add_argument("--data", required=True, help="packed data (.npz)")
    p.add_argument(
        "--groups",
        nargs="+",
        default=list(FeatureSettings.groups),
        help="size moments haralick hu zernike lbp pftas",
    )
    p.add_argument(
        "--haralick-levels", type=int, default=FeatureSettings.haralick_levels, help="Haralick grey levels (2-256)"
    )
    p.add_argument("--out", required=True, help="features .npz to write (ids, names, groups, values)")
    p.add_argument("--report", required=True, help="JSON report (which image/group values were filled)")
    p.add_argument("--workers", type=int, default=1, help="processes")


def _add_splits(add: AddCommand) -> None:
    p = add("split", _cmd_split, "stratified train/validation split of the packed training data")
    p.add_argument("--data", required=True, help="packed training data (.npz)")
    p.add_argument("--valid-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--purpose", choices=["valid", "bag"], default="valid")
    p.add_argument("--out", required=True, help="split JSON to write")

    p = add("split-folds", _cmd_split_folds, "K stratified folds of the packed training data (out-of-fold scheme)")
    p.add_argument("--data", required=True, help="packed training data (.npz)")
    p.add_argument("--folds", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, nargs="+", help="one split JSON per fold: fold k validates on fold k")
    p.add_argument("--out-all", required=True, help="split JSON whose validation set is every image")

    p = add("shard-test", _cmd_shard_test, "shuffle the test ids into shards for pseudo-label models")
    p.add_argument("--data", required=True, help="packed test data (.npz)")
    p.add_argument("--shards", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="shards JSON to write")


def add_commands(add: AddCommand) -> None:
    _add_reading(add)
    _add_splits(add)
