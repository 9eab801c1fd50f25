# the results report's figures and tables (`snakemake --report results/report.html final_submission`).
# Every output here is marked report(): a caption in workflow/report/, a category per section of the report.


rule plot_data:
    input:
        train=paths.TRAIN_DATA,
        test=paths.TEST_DATA,
        pack_report=paths.TRAIN_REPORT,  # the class counts figure states the orientation decision
    output:
        counts=report(
            paths.REPORT_CLASS_COUNTS,
            caption="../report/class_counts.rst",
            category="1. Data",
        ),
        sizes=report(
            paths.REPORT_IMAGE_SIZES,
            caption="../report/image_sizes.rst",
            category="1. Data",
        ),
        samples=report(
            paths.REPORT_SAMPLES,
            caption="../report/samples.rst",
            category="1. Data",
        ),
    log:
        "results/logs/plot_data.log",
    benchmark:
        "results/benchmarks/plot_data.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        runtime=30,
    params:
        per_class=config["report"]["samples_per_class"],
        orientation=config["data"]["orientation"],
        mirror=config["data"]["mirror"],
    shell:
        "deepsea plot-data --train {input.train} --test {input.test} --out-counts {output.counts} "
        "--out-sizes {output.sizes} --out-samples {output.samples} --per-class {params.per_class} "
        "--orientation {params.orientation} --mirror {params.mirror} --pack-report {input.pack_report} > {log} 2>&1"


rule plot_tta_views:
    input:
        meta=paths.meta(plan.tta_views_source()),
    output:
        report(
            paths.REPORT_TTA_VIEWS,
            caption="../report/tta_views.rst",
            category="2. Augmentation",
        ),
    log:
        "results/logs/plot_tta_views.log",
    benchmark:
        "results/benchmarks/plot_tta_views.tsv"
    conda:
        CONDA_CPU
    threads: 1
    shell:
        "deepsea plot-views --meta {input.meta} --out {output} > {log} 2>&1"


rule plot_training:
    input:
        paths.TRAIN_LOG,
    output:
        report(
            paths.REPORT_TRAINING,
            caption="../report/training.rst",
            category="3. Training",
            labels={"model": "{model}"},
        ),
    log:
        "results/logs/plot_training/{model}.log",
    benchmark:
        "results/benchmarks/plot_training/{model}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    shell:
        "deepsea plot-training --log-csv {input} --name {wildcards.model} --out {output} > {log} 2>&1"


rule model_table:
    input:
        runs=expand(paths.EVALUATION, model=plan.report_runs()),
        fused=expand(paths.FUSED_EVALUATION, model=config["fusion"]["models"]),
    output:
        csv=report(
            paths.REPORT_MODELS_CSV,
            caption="../report/models.rst",
            category="4. Models",
        ),
        png=report(
            paths.REPORT_MODELS_PNG,
            caption="../report/models.rst",
            category="4. Models",
        ),
    log:
        "results/logs/model_table.log",
    benchmark:
        "results/benchmarks/model_table.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        names=plan.report_runs() + [f"{m}_fused" for m in config["fusion"]["models"]],
    shell:
        "deepsea model-table --eval {input.runs} {input.fused} --names {params.names} --out-csv {output.csv} "
        "--out-png {output.png} > {log} 2>&1"


rule plot_final:
    input:
        pred=plan.final_valid_prediction(),
        data=paths.TRAIN_DATA,
        split=plan.final_valid_split(),
    output:
        report(
            paths.REPORT_CONFUSION,
            caption="../report/confusion.rst",
            category="5. Final model",
        ),
    log:
        "results/logs/plot_final.log",
    benchmark:
        "results/benchmarks/plot_final.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        title=f"{plan.final_valid_prediction()}: validation images",
    shell:
        "deepsea plot-final --pred {input.pred} --data {input.data} --split {input.split} --title {params.title:q} "
        "--out {output} > {log} 2>&1"


