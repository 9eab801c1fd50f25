"""`deepsea` commands that turn predictions into one: bag averages, shard models, feature fusion, the weighted
ensemble, the final blend weight, the submission and its score."""

from __future__ import annotations

import argparse
import json
import logging

from deepsea.cli.common import AddCommand, add_prediction_out, prediction_out
from deepsea.errors import DeepseaError

log = logging.getLogger("deepsea")


def _cmd_average(a: argparse.Namespace) -> None:
    from deepsea.io import read_json
    from deepsea.predictions import Predictions, average, common_images

    weights = a.weights
    if a.weights_from:
        if weights:
            raise DeepseaError("average: give --weights or --weights-from, not both.")
        weights = read_json(a.weights_from).get("weights")
        if not isinstance(weights, list):
            raise DeepseaError(f"average: {a.weights_from} has no 'weights' list; rerun `deepsea fit-final-weight`.")
    ids = common_images(a.pred) if a.common_ids else None
    averaged = average(a.pred, weights, a.mean, ids)
    averaged.meta = {"averaged": list(a.pred), "weights": weights, "mean": a.mean}
    averaged.save(prediction_out(a.out))
    Predictions.load(a.out[0])  # refuse to leave behind anything a consumer would refuse
    log.info("averaged %d prediction files (%s mean) -> %s", len(a.pred), a.mean, a.out[0])


def _cmd_assemble_folds(a: argparse.Namespace) -> None:
    from deepsea.predictions import average, concatenate

    if len(a.valid) != len(a.test):
        raise DeepseaError("assemble-folds: give one --valid and one --test prediction per fold.")
    out_of_fold = concatenate(a.valid)  # every image from the model of its own fold
    kept: dict[str, object] = {key: out_of_fold.meta[key] for key in ("views", "tta") if key in out_of_fold.meta}
    out_of_fold.meta = {"out_of_fold": list(a.valid), **kept}
    out_of_fold.save(prediction_out(a.out_valid))
    test = average(a.test, mean=a.mean)  # the fold models are the bag
    test.meta = {"averaged": list(a.test), "mean": a.mean, **kept}
    test.save(prediction_out(a.out_test))
    log.info(
        "%d folds: out-of-fold %s (%d images), test %s",
        len(a.valid),
        a.out_valid[0],
        len(out_of_fold.ids),
        a.out_test[0],
    )


def _cmd_choose_views(a: argparse.Namespace) -> None:
    from deepsea.blending.views_choice import choose_views

    chosen = choose_views(
        (a.tta_valid, a.centre_valid), (a.tta, a.centre), a.data, choice=a.choice, min_gain_se=a.min_gain_se
    )
    chosen.save(prediction_out(a.out))


def _cmd_combine_shards(a: argparse.Namespace) -> None:
    from deepsea.blending.combine_shards import combine_shards
    from deepsea.data.shards import read_shards

    combined = combine_shards(a.pred, read_shards(a.shards), a.mode)
    combined.meta = {"combined": list(a.pred), "mode": a.mode}
    combined.save(prediction_out(a.out))
    log.info("combined %d shard models' predictions (%s) -> %s", len(a.pred), a.mode, a.out[0])


def _cmd_fuse(a: argparse.Namespace) -> None:
    import torch

    from deepsea.blending.fusion import FoldFusionFiles, FusionFiles, FusionSettings, fuse, fuse_folds
    from deepsea.records import load_json_argument

    settings = (
        FusionSettings.from_json(load_json_argument(a.settings, "--settings")) if a.settings else FusionSettings()
    )
    torch.set_num_threads(max(1, a.threads))  # float sums depend on it: the logged command reproduces the bits
    if a.folds:  # k-fold scheme: --pred-valid is the out-of-fold prediction of every training image
        if a.pred_train or a.split:
            raise DeepseaError("fuse: --folds fuses out of fold; drop --pred-train and --split.")
        folds = FoldFusionFiles(a.pred_valid, a.pred_test, a.features_train, a.features_test, a.data, tuple(a.folds))
        fuse_folds(folds, settings, a.out_valid, a.out_test, a.report, nets_path=a.out_nets)
        return
    if not (a.pred_train and a.split):
        raise DeepseaError("fuse: give --pred-train and --split (a hold-out split), or --folds (the k-fold scheme).")
    files = FusionFiles(a.pred_train, a.pred_valid, a.pred_test, a.features_train, a.features_test, a.data, a.split)
    fuse(files, settings, a.out_valid, a.out_test, a.report, nets_path=a.out_nets)


