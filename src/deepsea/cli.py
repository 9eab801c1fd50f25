"""The `deepsea` command: one subcommand per pipeline stage, so every rule's job also runs by hand.

Each Snakemake rule calls exactly one of these with explicit paths and settings; the command line is logged first
so a rule's log shows how to rerun it. Errors caused by input or configuration (`DeepseaError`) are printed
without a traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence

from deepsea.cli_report import add_report_commands
from deepsea.errors import ConfigError, DeepseaError

log = logging.getLogger("deepsea")


def _cmd_make_demo_data(a: argparse.Namespace) -> None:
    from deepsea.demo import DemoSettings, make_demo_data

    make_demo_data(
        a.out,
        DemoSettings(n_train=a.n_train, n_test=a.n_test, n_classes=a.classes, seed=a.seed, imbalance=a.imbalance),
        workers=a.workers,
    )


def _cmd_pack(a: argparse.Namespace) -> None:
    from deepsea.pack import background_of_report, pack

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
    from deepsea.duplicates import pixel_digest
    from deepsea.imageset import ImageSet
    from deepsea.io import write_json
    from deepsea.splits import stratified_split

    data = ImageSet.load(a.data)
    digests = [pixel_digest(pixels) for pixels in data]  # copies of an image stay on one side of the split
    split = stratified_split(data.ids, data.labels, data.class_names, a.valid_fraction, a.seed, a.purpose, digests)
    write_json(a.out, split.to_json())
    log.info(
        "split (%s, seed %d): %d train / %d valid -> %s",
        a.purpose,
        a.seed,
        len(split.train_ids),
        len(split.valid_ids),
        a.out,
    )


def _cmd_extract_features(a: argparse.Namespace) -> None:
    from deepsea.features import FeatureSettings, extract_features

    extract_features(a.data, a.out, a.report, FeatureSettings(tuple(a.groups), a.haralick_levels), a.workers)


def _claim_gpu(device: str) -> None:
    """On a multi-GPU workstation (DEEPSEA_GPU_SLOTS set by the workflow), take one free GPU before CUDA starts."""
    from deepsea.gpu_slots import claim_gpu_slot, slots_from_environment

    slots = slots_from_environment()
    if slots and device.startswith("cuda:"):
        raise ConfigError(
            f"device: '{device}' with GPU slots: each job sees only the GPU it was given, as cuda:0; "
            "use device: auto (or cuda)."
        )
    if slots and device != "cpu":
        claim_gpu_slot(slots)


def _cmd_train(a: argparse.Namespace) -> None:
    from deepsea.pseudo_labels import PseudoLabelInputs
    from deepsea.settings import load_model_settings
    from deepsea.train import train

    if a.config or a.model:
        _train_from_config(a)
        return
    needed = {"--settings": a.settings, "--data": a.data, "--split": a.split, "--out": a.out, "--log-csv": a.log_csv}
    missing = [option for option, value in needed.items() if value is None]
    if missing:
        raise DeepseaError(
            f"train: {', '.join(missing)} missing. Give --settings, --data, --split, --out and --log-csv (what the "
            "workflow's rule passes), or --config FILE --model NAME to train a config's model by hand."
        )
    given = [a.test_data, a.shards, a.pseudo_labels]
    if any(given) and not all(given):
        raise DeepseaError("train: --test-data, --shards and --pseudo-labels go together (a pseudo-label model).")
    pseudo = PseudoLabelInputs(a.test_data, a.shards, a.pseudo_labels) if all(given) else None
    device = a.device or "auto"
    _claim_gpu(device)
    train(load_model_settings(a.settings), a.data, a.split, a.out, a.log_csv, device, a.threads or 1, a.preinit, pseudo)


def _train_from_config(a: argparse.Namespace) -> None:
    """`deepsea train --config FILE --model NAME`: the model run as its Snakemake job would train it (settings,
    inputs, outputs and device from the config), for rerunning one stage by hand."""
    from pathlib import Path

    from deepsea.pseudo_labels import PseudoLabelInputs
    from deepsea.settings import load_model_settings
    from deepsea.train import train
    from deepsea.train_job import train_job
    from deepsea.workflow_config import load_workflow_config

    explicit = [opt for opt, v in (("--settings", a.settings), ("--data", a.data), ("--split", a.split),
                                   ("--preinit", a.preinit), ("--test-data", a.test_data), ("--shards", a.shards),
                                   ("--pseudo-labels", a.pseudo_labels)) if v is not None]  # fmt: skip
    if explicit or not a.model:
        raise DeepseaError(
            "train: --config takes --model NAME and reads the model's settings and inputs from the config; "
            + (f"drop {', '.join(explicit)}." if explicit else "name the model with --model.")
        )
    workdir = Path(a.workdir)
    job = train_job(load_workflow_config(workdir, a.config or []), a.model)
    missing = job.missing_inputs(workdir)
    if missing:
        configfile = f" --configfile {' '.join(a.config)}" if a.config else ""
        raise DeepseaError(
            f"train --model {a.model}: {', '.join(missing)} not made yet; make them first: "
            f"snakemake --cores N{configfile} -- {' '.join(missing)}"
        )
    log.info("the workflow's job for %s: %s", a.model, job.command())
    paths = {key: str(workdir / path) for key, path in job.inputs.items()}
    out = Path(a.out) if a.out else workdir / job.out
    log_csv = a.log_csv or out.with_name("train_log.csv")
    device = a.device or job.device
    pseudo = PseudoLabelInputs(paths["test"], paths["shards"], paths["targets"]) if "test" in paths else None
    _claim_gpu(device)
    train(
        load_model_settings(job.settings),
        paths["data"],
        paths["split"],
        out,
        log_csv,
        device,
        a.threads or job.threads,
        paths.get("preinit"),
        pseudo,
    )
    if not a.out:  # the workflow's own model file: Snakemake compares it with what was made from it
        log.info("%s: if its bytes changed, snakemake's next run redoes what depends on it", job.out)


def _cmd_augment_grid(a: argparse.Namespace) -> None:
    from deepsea.augment_grid import augmentation_grid
    from deepsea.settings import load_model_settings

    augmentation_grid(a.data, load_model_settings(a.settings), a.out, a.n_images, a.n_samples, a.seed)


def _cmd_predict(a: argparse.Namespace) -> None:
    from deepsea.predict import predict
    from deepsea.settings import from_dict, load_json_argument
    from deepsea.tta import TTASettings

    tta = from_dict(TTASettings, load_json_argument(a.tta, "--tta"), "tta") if a.tta else None
    _claim_gpu(a.device)
    predict(a.model, a.data, a.subset, a.out, a.out_centre, a.split, tta, a.batch_size, a.device, a.threads, a.workers)


def _cmd_average(a: argparse.Namespace) -> None:
    from deepsea.io import average_predictions, load_predictions, read_json, save_predictions

    weights = a.weights
    if a.weights_from:
        if weights:
            raise DeepseaError("average: give --weights or --weights-from, not both.")
        weights = read_json(a.weights_from).get("weights")
        if not isinstance(weights, list):
            raise DeepseaError(f"average: {a.weights_from} has no 'weights' list; rerun `deepsea fit-final-weight`.")
    probs, ids, class_names = average_predictions(a.pred, weights, a.mean)
    save_predictions(a.out, probs, ids, class_names, averaged=list(a.pred), weights=weights, mean=a.mean)
    load_predictions(a.out)  # refuse to leave behind anything a consumer would refuse
    log.info("averaged %d prediction files (%s mean) -> %s", len(a.pred), a.mean, a.out)


def _cmd_fit_final_weight(a: argparse.Namespace) -> None:
    from deepsea.final_blend import run_fit_final_weight

    run_fit_final_weight(a.ensemble_valid, a.ensemble_weights, a.pseudo_labels, a.data, a.out, a.folds, a.seed)


def _cmd_shard_test(a: argparse.Namespace) -> None:
    from deepsea.imageset import ImageSet
    from deepsea.io import write_json
    from deepsea.pseudo_labels import shard_test_set

    shards = shard_test_set(ImageSet.load(a.data).ids, a.shards, a.seed)
    write_json(a.out, {"seed": a.seed, "shards": shards})
    sizes = [len(shard) for shard in shards]
    log.info("%d test images in %d shards of %s -> %s", sum(sizes), a.shards, sizes, a.out)


def _cmd_combine_shards(a: argparse.Namespace) -> None:
    from deepsea.io import save_predictions
    from deepsea.pseudo_labels import combine_shards, read_shards

    probs, ids, class_names = combine_shards(a.pred, read_shards(a.shards), a.mode)
    save_predictions(a.out, probs, ids, class_names, combined=list(a.pred), mode=a.mode)
    log.info("combined %d shard models' predictions (%s) -> %s", len(a.pred), a.mode, a.out)


def _cmd_fuse(a: argparse.Namespace) -> None:
    import torch

    from deepsea.fusion import FusionSettings, fuse
    from deepsea.settings import load_json_argument

    settings = (
        FusionSettings.from_json(load_json_argument(a.settings, "--settings")) if a.settings else FusionSettings()
    )
    torch.set_num_threads(max(1, a.threads))  # float sums depend on it: the logged command reproduces the bits
    fuse(
        a.pred_train,
        a.pred_valid,
        a.pred_test,
        a.features_train,
        a.features_test,
        a.data,
        a.split,
        settings,
        a.out_valid,
        a.out_test,
        a.report,
    )


def _cmd_ensemble(a: argparse.Namespace) -> None:
    from deepsea.ensemble import run_ensemble

    run_ensemble(a.names, a.valid, a.test, a.data, a.out_dir, a.folds, a.seed, a.mean)


def _cmd_evaluate(a: argparse.Namespace) -> None:
    from deepsea.evaluate import evaluate

    evaluate(a.pred, a.data, a.split, a.out, a.centre, a.unfused)


def _cmd_submit(a: argparse.Namespace) -> None:
    from deepsea.submission import submit

    submit(a.pred, a.test_data, a.out, a.class_order)


def _cmd_score(a: argparse.Namespace) -> None:
    from deepsea.io import write_json
    from deepsea.submission import score_predictions, score_submission

    if bool(a.submission) == bool(a.pred):
        raise DeepseaError("score: give either --submission (a CSV) or --pred (a predictions .npy).")
    result = score_submission(a.submission, a.labels) if a.submission else score_predictions(a.pred, a.labels)
    print(json.dumps(result, indent=2))
    if a.out:
        write_json(a.out, result)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepsea", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("make-demo-data", _cmd_make_demo_data, "generate the synthetic plankton-like demo data set")
    p.add_argument("--out", default="data/demo", help="output folder (default: data/demo)")
    p.add_argument("--n-train", type=int, default=1000, help="training images (default 1000)")
    p.add_argument("--n-test", type=int, default=500, help="test images (default 500)")
    p.add_argument("--classes", type=int, default=10, help="number of classes (default 10; 121 as NDSB)")
    p.add_argument("--imbalance", type=float, default=0.35, help="geometric decay of class sizes (default 0.35)")
    p.add_argument("--seed", type=int, default=0)
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

    p = add("split", _cmd_split, "stratified train/validation split of the packed training data")
    p.add_argument("--data", required=True, help="packed training data (.npz)")
    p.add_argument("--valid-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--purpose", choices=["valid", "bag"], default="valid")
    p.add_argument("--out", required=True, help="split JSON to write")

    p = add("extract-features", _cmd_extract_features, "handcrafted features of the raw images of a packed set")
    p.add_argument("--data", required=True, help="packed data (.npz)")
    p.add_argument(
        "--groups",
        nargs="+",
        default=["size", "moments", "haralick"],
        help="size moments haralick hu zernike lbp pftas",
    )
    p.add_argument("--haralick-levels", type=int, default=32, help="grey levels for Haralick (2-256)")
    p.add_argument("--out", required=True, help="features .npz to write (ids, names, groups, values)")
    p.add_argument("--report", required=True, help="JSON report (which image/group values were filled)")
    p.add_argument("--workers", type=int, default=1, help="processes")

    p = add(
        "train",
        _cmd_train,
        "train one model run: from explicit --settings and paths (what the workflow's rule passes), or a config's "
        "model by name (--config FILE --model NAME, as its Snakemake job would)",
    )
    p.add_argument(
        "--config",
        nargs="+",
        action="extend",
        metavar="FILE",
        help="config file(s) merged over the workflow's config.yaml, as snakemake --configfile (with --model)",
    )
    p.add_argument("--model", help="with --config: the model run to train (an entry, <entry>_bag<seed>, <pl>_shard<k>)")
    p.add_argument("--workdir", default=".", help="with --config: the workflow folder (Snakefile, config.yaml)")
    p.add_argument("--settings", help="the model's settings as JSON, or a JSON file")
    p.add_argument("--data", help="packed training data (.npz)")
    p.add_argument("--split", help="split JSON the model trains on")
    p.add_argument("--out", help="model file to write (model.pt; with --config: results/models/<model>/model.pt)")
    p.add_argument("--log-csv", help="training log CSV to write (with --config: train_log.csv beside --out)")
    p.add_argument("--preinit", help="trained model whose matching convolution layers initialise this one")
    p.add_argument("--test-data", help="pseudo-label model: packed test images (.npz)")
    p.add_argument("--shards", help="pseudo-label model: the test shards JSON (deepsea shard-test)")
    p.add_argument("--pseudo-labels", help="pseudo-label model: the ensemble's test predictions (soft targets)")
    p.add_argument("--device", help="auto, cpu or cuda[:N] (default: auto; with --config: the config's device)")
    p.add_argument("--threads", type=int, help="torch threads (default 1; with --config: threads.train)")

    p = add("augment-grid", _cmd_augment_grid, "PNG grid of augmented training samples of one model entry")
    p.add_argument("--settings", required=True, help="the model's settings as JSON, or a JSON file")
    p.add_argument("--data", required=True, help="packed training data (.npz)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--n-images", type=int, default=8)
    p.add_argument("--n-samples", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)

    p = add("predict", _cmd_predict, "class probabilities of a trained model for one subset")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="packed data (.npz): training data for train/valid, test data")
    p.add_argument("--subset", required=True, choices=["train", "valid", "test"])
    p.add_argument("--split", help="split JSON (needed for train/valid)")
    p.add_argument("--out", required=True, help="predictions .npy to write (meta JSON beside it)")
    p.add_argument("--out-centre", help="also write the centre view's predictions here")
    p.add_argument("--tta", help="test-time augmentation settings as JSON, or a JSON file (default: centre view)")
    p.add_argument("--batch-size", type=int, default=128, help="views per forward pass")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=0, help="processes warping views while the model predicts")

    p = add("average", _cmd_average, "average prediction files (a bag's members) into one")
    p.add_argument("--pred", required=True, nargs="+", help="predictions .npy over the same ids")
    p.add_argument("--weights", type=float, nargs="+", help="one per --pred (default: equal)")
    p.add_argument("--weights-from", help="a JSON file with a 'weights' list (fit-final-weight's)")
    p.add_argument("--mean", choices=["arithmetic", "geometric", "logit"], default="arithmetic")
    p.add_argument("--out", required=True, help="predictions .npy to write")

    p = add("fit-final-weight", _cmd_fit_final_weight, "fit the pseudo-label models' weight in the final blend")
    p.add_argument("--ensemble-valid", required=True, nargs="+", help="the ensembled models' validation predictions")
    p.add_argument("--ensemble-weights", required=True, help="the ensemble's weights.json (for its blend's mean)")
    p.add_argument("--pseudo-labels", required=True, nargs="+", help="each pseudo-label entry's validation prediction")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the labels")
    p.add_argument("--folds", type=int, default=5, help="the ensemble's folds (its out-of-fold blend)")
    p.add_argument("--seed", type=int, default=0, help="the ensemble's fold seed")
    p.add_argument("--out", required=True, help="JSON to write: the weight, the blend weights, the losses compared")

    p = add("shard-test", _cmd_shard_test, "shuffle the test ids into shards for pseudo-label models")
    p.add_argument("--data", required=True, help="packed test data (.npz)")
    p.add_argument("--shards", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="shards JSON to write")

    p = add("combine-shards", _cmd_combine_shards, "one prediction from the pseudo-label shard models' predictions")
    p.add_argument("--pred", required=True, nargs="+", help="predictions of the shard models, shard 0 first")
    p.add_argument("--shards", required=True, help="the test shards JSON")
    p.add_argument("--mode", choices=["mean", "held_out"], default="mean")
    p.add_argument("--out", required=True, help="predictions .npy to write")

    p = add("evaluate", _cmd_evaluate, "validation log loss and top-1..5 accuracy of a prediction file")
    p.add_argument("--pred", required=True, help="validation predictions .npy")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the labels")
    p.add_argument("--split", required=True)
    p.add_argument("--centre", help="centre-view predictions of the same images, to report the TTA gain")
    p.add_argument("--unfused", help="the convnet's predictions before feature fusion, to report the fusion gain")
    p.add_argument("--out", required=True, help="evaluation JSON to write")

    p = add("fuse", _cmd_fuse, "late fusion of handcrafted features with one convnet's predictions")
    p.add_argument("--pred-train", required=True, help="the convnet's predictions for the training split")
    p.add_argument("--pred-valid", required=True, help="... for the validation split")
    p.add_argument("--pred-test", required=True, help="... for the test set (a bag's average for bagged models)")
    p.add_argument("--features-train", required=True, help="features of the packed training data")
    p.add_argument("--features-test", required=True, help="features of the packed test data")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the labels")
    p.add_argument("--split", required=True, help="the split the convnet trained on")
    p.add_argument("--settings", help="fusion settings as JSON, or a JSON file (default: the original's)")
    p.add_argument("--out-valid", required=True)
    p.add_argument("--out-test", required=True)
    p.add_argument("--report", required=True, help="JSON report: valid log loss per group, unfused and fused")
    p.add_argument("--threads", type=int, default=1)

    p = add("ensemble", _cmd_ensemble, "simplex weights over models' predictions fitted on validation, with a CV table")
    p.add_argument("--names", required=True, nargs="+", help="model names, in the order of --valid and --test")
    p.add_argument("--valid", required=True, nargs="+", help="validation predictions (standard split)")
    p.add_argument("--test", required=True, nargs="+", help="test predictions")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the labels")
    p.add_argument("--folds", type=int, default=5, help="folds of the validation set for model selection")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--mean",
        default="auto",
        choices=["auto", "arithmetic", "geometric"],
        help="weighted arithmetic (the original) or geometric blend; auto: the lower cross-validated loss",
    )
    p.add_argument("--out-dir", required=True, help="writes weights.json, cv.csv, valid.npy, test.npy")

    p = add("submit", _cmd_submit, "average test predictions into a validated, gzipped submission CSV")
    p.add_argument("--pred", required=True, nargs="+", help="test predictions .npy (averaged)")
    p.add_argument("--test-data", required=True, help="packed test data (.npz), for the ids")
    p.add_argument("--class-order", default="sorted", help="'sorted' or a file with one class name per line")
    p.add_argument("--out", required=True, help="submission .csv.gz to write")

    p = add("score", _cmd_score, "score a submission against known test labels (image,class CSV)")
    p.add_argument("--submission", help="a submission CSV (.csv or .csv.gz)")
    p.add_argument("--pred", help="or a test predictions .npy")
    p.add_argument("--labels", required=True, help="CSV with columns image,class")
    p.add_argument("--out", help="also write the scores as JSON")

    add_report_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    log.info("$ deepsea %s", shlex.join(argv))
    try:
        args.func(args)
    except DeepseaError as err:
        print(f"deepsea {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
