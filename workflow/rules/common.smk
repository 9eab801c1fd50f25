# Shared input functions: the only Python in the workflow; what the model runs are and the config's cross-key
# checks come from the package (deepsea/runs.py, config_checks.py). Rules stay one `deepsea` command each.
import json
import re
import sys
from pathlib import Path

from snakemake.logging import logger

from deepsea import runs
from deepsea.config_checks import check_config
from deepsea.errors import ConfigError
from deepsea.orientation import turns_images_over
from deepsea.run_summary import blend_summary, data_summary, run_summary

SUBMISSION = "results/submission/submission.csv.gz"
CONDA_CPU = "../../envs/deepsea-cpu.yaml"  # used with --sdm conda; paths are relative to this file
CONDA_GPU = "../../envs/deepsea-cuda.yaml"


def local_gpu_slots():
    """GPUs to hand out one per job (deepsea.gpu_slots): the `--resources gpu=N` limit when Snakemake runs the
    jobs on this machine (the local-gpu profile); 0 inside cluster jobs, where the scheduler assigns the GPU.
    """
    if workflow.remote_exec or not workflow.local_exec:
        return 0
    limit = workflow.global_resources.get("gpu")
    value = getattr(limit, "value", limit)
    return value if isinstance(value, int) and value > 0 else 0


# Jobs run the `deepsea` command. Put the interpreter running Snakemake first on PATH, so that
# `.venv/bin/snakemake ...` works without activating the venv; tell GPU jobs how many GPUs they share.
shell.prefix(
    f'export PATH="{Path(sys.executable).parent}":"$PATH"; export DEEPSEA_GPU_SLOTS={local_gpu_slots()}; '
)


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    subset=r"train|valid|test",
    seed=r"\d+",
    name=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


def shard_runs(name):
    """The shard models of pseudo-label entry `name`, shard 0 first."""
    return runs.shard_runs(config, name)


def name_pattern(names):
    """A wildcard constraint matching exactly `names` (never matching when there are none)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


def model_settings_json(run):
    """A model run's settings, defaults filled by the schema, as the JSON `deepsea train --settings` reads."""
    return runs.settings_json(run, RUNS[run])


def tta_json():
    return json.dumps(config["tta"], sort_keys=True, separators=(",", ":"))


# deepsea/runs.py: every model run of the config and its settings
CONVNET_RUNS, PSEUDO_LABEL_RUNS = runs.all_runs(config)
RUNS = {**CONVNET_RUNS, **PSEUDO_LABEL_RUNS}
check_config(config, CONVNET_RUNS, PSEUDO_LABEL_RUNS)


def bag_members(wildcards):
    """Test predictions of a bagged model: its standard-split member and one per bagging seed."""
    seeds = config["models"][wildcards.model].get("bags", [])
    if not seeds:
        raise ConfigError(
            f"models.{wildcards.model}: no `bags` seeds, so there is no bag to average."
        )
    return [f"results/predictions/{wildcards.model}/test.npy"] + [
        f"results/predictions/{wildcards.model}_bag{seed}/test.npy" for seed in seeds
    ]


def test_prediction(name, fused=True):
    """What the submission takes from a model: its fused test prediction if it is fused, built on its bag's
    averaged test prediction if it is bagged."""
    if fused and name in config["fusion"]["models"]:
        return f"results/fused/{name}/test.npy"
    bagged = config["models"][name].get("bags", [])
    return (
        f"results/predictions/{name}/test_bagged.npy"
        if bagged
        else f"results/predictions/{name}/test.npy"
    )


def valid_prediction(name):
    """What the ensemble fits on for a model: its fused validation prediction if fused (standard split)."""
    if name in config["fusion"]["models"]:
        return f"results/fused/{name}/valid.npy"
    return f"results/predictions/{name}/valid.npy"


def fusion_json():
    settings = {
        key: value for key, value in config["fusion"].items() if key != "models"
    }
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def submission_inputs():
    """The test predictions the submission averages: the final blend's, the ensemble's, or those of
    submission.models."""
    source = config["submission"]["source"]
    if source == "final":
        return ["results/final/test.npy"]
    if source == "ensemble":
        return ["results/ensemble/test.npy"]
    return [test_prediction(name) for name in config["submission"]["models"]]


def final_blend_inputs(wildcards):
    """The weighted ensemble's prediction of a subset and each pseudo-label entry's combined prediction."""
    return [f"results/ensemble/{wildcards.subset}.npy"] + [
        f"results/pseudo_labels/{name}/{wildcards.subset}.npy"
        for name in config["pseudo_labels"]["models"]
    ]


def final_weight_fitted():
    """True when the pseudo-label models' weight in the final blend is fitted on validation (fit_final_weight)."""
    return config["pseudo_labels"]["final_weight"] == "fit"


