"""`deepsea` commands of the evaluation and the results report: a model's validation scores, the report's figures,
the model table, the ablation table and the top-5 classes per test image."""

from __future__ import annotations

import argparse
import logging

from deepsea.cli.common import AddCommand, add_orientation_options, orientation_of

log = logging.getLogger("deepsea")


def _cmd_plot_data(a: argparse.Namespace) -> None:
    from deepsea.data.imageset import ImageSet
    from deepsea.report.plots import plot_class_counts, plot_image_sizes, sample_grid

    train, test = ImageSet.load(a.train), ImageSet.load(a.test)
    given = a.orientation or a.mirror or a.pack_report
    plot_class_counts(train, a.out_counts, note=orientation_of(a).describe() if given else "")
    plot_image_sizes(train, test, a.out_sizes)
    sample_grid(train, a.out_samples, a.per_class)


def _cmd_plot_views(a: argparse.Namespace) -> None:
    from deepsea.report.plots import plot_tta_views

    plot_tta_views(a.meta, a.out)


def _cmd_plot_training(a: argparse.Namespace) -> None:
    from deepsea.report.plots import plot_learning_curve

    plot_learning_curve(a.log_csv, a.name, a.out)


def _cmd_model_table(a: argparse.Namespace) -> None:
    from deepsea.errors import DeepseaError
    from deepsea.report.plots import model_table, plot_table

    if len(a.eval) != len(a.names):
        raise DeepseaError(f"model-table: {len(a.eval)} --eval files for {len(a.names)} --names.")
    model_table(a.eval, a.names, a.out_csv)
    plot_table(a.out_csv, "validation scores per model (TTA vs centre view; fused vs unfused)", a.out_png)


def _cmd_plot_final(a: argparse.Namespace) -> None:
    from deepsea.report.evaluate import validation_predictions
    from deepsea.report.plots import plot_confusion

    labels, probs, class_names = validation_predictions(a.pred, a.data, a.split)
    plot_confusion(probs, labels, class_names, a.title, a.out)


def _cmd_plot_calibration(a: argparse.Namespace) -> None:
    from deepsea.report import reliability as rel
    from deepsea.report.plots import plot_reliability, plot_table

    fitted, used, adopted = rel.read_calibration(a.calibration)
    valid, class_names = rel.load_source(a.source_valid, data=a.data)
    test = rel.load_source(a.source_test, test_labels=a.test_labels)[0] if a.test_labels else None
    panels = [("validation", valid.probs, rel.tempered(valid, fitted).probs, valid.labels)]
    if test is not None:
        panels.append(("test (known labels)", test.probs, rel.tempered(test, fitted).probs, test.labels))
    state = "used" if adopted else ("none" if not a.calibration else "fitted, not adopted")
    plot_reliability(panels, f"temperature {fitted:.2f} ({state})", a.out_png)
    # the thresholds classify would apply: fitted on the calibrated validation prediction, as the bundle holds it
    valid_used, test_used = rel.tempered(valid, used), rel.tempered(test, used) if test is not None else None
    precision = a.precision if a.precision is not None else rel.DEFAULT_PRECISION
    rows = rel.threshold_rows(class_names, valid_used, test_used, precision)
    rel.write_rows(rows, a.out_thresholds)
    setting = "classify.precision" if a.precision is not None else "classify.precision is null; shown"
    plot_table(a.out_thresholds, f"unclassified thresholds at precision {precision:g} ({setting})",
               a.out_thresholds_png)  # fmt: skip


def _cmd_config_docs(a: argparse.Namespace) -> None:
    from deepsea.dag.config_docs import write_config_reference

    write_config_reference(a.schema, a.out)
    log.info("configuration reference -> %s", a.out)


def _cmd_rule_docs(a: argparse.Namespace) -> None:
    from deepsea.dag.rule_table import write_rule_reference

    write_rule_reference(a.rules, a.out)
    log.info("rules and their commands -> %s", a.out)


def _cmd_plot_rulegraph(a: argparse.Namespace) -> None:
    from deepsea.report.rulegraph import plot_rulegraph

    with open(a.dot) as handle:
        plot_rulegraph(handle.read(), a.out)
    log.info("rule graph -> %s", a.out)