rule plot_calibration:
    input:
        source_valid=plan.source_predictions("valid"),
        source_test=plan.source_predictions("test"),
        calibration=[paths.CALIBRATION] if plan.calibrated() else [],
        data=paths.TRAIN_DATA,
        labels=plan.test_labels_input(),
    output:
        png=report(
            paths.REPORT_RELIABILITY,
            caption="../report/reliability.rst",
            category="5. Final model",
        ),
        csv=report(
            paths.REPORT_THRESHOLDS_CSV,
            caption="../report/thresholds.rst",
            category="5. Final model",
        ),
        thresholds_png=report(
            paths.REPORT_THRESHOLDS_PNG,
            caption="../report/thresholds.rst",
            category="5. Final model",
        ),
    log:
        "results/logs/plot_calibration.log",
    benchmark:
        "results/benchmarks/plot_calibration.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        calibration=lambda w, input: (
            f"--calibration {input.calibration}" if input.calibration else ""
        ),
        labels=lambda w: (
            f"--test-labels {plan.test_labels_path()}"
            if plan.test_labels_path()
            else ""
        ),
        precision=config["classify"]["precision"],
    shell:
        "deepsea plot-calibration --source-valid {input.source_valid} --source-test {input.source_test} "
        "{params.calibration} {params.labels} --data {input.data} --precision {params.precision} "
        "--out-png {output.png} --out-thresholds {output.csv} --out-thresholds-png {output.thresholds_png} "
        "> {log} 2>&1"


rule plot_ensemble:
    input:
        weights=paths.ENSEMBLE_WEIGHTS,
        cv=paths.ENSEMBLE_CV,
    output:
        report(
            paths.REPORT_ENSEMBLE,
            caption="../report/ensemble.rst",
            category="6. Ensemble",
        ),
    log:
        "results/logs/plot_ensemble.log",
    benchmark:
        "results/benchmarks/plot_ensemble.tsv"
    conda:
        CONDA_CPU
    threads: 1
    shell:
        "deepsea plot-ensemble --weights {input.weights} --cv {input.cv} --out {output} > {log} 2>&1"


rule ablation:
    input:
        centre_valid=plan.ablation_predictions(paths.CENTRE_PREDICTION, "valid"),
        centre_test=plan.ablation_predictions(paths.CENTRE_PREDICTION, "test"),
        tta_valid=plan.ablation_predictions(paths.TTA_PREDICTION, "valid"),
        tta_test=plan.ablation_predictions(paths.TTA_PREDICTION, "test"),
        fused_valid=[plan.valid_prediction(m) for m in plan.ablation_models()],
        fused_test=[plan.test_prediction(m) for m in plan.ablation_models()],
        ensemble=plan.ablation_stage("ensemble"),
        final=plan.ablation_stage("final"),
        calibrated=plan.ablation_stage("calibrated"),
        labels=plan.test_labels_input(),
        data=paths.TRAIN_DATA,
        split=plan.ablation_split(),
    output:
        csv=report(
            paths.REPORT_ABLATION_CSV,
            caption="../report/ablation.rst",
            category="7. Ablation",
        ),
        png=report(
            paths.REPORT_ABLATION_PNG,
            caption="../report/ablation.rst",
            category="7. Ablation",
        ),
    log:
        "results/logs/ablation.log",
    benchmark:
        "results/benchmarks/ablation.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        names=plan.ablation_models(),
        stages=lambda w, input: " ".join(
            f"--{stage} {' '.join(getattr(input, stage))}"
            for stage in ("ensemble", "final", "calibrated")
            if getattr(input, stage)
        ),
        labels=lambda w: (
            f"--test-labels {plan.test_labels_path()}"
            if plan.test_labels_path()
            else ""
        ),
    shell:
        "deepsea ablation --names {params.names} --centre-valid {input.centre_valid} --centre-test {input.centre_test} "
        "--tta-valid {input.tta_valid} --tta-test {input.tta_test} --fused-valid {input.fused_valid} "
        "--fused-test {input.fused_test} {params.stages} {params.labels} --data {input.data} --split {input.split} "
        "--out {output.csv} --out-png {output.png} > {log} 2>&1"


rule top5:
    input:
        paths.SUBMISSION,
    output:
        report(
            paths.TOP5,
            caption="../report/top5.rst",
            category="8. Submission",
        ),
    log:
        "results/logs/top5.log",
    benchmark:
        "results/benchmarks/top5.tsv"
    conda:
        CONDA_CPU
    threads: 1
    shell:
        "deepsea top5 --submission {input} --k 5 --out {output} > {log} 2>&1"
