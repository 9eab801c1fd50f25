# deepsea: the Deep Sea NDSB solution as one Snakemake DAG. Run: snakemake --cores N final_submission
from snakemake.utils import min_version, validate

from deepsea.config_layers import replace_named_sections

min_version("9.0")


configfile: "config.yaml"


# A --configfile with its own `models:` (or pseudo_labels.models) replaces the demo's entries instead of merging
# into them (deepsea/config_layers.py says why).
replace_named_sections(config, workflow.overwrite_configfiles)


validate(config, "workflow/schemas/config.schema.yaml")


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
include: "workflow/rules/submission.smk"
include: "workflow/rules/report.smk"


onsuccess:
    log_run_summary()


rule final_submission:
    default_target: True
    input:
        SUBMISSION,
        expand(
            "results/eval/{run}.json", run=submission_runs() + list(PSEUDO_LABEL_RUNS)
        ),
        expand("results/eval/fused/{model}.json", model=config["fusion"]["models"]),
        ["results/ensemble/weights.json"] if config["ensemble"]["models"] else [],
        report_figures(),


rule all:
    input:
        rules.final_submission.input,
        expand("results/eval/{run}.json", run=RUNS),
        expand("results/features/{subset}.npz", subset=["train", "test"]),
        expand("results/plots/augmentation/{model}.png", model=config["models"]),