def _cmd_plot_ensemble(a: argparse.Namespace) -> None:
    from deepsea.report.plots import plot_ensemble

    plot_ensemble(a.weights, a.cv, a.out)


def _cmd_ablation(a: argparse.Namespace) -> None:
    from deepsea.errors import DeepseaError
    from deepsea.report.ablation import ModelPredictions, ablation_table
    from deepsea.report.plots import plot_table

    columns = [a.centre_valid, a.centre_test, a.tta_valid, a.tta_test, a.fused_valid, a.fused_test]
    if any(len(c) != len(a.names) for c in columns):
        raise DeepseaError("ablation: give one file per --names entry to every --centre/--tta/--fused option.")
    models = [ModelPredictions(*row) for row in zip(a.names, *columns, strict=True)]
    rows = ablation_table(
        models,
        a.data,
        a.split,
        a.out,
        ensemble=tuple(a.ensemble) if a.ensemble else None,
        final=tuple(a.final) if a.final else None,
        calibrated=tuple(a.calibrated) if a.calibrated else None,
        test_labels=a.test_labels or None,
    )
    title = "ablation: what each stage bought" + (" (test: known labels)" if rows[0]["test_log_loss"] != "" else "")
    plot_table(a.out, title, a.out_png)


def _cmd_top5(a: argparse.Namespace) -> None:
    from deepsea.blending.submission import write_top_k

    write_top_k(a.submission, a.out, a.k)


def _cmd_evaluate(a: argparse.Namespace) -> None:
    from deepsea.report.evaluate import evaluate

    evaluate(
        a.pred,
        a.data,
        a.split,
        a.out,
        centre_path=a.centre,
        tta_path=a.tta,
        unfused_path=a.unfused,
        train_logs=a.train_log or (),
    )


def _add_evaluate(add: AddCommand) -> None:
    p = add("evaluate", _cmd_evaluate, "validation log loss and top-1..5 accuracy of a prediction file")
    p.add_argument("--pred", required=True, help="validation predictions .npy (what moves on)")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the labels")
    p.add_argument("--split", required=True)
    p.add_argument("--tta", help="the views' mean of the same images (--pred chose between it and --centre)")
    p.add_argument("--centre", help="centre-view predictions of the same images, to report the TTA gain")
    p.add_argument("--unfused", help="the convnet's predictions before feature fusion, to report the fusion gain")
    p.add_argument("--train-log", nargs="+", help="the model's training log (a k-fold entry's: its fold models')")
    p.add_argument("--out", required=True, help="evaluation JSON to write")


def _add_plot_calibration(add: AddCommand) -> None:
    p = add("plot-calibration", _cmd_plot_calibration, "reliability diagrams and the classify thresholds' scores")
    p.add_argument("--source-valid", required=True, nargs="+", help="the submission source's validation prediction(s)")
    p.add_argument("--source-test", required=True, nargs="+", help="its test prediction(s)")
    p.add_argument("--calibration", default="", help="fit-calibration's JSON (none: uncalibrated)")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the validation labels")
    p.add_argument("--test-labels", default="", help="true test labels (image,class CSV), when known")
    p.add_argument("--precision", type=_precision, default=None, help="classify.precision ('none': 0.9 is shown)")
    p.add_argument("--out-png", required=True, help="the reliability diagrams")
    p.add_argument("--out-thresholds", required=True, help="CSV: per-class thresholds, precision, recall")
    p.add_argument("--out-thresholds-png", required=True, help="the thresholds table as a figure")


def _add_config_docs(add: AddCommand) -> None:
    p = add(
        "config-docs", _cmd_config_docs, "write the configuration reference (docs/configuration.md) from the schema"
    )
    p.add_argument("--schema", default="workflow/schemas/config.schema.yaml", help="the config schema (YAML)")
    p.add_argument("--out", default="docs/configuration.md", help="Markdown page to write")

    p = add("rule-docs", _cmd_rule_docs, "write the table of rules and the commands they run (docs/rules.md)")
    p.add_argument("--rules", default="workflow/rules", help="the folder of rule files (*.smk)")
    p.add_argument("--out", default="docs/rules.md", help="Markdown page to write")

    p = add("plot-rulegraph", _cmd_plot_rulegraph, "draw the rules of `snakemake --dag` output as a PNG (no Graphviz)")
    p.add_argument("--dot", required=True, help="the DOT text snakemake --dag (or --rulegraph) printed")
    p.add_argument("--out", required=True, help="PNG to write")


