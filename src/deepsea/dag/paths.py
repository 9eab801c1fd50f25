"""Every file the workflow reads or writes, named once.

The rules (workflow/rules/*.smk) take their outputs from here, the input functions (plan.py) fill the same
patterns in, and `deepsea train --config` (jobs.py) finds a model run's inputs with them; renaming an output is a
one-line change here. Patterns hold Snakemake wildcards in braces; `fill` fills them in. A log and a benchmark file
belong to one rule only and stay in it.
"""

from __future__ import annotations

# the workflow folder: the embedded default config and the schema that validates (and completes) every config
CONFIG = "config.yaml"
SCHEMA = "workflow/schemas/config.schema.yaml"

RESULTS = "results"

# data: packed images of a subset (train, test) and what packing found
PACKED = "results/data/{subset}.npz"
PACK_REPORT = "results/data/{subset}_report.json"
TRAIN_DATA = PACKED.format(subset="train")
TEST_DATA = PACKED.format(subset="test")
TRAIN_REPORT = PACK_REPORT.format(subset="train")
TEST_REPORT = PACK_REPORT.format(subset="test")

# splits: the standard validation split, one bagging split per seed, the test shards of pseudo-labelling
VALID_SPLIT = "results/splits/valid.json"
BAG_SPLIT = "results/splits/bag_{seed}.json"
FOLD_SPLIT = "results/splits/fold_{fold}.json"  # k-fold scheme: fold k validates on fold k
OUT_OF_FOLD_SPLIT = "results/splits/out_of_fold.json"  # k-fold scheme: every image is a validation image
TEST_SHARDS = "results/splits/test_shards.json"

# handcrafted features of a packed subset
FEATURES = "results/features/{subset}.npz"
FEATURES_REPORT = "results/features/{subset}_report.json"

# one trained network (a model run) and its training log
MODEL = "results/models/{model}/model.pt"
TRAIN_LOG = "results/models/{model}/train_log.csv"
AUGMENTATION_GRID = "results/plots/augmentation/{model}.png"

# predictions (each with its .meta.json: predictions.meta_path) and their evaluations
TTA_PREDICTION = "results/predictions/{model}/{subset}.tta.npy"  # the mean over the test-time views
CENTRE_PREDICTION = "results/predictions/{model}/{subset}.centre.npy"  # the centre view alone
PREDICTION = "results/predictions/{model}/{subset}.npy"  # the one of the two that moves on (views_choice.py)
BAGGED_TEST = "results/predictions/{model}/test_bagged.npy"
EVALUATION = "results/eval/{model}.json"
FUSED = "results/fused/{model}/{subset}.npy"
FUSION_REPORT = "results/fused/{model}/report.json"
FUSION_NETS = "results/fused/{model}/nets.pt"  # the trained fusion nets, for the model bundle
FUSED_EVALUATION = "results/eval/fused/{model}.json"

# blends: the weighted ensemble, the pseudo-label entries' combined shards, the final blend
ENSEMBLE_WEIGHTS = "results/ensemble/weights.json"
ENSEMBLE_CV = "results/ensemble/cv.csv"
ENSEMBLE = "results/ensemble/{subset}.npy"
PSEUDO_LABEL_TARGETS = ENSEMBLE.format(subset="test")  # the ensemble's test probabilities: soft targets
PSEUDO_LABELS = "results/pseudo_labels/{name}/{subset}.npy"
FINAL_BLEND = "results/final/blend.json"
CALIBRATION = "results/calibration/temperature.json"  # the submission source's temperature (fit_calibration)
CALIBRATED = "results/calibration/{subset}.npy"  # the submission source's prediction, calibrated
BUNDLE = "results/bundle"  # the model bundle (deepsea/deploy/bundle.py): what `classify` needs, nothing else
CLASSIFIED = "results/classified/predictions.csv"  # `snakemake classify`: classify.dir through the bundle
FINAL = "results/final/{subset}.npy"

# what the user takes away
SUBMISSION = "results/submission/submission.csv.gz"
TOP5 = "results/submission/top5.csv"

# the report's figures and tables (snakemake --report)
REPORT_CLASS_COUNTS = "results/report/data/class_counts.png"
REPORT_IMAGE_SIZES = "results/report/data/image_sizes.png"
REPORT_SAMPLES = "results/report/data/samples.png"
REPORT_TTA_VIEWS = "results/report/augmentation/tta_views.png"
REPORT_TRAINING = "results/report/training/{model}.png"
REPORT_MODELS_CSV = "results/report/models.csv"
REPORT_MODELS_PNG = "results/report/models.png"
REPORT_CONFUSION = "results/report/final/confusion.png"
REPORT_ENSEMBLE = "results/report/ensemble.png"
REPORT_ABLATION_CSV = "results/report/ablation.csv"
REPORT_ABLATION_PNG = "results/report/ablation.png"
REPORT_RELIABILITY = "results/report/final/reliability.png"
REPORT_THRESHOLDS_CSV = "results/report/final/thresholds.csv"
REPORT_THRESHOLDS_PNG = "results/report/final/thresholds.png"


class _KeepMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(pattern: str, **wildcards: object) -> str:
    """`pattern` with the given wildcards filled in; the others stay wildcards (`fill(PREDICTION, subset="valid")`
    is "results/predictions/{model}/valid.npy")."""
    return pattern.format_map(_KeepMissing(wildcards))


def meta(prediction: str) -> str:
    """The .meta.json beside a prediction file or pattern (ids, classes, what made it)."""
    return prediction.removesuffix(".npy") + ".meta.json"


def demo_manifest(demo_dir: str) -> str:
    """The generated demo set's manifest: written last, so its presence means the set is complete."""
    return f"{demo_dir}/manifest.json"


def demo_test_labels(demo_dir: str) -> str:
    return f"{demo_dir}/test_labels.csv"


def split_of(split: str) -> str:
    """The split file of a model run's `split` setting: the standard validation split, a bagging split or a fold."""
    kind, _, number = split.partition("_")
    if kind == "fold":
        return FOLD_SPLIT.format(fold=number)
    return VALID_SPLIT if split == "valid" else BAG_SPLIT.format(seed=number)
