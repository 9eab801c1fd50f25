# deepsea: the Deep Sea NDSB solution as one Snakemake DAG. Run: snakemake --cores N final_submission
from snakemake.utils import min_version, validate

from snakemake.logging import logger

from deepsea.dag import paths
from deepsea.dag.config import replace_named_sections
from deepsea.dag.data_size import apply_data_size

min_version("9.0")


configfile: paths.CONFIG


# A --configfile with its own `models:` (or pseudo_labels.models) replaces the demo's entries instead of merging
# into them (deepsea/dag/config.py says why).
replace_named_sections(config, workflow.overwrite_configfiles)


validate(config, paths.SCHEMA)


# splits.scheme: auto becomes kfold or holdout from the number of training images (deepsea/dag/data_size.py)
for note in apply_data_size(config):
    logger.info(note)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/convnets.smk"
include: "workflow/rules/predictions.smk"
include: "workflow/rules/fusion.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/pseudo_labels.smk"
include: "workflow/rules/calibration.smk"
include: "workflow/rules/submission.smk"
include: "workflow/rules/bundle.smk"
include: "workflow/rules/report.smk"


# what a finished run prints last: the data, each model's validation scores and warnings, the blends
onsuccess:
    for line in plan.closing_summary():
        logger.info(line)


rule final_submission:
    default_target: True
    input:
        plan.final_submission_targets(),


rule all:
    input:
        plan.all_targets(),