def _precision(text: str) -> float | None:
    """A target precision in (0, 1], or none."""
    if text.lower() in ("none", "null", ""):
        return None
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"precision must be in (0, 1], not {text}")
    return value


def add_commands(add: AddCommand) -> None:
    _add_evaluate(add)
    _add_plot_calibration(add)
    _add_config_docs(add)

    p = add("plot-data", _cmd_plot_data, "report figures of the data set: class counts, image sizes, samples")
    p.add_argument("--train", required=True, help="packed training data (.npz)")
    p.add_argument("--test", required=True, help="packed test data (.npz)")
    p.add_argument("--out-counts", required=True)
    p.add_argument("--out-sizes", required=True)
    p.add_argument("--out-samples", required=True)
    p.add_argument("--per-class", type=int, default=6, help="sample images per class")
    add_orientation_options(p)  # the class counts figure states the run's orientation decision

    p = add("plot-views", _cmd_plot_views, "scatter of the test-time views saved with a prediction")
    p.add_argument("--meta", required=True, help="a prediction's .meta.json")
    p.add_argument("--out", required=True)

    p = add("plot-training", _cmd_plot_training, "learning curves of one model from its training log")
    p.add_argument("--log-csv", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)

    p = add("model-table", _cmd_model_table, "per-model validation table (CSV and figure) from evaluations")
    p.add_argument("--eval", required=True, nargs="+", help="evaluation JSONs")
    p.add_argument("--names", required=True, nargs="+", help="a row name per evaluation")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-png", required=True)

    p = add("plot-final", _cmd_plot_final, "confusion matrix and per-class accuracy of validation predictions")
    p.add_argument("--pred", required=True, help="validation predictions (.npy)")
    p.add_argument("--data", required=True, help="packed training data (.npz), for the labels")
    p.add_argument("--split", required=True, help="the standard split")
    p.add_argument("--title", default="final model, validation images")
    p.add_argument("--out", required=True)

    p = add("plot-ensemble", _cmd_plot_ensemble, "ensemble weights and the CV model-selection curve")
    p.add_argument("--weights", required=True, help="weights.json of `deepsea ensemble`")
    p.add_argument("--cv", required=True, help="cv.csv of `deepsea ensemble`")
    p.add_argument("--out", required=True)

    p = add("ablation", _cmd_ablation, "ablation table: centre view -> TTA -> fusion -> blends -> calibration")
    p.add_argument("--names", required=True, nargs="+", help="the ensembled models")
    for option in ("centre-valid", "centre-test", "tta-valid", "tta-test", "fused-valid", "fused-test"):
        p.add_argument(f"--{option}", required=True, nargs="+", help="one prediction file per --names entry")
    p.add_argument("--ensemble", nargs=2, metavar=("VALID", "TEST"), help="the weighted ensemble's predictions")
    p.add_argument("--final", nargs=2, metavar=("VALID", "TEST"), help="the final blend's predictions")
    p.add_argument("--calibrated", nargs=2, metavar=("VALID", "TEST"), help="the calibrated source's predictions")
    p.add_argument("--test-labels", default="", help="true test labels (image,class CSV), when known")
    p.add_argument("--data", required=True, help="packed training data (.npz)")
    p.add_argument("--split", required=True, help="the standard split")
    p.add_argument("--out", required=True, help="ablation CSV")
    p.add_argument("--out-png", required=True, help="the table as a figure")

    p = add("top5", _cmd_top5, "the k most likely classes per test image, from the submission")
    p.add_argument("--submission", required=True)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--out", required=True, help="CSV: image, class_1, prob_1, ..., class_k, prob_k")