def _cmd_ensemble(a: argparse.Namespace) -> None:
    from deepsea.blending.ensemble import run_ensemble

    run_ensemble(
        a.names, a.valid, a.test, a.data, a.out_dir, folds=a.folds, seed=a.seed, mean=a.mean,
        min_gain_se=a.min_gain_se,
    )  # fmt: skip


def _cmd_fit_final_weight(a: argparse.Namespace) -> None:
    from deepsea.blending.final_weight import run_fit_final_weight

    run_fit_final_weight(
        a.ensemble_valid,
        a.ensemble_weights,
        a.pseudo_labels,
        a.data,
        a.out,
        folds=a.folds,
        seed=a.seed,
        min_gain_se=a.min_gain_se,
    )


def _cmd_fit_calibration(a: argparse.Namespace) -> None:
    from deepsea.blending.temperature import run_fit_calibration

    if bool(a.ensemble_valid) != bool(a.ensemble_weights):
        raise DeepseaError("fit-calibration: give --ensemble-valid and --ensemble-weights together, or neither.")
    if a.pseudo_labels and not a.ensemble_weights:
        raise DeepseaError("fit-calibration: --pseudo-labels needs the ensemble they are blended with.")
    ensemble = (a.ensemble_valid, a.ensemble_weights) if a.ensemble_weights else None
    run_fit_calibration(
        a.source_valid, ensemble, a.pseudo_labels or [], a.data, a.out, folds=a.folds, seed=a.seed,
        min_gain_se=a.min_gain_se,
    )  # fmt: skip


def _cmd_calibrate(a: argparse.Namespace) -> None:
    from deepsea.blending.temperature import run_calibrate

    run_calibrate(a.pred, a.calibration, prediction_out(a.out))


def _cmd_submit(a: argparse.Namespace) -> None:
    from deepsea.blending.submission import submit

    submit(a.pred, a.test_data, a.out, a.class_order)


def _cmd_score(a: argparse.Namespace) -> None:
    from deepsea.blending.submission import score_predictions, score_submission
    from deepsea.io import write_json

    if bool(a.submission) == bool(a.pred):
        raise DeepseaError("score: give either --submission (a CSV) or --pred (a predictions .npy).")
    result = score_submission(a.submission, a.labels) if a.submission else score_predictions(a.pred, a.labels)
    print(json.dumps(result, indent=2))
    if a.out:
        write_json(a.out, result)


def _add_min_gain_se(parser: argparse.ArgumentParser) -> None:
    from deepsea.blending.adoption import MIN_GAIN_SE

    parser.add_argument(
        "--min-gain-se",
        type=float,
        default=MIN_GAIN_SE,
        help="use the fitted blend only where it beats the uniform one by this many standard errors (0: always)",
    )


def _add_model_predictions(add: AddCommand) -> None:
    """Commands that make a model's predictions from its runs' raw ones: the views choice, a k-fold entry's."""
    p = add(
        "choose-views",
        _cmd_choose_views,
        "a model's predictions as the TTA mean or its centre view, decided on validation",
    )
    p.add_argument("--tta-valid", required=True, help="the views' mean of the validation (out-of-fold) images")
    p.add_argument("--centre-valid", required=True, help="the centre view of the same images")
    p.add_argument("--tta", required=True, help="the views' mean of the subset to write")
    p.add_argument("--centre", required=True, help="the centre view of the subset to write")
    p.add_argument("--data", required=True, help="packed training data (the validation labels)")
    p.add_argument("--choice", choices=["auto", "views"], default="auto", help="views: always the TTA mean")
    _add_min_gain_se(p)
    add_prediction_out(p)

    p = add("assemble-folds", _cmd_assemble_folds, "a k-fold entry's out-of-fold and averaged test predictions")
    p.add_argument("--valid", required=True, nargs="+", help="each fold model's prediction of its own fold")
    p.add_argument("--test", required=True, nargs="+", help="each fold model's test prediction")
    p.add_argument("--mean", choices=["arithmetic", "geometric", "logit"], default="arithmetic")
    p.add_argument("--out-valid", required=True, nargs="+", metavar="FILE", help="out-of-fold .npy [its .meta.json]")
    p.add_argument("--out-test", required=True, nargs="+", metavar="FILE", help="test .npy [its .meta.json]")


