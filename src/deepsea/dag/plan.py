"""What the rules of one config read: the model runs, their settings and the files each rule takes as input.

`workflow/rules/common.smk` builds one `Plan` from the validated config, and the rules call its methods as input
functions and params (Snakemake passes `wildcards`). Everything here is a function of the config and the path
patterns of paths.py: no file is read, so a dry run plans exactly what a real run does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deepsea.dag import paths, runs, summary
from deepsea.dag.bundle_recipe import bundle_recipe, recipe_inputs
from deepsea.dag.checks import check_config, view_settings
from deepsea.errors import ConfigError


def name_pattern(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly `names` (never matching when there are none)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


def preinit_option(wildcards: Any, input: Any) -> str:
    """`deepsea train`'s --preinit option where the run is pre-initialised from another model (a rule param)."""
    return f"--preinit {input.preinit}" if "preinit" in input.keys() else ""


class Plan:
    """The jobs of a validated config (defaults filled in by the schema), as the rules need them."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.convnet_runs, self.pseudo_label_runs = runs.all_runs(config)
        self.runs = {**self.convnet_runs, **self.pseudo_label_runs}
        check_config(config, self.convnet_runs, self.pseudo_label_runs)
        self.kfold = runs.kfold(config)
        # k-fold: an entry is its fold models; its predictions are assembled from theirs (out of fold, test mean)
        self.assembled_entries = list(config["models"]) if self.kfold else []

    # model runs and their settings

    def model_settings_json(self, run: str) -> str:
        """A model run's settings, defaults filled by the schema, as the JSON `deepsea train --settings` reads."""
        return runs.settings_json(run, self.runs[run])

    def shard_runs(self, name: str) -> list[str]:
        """The shard models of pseudo-label entry `name`, shard 0 first."""
        return runs.shard_runs(self.config, name)

    def split_file(self, run: str) -> str:
        """The split a model run trains on (the standard validation split, a bagging split, a fold); for a k-fold
        entry, the split whose validation images are all the training images (its out-of-fold predictions)."""
        if run in self.assembled_entries:
            return paths.OUT_OF_FOLD_SPLIT
        return runs.split_file(self.runs[run])

    def fold_runs(self, name: str) -> list[str]:
        return runs.fold_runs(self.config, name)

    def fold_splits(self) -> list[str]:
        return [paths.fill(paths.FOLD_SPLIT, fold=k) for k in range(self.config["splits"]["folds"])]

    def fold_predictions(self, pattern: str, subset: str) -> Any:
        """Input function: the fold models' predictions of `subset` by a prediction pattern, fold 0 first."""
        return lambda w: [paths.fill(pattern, model=run, subset=subset) for run in self.fold_runs(w.model)]

    def train_logs(self, wildcards: Any) -> list[str]:
        """Input function: a model's training log; a k-fold entry's fold models' logs."""
        name = wildcards.model
        return [
            paths.fill(paths.TRAIN_LOG, model=run) for run in ([name] if name in self.runs else self.fold_runs(name))
        ]

    def entry_settings_json(self, name: str) -> str:
        """A `models` entry's settings (its fold-0 model's under k-fold) for what shows the entry, not one run."""
        return self.model_settings_json(name if name in self.runs else self.fold_runs(name)[0])

    def fused_models(self, scheme: str) -> list[str]:
        """The fused models of `scheme` ('holdout' or 'kfold'): all of fusion.models under the config's own."""
        return list(self.config["fusion"]["models"]) if self.kfold == (scheme == "kfold") else []

    def train_inputs(self, wildcards: Any) -> dict[str, str]:
        """Packed data, the model's split, the trained model it is pre-initialised from (if any); for pseudo-label
        runs also the test images, shards and soft targets (runs.train_inputs, shared with `deepsea train
        --config`)."""
        return runs.train_inputs(self.runs[wildcards.model], wildcards.model in self.pseudo_label_runs)

    def tta_json(self) -> str:
        """`deepsea predict --tta`: the views; `choice` is the choose_views rule's (views_choice.py)."""
        return runs.compact_json(view_settings(self.config["tta"]))

    def fusion_json(self) -> str:
        settings = {key: value for key, value in self.config["fusion"].items() if key != "models"}
        return runs.compact_json(settings)

    # data

    def in_demo_dir(self, subset: str) -> bool:
        """Whether data.<subset>_dir lies inside the generated demo set (demo.dir)."""
        folder = Path(self.config["data"][f"{subset}_dir"]).resolve()
        return folder.is_relative_to(Path(self.config["demo"]["dir"]).resolve())

    def data_source(self, wildcards: Any) -> str:
        """What `pack` reads: the demo manifest when the data is the generated demo set, else the folder itself."""
        if self.in_demo_dir(wildcards.subset):
            return paths.demo_manifest(self.config["demo"]["dir"])
        return self.config["data"][f"{wildcards.subset}_dir"]

    @staticmethod
    def packed_data(wildcards: Any) -> str:
        """Packed images behind a subset: train and valid come from the training data."""
        return paths.TEST_DATA if wildcards.subset == "test" else paths.TRAIN_DATA

    # predictions a later stage takes from a model

    def bag_members(self, wildcards: Any) -> list[str]:
        """Test predictions of a bagged model: its standard-split member and one per bagging seed."""
        seeds = self.config["models"][wildcards.model].get("bags", [])
        if not seeds:
            raise ConfigError(f"models.{wildcards.model}: no `bags` seeds, so there is no bag to average.")
        members = runs.bag_runs(wildcards.model, seeds)
        return [paths.fill(paths.PREDICTION, model=run, subset="test") for run in members]

    def test_prediction(self, name: str, fused: bool = True) -> str:
        """What the submission takes from a model: its fused test prediction if it is fused, built on its bag's
        averaged test prediction if it is bagged."""
        if fused and name in self.config["fusion"]["models"]:
            return paths.fill(paths.FUSED, model=name, subset="test")
        if self.config["models"][name].get("bags", []):
            return paths.fill(paths.BAGGED_TEST, model=name)
        return paths.fill(paths.PREDICTION, model=name, subset="test")

    def valid_prediction(self, name: str) -> str:
        """What the ensemble fits on for a model: its fused validation prediction if fused (standard split)."""
        pattern = paths.FUSED if name in self.config["fusion"]["models"] else paths.PREDICTION
        return paths.fill(pattern, model=name, subset="valid")

    def ensemble_inputs(self, subset: str) -> list[str]:
        """The ensembled models' predictions of `subset` (valid or test), in the order of ensemble.models."""
        prediction = self.valid_prediction if subset == "valid" else self.test_prediction
        return [prediction(name) for name in self.config["ensemble"]["models"]]

    def shard_predictions(self, wildcards: Any) -> list[str]:
        """Every shard model's prediction of a subset, for one pseudo-label entry."""
        return [
            paths.fill(paths.PREDICTION, model=run, subset=wildcards.subset) for run in self.shard_runs(wildcards.name)
        ]

    def pseudo_label_predictions(self, subset: str) -> list[str]:
        return [
            paths.fill(paths.PSEUDO_LABELS, name=name, subset=subset) for name in self.config["pseudo_labels"]["models"]
        ]

    # the final blend and the submission

    def final_blend_inputs(self, wildcards: Any) -> list[str]:
        """The weighted ensemble's prediction of a subset and each pseudo-label entry's combined prediction."""
        return [paths.fill(paths.ENSEMBLE, subset=wildcards.subset), *self.pseudo_label_predictions(wildcards.subset)]

    def final_weight_fitted(self) -> bool:
        """True when the pseudo-label models' weight in the final blend is fitted on validation (fit_final_weight)."""
        return self.config["pseudo_labels"]["final_weight"] == "fit"

    def final_blend_weights(self) -> str:
        """`deepsea average`'s weights option: the fitted weights' JSON, or (1 - final_weight) for the ensemble and
        final_weight shared equally by the pseudo-label entries."""
        names = self.config["pseudo_labels"]["models"]
        if not names:
            return ""
        # k-fold: the pseudo-label models predict fold 0's images only, so the validation blend is over those
        common = " --common-ids" if self.kfold else ""
        if self.final_weight_fitted():
            return f"--weights-from {paths.FINAL_BLEND}{common}"
        return "--weights " + " ".join(str(x) for x in runs.fixed_final_weights(self.config)) + common

    def source_predictions(self, subset: str) -> list[str]:
        """The submission source's predictions of `subset`: the final blend's, the ensemble's, or those of
        submission.models (averaged)."""
        source = self.config["submission"]["source"]
        if source == "final":
            return [paths.fill(paths.FINAL, subset=subset)]
        if source == "ensemble":
            return [paths.fill(paths.ENSEMBLE, subset=subset)]
        prediction = self.valid_prediction if subset == "valid" else self.test_prediction
        return [prediction(name) for name in self.config["submission"]["models"]]

    def calibrated(self) -> bool:
        """True when the submission source's prediction is calibrated (fit_calibration, calibrate)."""
        return runs.calibrated(self.config)

    def calibration_inputs(self) -> dict[str, list[str]]:
        """What the temperature is fitted on: the source's validation prediction and, to rebuild it without the
        ensemble's in-sample weights, the ensembled models' and pseudo-label entries' validation predictions."""
        source = self.config["submission"]["source"]
        inputs = {"source_valid": self.source_predictions("valid"), "data": [paths.TRAIN_DATA]}
        if source != "models":
            inputs |= {"ensemble_valid": self.ensemble_inputs("valid"), "ensemble_weights": [paths.ENSEMBLE_WEIGHTS]}
        if source == "final" and self.config["pseudo_labels"]["models"]:
            inputs["pseudo_labels"] = self.pseudo_label_predictions("valid")
        return inputs

    def submission_inputs(self) -> list[str]:
        """The test predictions the submission averages: the calibrated source's, or the source's as blended."""
        return [paths.fill(paths.CALIBRATED, subset="test")] if self.calibrated() else self.source_predictions("test")

    def submission_runs(self) -> list[str]:
        """The model runs behind the submission (bag members included): their evaluations are reported."""
        models = self.config["models"]
        return [
            run
            for name in self.config["submission"]["models"]
            for run in runs.bag_runs(name, models[name].get("bags", []))
        ]

    # targets and the report

    def report_runs(self) -> list[str]:
        """Model runs whose evaluation and learning curves the final submission reports."""
        return self.submission_runs() + list(self.pseudo_label_runs)

    def trained_report_runs(self) -> list[str]:
        """The report's learning curves: its runs', a k-fold entry's fold models' in its place."""
        return [run for name in self.report_runs() for run in ([name] if name in self.runs else self.fold_runs(name))]

    def final_valid_split(self) -> str:
        """The split of the last stage's validation prediction: under k-fold with pseudo-labels, fold 0 (the
        images the pseudo-label models did not train on), else every training image out of fold."""
        if not self.kfold:
            return paths.VALID_SPLIT
        return self.fold_splits()[0] if self.config["pseudo_labels"]["models"] else paths.OUT_OF_FOLD_SPLIT

    def ablation_split(self) -> str:
        return paths.OUT_OF_FOLD_SPLIT if self.kfold else paths.VALID_SPLIT

    def bundle_recipe(self) -> dict[str, Any]:
        """What the model bundle is made of (bundle_recipe.py)."""
        shards = {name: self.shard_runs(name) for name in self.config["pseudo_labels"]["models"]}
        return bundle_recipe(self.config, shards)

    def bundle_json(self) -> str:
        return runs.compact_json(self.bundle_recipe())

    def bundle_inputs(self) -> list[str]:
        return recipe_inputs(self.bundle_recipe())

    def classify_dir(self) -> str:
        folder = self.config["classify"]["dir"]
        if not folder:
            raise ConfigError(
                "classify: set classify.dir to the folder of images to classify: in your config file "
                "(classify: {dir: /data/new_sample}) or on the command line: snakemake --cores 4 --config "
                "'classify={dir: /data/new_sample}' -- classify"
            )
        return folder

    def final_submission_targets(self) -> list[str]:
        """The submission, the model bundle, every reported evaluation, the ensemble's weights and the report's
        figures."""
        targets = [paths.SUBMISSION, paths.BUNDLE]
        targets += [paths.fill(paths.EVALUATION, model=run) for run in self.report_runs()]
        targets += [paths.fill(paths.FUSED_EVALUATION, model=name) for name in self.config["fusion"]["models"]]
        targets += [paths.ENSEMBLE_WEIGHTS] if self.config["ensemble"]["models"] else []
        return targets + self.report_figures()

    def all_targets(self) -> list[str]:
        """`all`: the final submission, every run's evaluation, both feature sets, every augmentation grid."""
        targets = self.final_submission_targets()
        targets += [paths.fill(paths.EVALUATION, model=run) for run in self.runs]
        targets += [paths.fill(paths.FEATURES, subset=subset) for subset in ("train", "test")]
        return targets + [paths.fill(paths.AUGMENTATION_GRID, model=name) for name in self.config["models"]]

    def test_labels_path(self) -> str:
        """True test labels for the ablation table's test columns ('' when unknown)."""
        setting = self.config["report"]["test_labels"]
        if setting == "auto":  # the generated demo set's hidden test labels are known
            demo = self.in_demo_dir("train") and self.in_demo_dir("test")
            return paths.demo_test_labels(self.config["demo"]["dir"]) if demo else ""
        return setting

    def test_labels_input(self) -> list[str]:
        """The file the ablation waits for: the demo's manifest (written with its labels), or the labels file."""
        path = self.test_labels_path()
        if not path:
            return []
        auto = self.config["report"]["test_labels"] == "auto"
        return [paths.demo_manifest(self.config["demo"]["dir"])] if auto else [path]

    def ablation_models(self) -> list[str]:
        """The models the ablation compares: those ensembled (else those submitted)."""
        return self.config["ensemble"]["models"] or self.config["submission"]["models"]

    def ablation_predictions(self, pattern: str, subset: str) -> list[str]:
        """The ablation models' predictions of `subset` by a prediction pattern (centre view or TTA)."""
        return [paths.fill(pattern, model=name, subset=subset) for name in self.ablation_models()]

    def final_valid_prediction(self) -> str:
        """The last stage's validation prediction: the final blend, else the weighted ensemble, else the first
        submitted model's (check_config makes pseudo-labels imply an ensemble)."""
        if self.config["pseudo_labels"]["models"]:
            return paths.fill(paths.FINAL, subset="valid")
        if self.config["ensemble"]["models"]:
            return paths.fill(paths.ENSEMBLE, subset="valid")
        return self.valid_prediction(self.config["submission"]["models"][0])

    def ablation_stage(self, stage: str) -> list[str]:
        """The (valid, test) predictions of a stage ('ensemble', 'final' or 'calibrated') when the config runs it."""
        if stage == "calibrated":
            return [paths.fill(paths.CALIBRATED, subset=s) for s in ("valid", "test")] if self.calibrated() else []
        blended = self.config["ensemble" if stage == "ensemble" else "pseudo_labels"]["models"]
        pattern = paths.ENSEMBLE if stage == "ensemble" else paths.FINAL
        return [paths.fill(pattern, subset=subset) for subset in ("valid", "test")] if blended else []

    def tta_views_source(self) -> str:
        """The prediction whose saved views the report plots: the first submitted model's validation prediction."""
        return paths.fill(paths.TTA_PREDICTION, model=self.config["submission"]["models"][0], subset="valid")

    def report_figures(self) -> list[str]:
        """Every report figure and table of the final submission (inputs of final_submission)."""
        figures = [
            paths.REPORT_CLASS_COUNTS,
            paths.REPORT_TTA_VIEWS,
            paths.REPORT_MODELS_PNG,
            paths.REPORT_CONFUSION,
            paths.REPORT_ABLATION_PNG,
            paths.REPORT_RELIABILITY,
            paths.TOP5,
        ]
        figures += [paths.fill(paths.REPORT_TRAINING, model=run) for run in self.trained_report_runs()]
        figures += [paths.fill(paths.AUGMENTATION_GRID, model=name) for name in self.config["submission"]["models"]]
        return figures + ([paths.REPORT_ENSEMBLE] if self.config["ensemble"]["models"] else [])

    def closing_summary(self) -> list[str]:
        """What a successful run prints last: the data, every model's validation scores and warnings, the blends
        (summary.py), so that a model that did not learn, or that TTA or fusion made worse, shows where it ends."""
        evaluations = [paths.fill(paths.EVALUATION, model=run) for run in [*self.assembled_entries, *self.runs]]
        evaluations += [paths.fill(paths.FUSED_EVALUATION, model=name) for name in self.config["fusion"]["models"]]
        data = self.config["data"]
        # auto and upright limit the views themselves; only a forced free can turn upright images over
        turned_by = summary.turns_images_over(self.runs, self.config["tta"]) if data["orientation"] == "free" else []
        lines = summary.orientation_summary(data, self.config["models"], paths.TRAIN_REPORT)
        lines += summary.data_summary([paths.TRAIN_REPORT, paths.TEST_REPORT], turned_by)
        lines += summary.input_size_summary(self.config["models"], paths.TRAIN_REPORT)
        lines += summary.run_summary(evaluations)
        lines += summary.blend_summary(paths.ENSEMBLE_WEIGHTS, paths.FINAL_BLEND)
        return lines + summary.bundle_summary(paths.BUNDLE)