def final_blend_weights():
    """`deepsea average`'s weights option: the fitted weights' JSON, or (1 - final_weight) for the ensemble and
    final_weight shared equally by the pseudo-label entries."""
    names = config["pseudo_labels"]["models"]
    if not names:
        return ""
    if final_weight_fitted():
        return "--weights-from results/final/blend.json"
    w = config["pseudo_labels"]["final_weight"]
    return "--weights " + " ".join(
        str(x) for x in [1.0 - w] + [w / len(names)] * len(names)
    )


def submission_runs():
    """The model runs behind the submission (bag members included): their evaluations are reported."""
    return [
        run
        for name in config["submission"]["models"]
        for run in [name]
        + [f"{name}_bag{seed}" for seed in config["models"][name].get("bags", [])]
    ]


def split_file(run):
    """The split a model run trains on: the standard validation split or one bagging split."""
    return runs.split_file(RUNS[run])


def train_inputs(wildcards):
    """Packed data, the model's split, the trained model it is pre-initialised from (if any); for pseudo-label
    runs also the test images, shards and soft targets (deepsea/runs.py, shared with `deepsea train --config`).
    """
    return runs.train_inputs(
        RUNS[wildcards.model], wildcards.model in PSEUDO_LABEL_RUNS
    )


def preinit_option(wildcards, input):
    return f"--preinit {input.preinit}" if "preinit" in input.keys() else ""


def in_demo_dir(subset):
    """Whether data.<subset>_dir lies inside the generated demo set (demo.dir)."""
    folder = Path(config["data"][f"{subset}_dir"]).resolve()
    return folder.is_relative_to(Path(config["demo"]["dir"]).resolve())


def data_source(wildcards):
    """What `pack` reads: the demo manifest when the data is the generated demo set, else the folder itself."""
    if in_demo_dir(wildcards.subset):
        return f"{config['demo']['dir']}/manifest.json"
    return config["data"][f"{wildcards.subset}_dir"]


def packed_data(wildcards):
    """Packed images behind a subset: train and valid come from the training data."""
    return (
        "results/data/test.npz"
        if wildcards.subset == "test"
        else "results/data/train.npz"
    )


def test_labels_path():
    """True test labels for the ablation table's test columns ('' when unknown)."""
    setting = config["report"]["test_labels"]
    if setting == "auto":
        # the generated demo set's hidden test labels are known
        demo = in_demo_dir("train") and in_demo_dir("test")
        return f"{config['demo']['dir']}/test_labels.csv" if demo else ""
    return setting


def test_labels_input():
    """The file the ablation waits for: the demo's manifest (written with its labels), or the labels file."""
    path = test_labels_path()
    if not path:
        return []
    return (
        [f"{config['demo']['dir']}/manifest.json"]
        if config["report"]["test_labels"] == "auto"
        else [path]
    )


def report_runs():
    """Model runs whose evaluation and learning curves the final submission reports."""
    return submission_runs() + list(PSEUDO_LABEL_RUNS)


def ablation_models():
    """The models the ablation compares: those ensembled (else those submitted)."""
    return config["ensemble"]["models"] or config["submission"]["models"]


def final_valid_prediction():
    """The last stage's validation prediction: the final blend, else the weighted ensemble, else the first
    submitted model's (check_config makes pseudo-labels imply an ensemble)."""
    if config["pseudo_labels"]["models"]:
        return "results/final/valid.npy"
    if config["ensemble"]["models"]:
        return "results/ensemble/valid.npy"
    return valid_prediction(config["submission"]["models"][0])


def ablation_stage(stage):
    """The (valid, test) predictions of a blending stage ('ensemble' or 'final') when the config runs it."""
    blended = config["ensemble" if stage == "ensemble" else "pseudo_labels"]["models"]
    folder = "ensemble" if stage == "ensemble" else "final"
    return (
        [f"results/{folder}/valid.npy", f"results/{folder}/test.npy"] if blended else []
    )


def report_figures():
    """Every report figure and table of the final submission (inputs of final_submission)."""
    figures = [
        "results/report/data/class_counts.png",
        "results/report/augmentation/tta_views.png",
        "results/report/models.png",
        "results/report/final/confusion.png",
        "results/report/ablation.png",
        "results/submission/top5.csv",
    ]
    figures += expand("results/report/training/{run}.png", run=report_runs())
    figures += expand(
        "results/plots/augmentation/{model}.png", model=config["submission"]["models"]
    )
    if config["ensemble"]["models"]:
        figures.append("results/report/ensemble.png")
    return figures


def log_run_summary():
    """After a successful run: every configured model's validation scores and evaluate's warnings, so that a model
    that did not learn, or that TTA or fusion made worse, shows where the run ends (deepsea.run_summary).
    """
    evaluations = [f"results/eval/{run}.json" for run in RUNS]
    evaluations += [
        f"results/eval/fused/{name}.json" for name in config["fusion"]["models"]
    ]
    reports = [f"results/data/{subset}_report.json" for subset in ("train", "test")]
    turned_by = turns_images_over(RUNS, config["tta"])
    blends = blend_summary("results/ensemble/weights.json", "results/final/blend.json")
    for line in data_summary(reports, turned_by) + run_summary(evaluations) + blends:
        logger.info(line)