def _add_model_blends(add: AddCommand) -> None:
    p = add("average", _cmd_average, "average prediction files (a bag's members) into one")
    p.add_argument("--pred", required=True, nargs="+", help="predictions .npy over the same ids")
    p.add_argument("--weights", type=float, nargs="+", help="one per --pred (default: equal)")
    p.add_argument("--weights-from", help="a JSON file with a 'weights' list (fit-final-weight's)")
    p.add_argument("--mean", choices=["arithmetic", "geometric", "logit"], default="arithmetic")
    p.add_argument("--common-ids", action="store_true", help="only the images every file predicts")
    add_prediction_out(p)

    p = add("combine-shards", _cmd_combine_shards, "one prediction from the pseudo-label shard models' predictions")
    p.add_argument("--pred", required=True, nargs="+", help="predictions of the shard models, shard 0 first")
    p.add_argument("--shards", required=True, help="the test shards JSON")
    p.add_argument("--mode", choices=["mean", "held_out"], default="mean")
    add_prediction_out(p)

    p = add("fuse", _cmd_fuse, "late fusion of handcrafted features with one convnet's predictions")
    p.add_argument("--pred-train", help="the convnet's predictions for the training split (hold-out scheme)")
    p.add_argument("--pred-valid", required=True, help="... for the validation split (k-fold: out of fold, all images)")
    p.add_argument("--pred-test", required=True, help="... for the test set (a bag's average for bagged models)")
    p.add_argument("--features-train", required=True, help="features of the packed training data")
    p.add_argument("--features-test", required=True, help="features of the packed test data")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the labels")
    p.add_argument("--split", help="the split the convnet trained on (hold-out scheme)")
    p.add_argument("--folds", nargs="+", help="k-fold scheme: every fold's split, fused out of fold (no --split)")
    p.add_argument("--settings", help="fusion settings as JSON, or a JSON file (default: the original's)")
    p.add_argument("--out-valid", required=True)
    p.add_argument("--out-test", required=True)
    p.add_argument("--report", required=True, help="JSON report: valid log loss per group, unfused and fused")
    p.add_argument("--out-nets", help="also write the trained fusion nets here (what a model bundle fuses with)")
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
    _add_min_gain_se(p)


def _add_final_blend(add: AddCommand) -> None:
    p = add("fit-final-weight", _cmd_fit_final_weight, "fit the pseudo-label models' weight in the final blend")
    p.add_argument("--ensemble-valid", required=True, nargs="+", help="the ensembled models' validation predictions")
    p.add_argument("--ensemble-weights", required=True, help="the ensemble's weights.json (for its blend's mean)")
    p.add_argument("--pseudo-labels", required=True, nargs="+", help="each pseudo-label entry's validation prediction")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the labels")
    p.add_argument("--folds", type=int, default=5, help="the ensemble's folds (its out-of-fold blend)")
    p.add_argument("--seed", type=int, default=0, help="the ensemble's fold seed")
    p.add_argument("--out", required=True, help="JSON to write: the weight, the blend weights, the losses compared")
    _add_min_gain_se(p)

    _add_calibration(add)

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


def _add_calibration(add: AddCommand) -> None:
    p = add("fit-calibration", _cmd_fit_calibration, "fit one temperature for the submission's prediction")
    p.add_argument("--source-valid", required=True, nargs="+", help="the source's validation prediction(s)")
    p.add_argument("--ensemble-valid", nargs="+", help="the ensembled models' validation predictions, if ensembled")
    p.add_argument("--ensemble-weights", help="the ensemble's weights.json (its blend's mean and adoption)")
    p.add_argument("--pseudo-labels", nargs="+", help="each pseudo-label entry's validation prediction, if blended")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the labels")
    p.add_argument("--folds", type=int, default=5, help="the ensemble's folds (its out-of-fold blend)")
    p.add_argument("--seed", type=int, default=0, help="the ensemble's fold seed")
    p.add_argument("--out", required=True, help="JSON to write: the temperature and the losses it chose between")
    _add_min_gain_se(p)

    p = add("calibrate", _cmd_calibrate, "apply the fitted temperature to the submission source's prediction")
    p.add_argument("--pred", required=True, nargs="+", help="the source's predictions of one subset (averaged)")
    p.add_argument("--calibration", required=True, help="the JSON written by fit-calibration")
    add_prediction_out(p)


def add_commands(add: AddCommand) -> None:
    _add_model_predictions(add)
    _add_model_blends(add)
    _add_final_blend(add)
