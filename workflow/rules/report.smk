# Stage 12: the results report's figures and tables (`snakemake --report results/report.html final_submission`).
# Every output here is marked report(): a caption in workflow/report/, a category per section of the report.


rule plot_data:
    input:
        train="results/data/train.npz",
        test="results/data/test.npz",
    output:
        counts=report(
            "results/report/data/class_counts.png",
            caption="../report/class_counts.rst",
            category="1. Data",
        ),
        sizes=report(
            "results/report/data/image_sizes.png",
            caption="../report/image_sizes.rst",
            category="1. Data",
        ),
        samples=report(
            "results/report/data/samples.png",
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
        mem_mb=4000,
        runtime=30,
        gpu=0,
    params:
        per_class=config["report"]["samples_per_class"],
    shell:
        "deepsea plot-data --train {input.train} --test {input.test} --out-counts {output.counts} "
        "--out-sizes {output.sizes} --out-samples {output.samples} --per-class {params.per_class} > {log} 2>&1"


rule plot_tta_views:
    input:
        f"results/predictions/{config['submission']['models'][0]}/valid.npy",
    output:
        report(
            "results/report/augmentation/tta_views.png",
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
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    params:
        meta=lambda w, input: str(input[0]).removesuffix(".npy") + ".meta.json",
    shell:
        "deepsea plot-views --meta {params.meta} --out {output} > {log} 2>&1"


rule plot_training:
    input:
        "results/models/{model}/train_log.csv",
    output:
        report(
            "results/report/training/{model}.png",
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
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    shell:
        "deepsea plot-training --log-csv {input} --name {wildcards.model} --out {output} > {log} 2>&1"


rule model_table:
    input:
        runs=expand("results/eval/{run}.json", run=report_runs()),
        fused=expand(
            "results/eval/fused/{model}.json", model=config["fusion"]["models"]
        ),
    output:
        csv=report(
            "results/report/models.csv",
            caption="../report/models.rst",
            category="4. Models",
        ),
        png=report(
            "results/report/models.png",
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
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    params:
        names=report_runs() + [f"{m}_fused" for m in config["fusion"]["models"]],
    shell:
        "deepsea model-table --eval {input.runs} {input.fused} --names {params.names} --out-csv {output.csv} "
        "--out-png {output.png} > {log} 2>&1"


rule plot_final:
    input:
        pred=final_valid_prediction(),
        data="results/data/train.npz",
        split="results/splits/valid.json",
    output:
        report(
            "results/report/final/confusion.png",
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
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    params:
        title=f"{final_valid_prediction()}: validation images",
    shell:
        "deepsea plot-final --pred {input.pred} --data {input.data} --split {input.split} --title {params.title:q} "
        "--out {output} > {log} 2>&1"


rule plot_ensemble:
    input:
        weights="results/ensemble/weights.json",
        cv="results/ensemble/cv.csv",
    output:
        report(
            "results/report/ensemble.png",
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
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    shell:
        "deepsea plot-ensemble --weights {input.weights} --cv {input.cv} --out {output} > {log} 2>&1"


rule ablation:
    input:
        centre_valid=[
            f"results/predictions/{m}/valid.centre.npy" for m in ablation_models()
        ],
        centre_test=[
            f"results/predictions/{m}/test.centre.npy" for m in ablation_models()
        ],
        tta_valid=[f"results/predictions/{m}/valid.npy" for m in ablation_models()],
        tta_test=[f"results/predictions/{m}/test.npy" for m in ablation_models()],
        fused_valid=[valid_prediction(m) for m in ablation_models()],
        fused_test=[test_prediction(m) for m in ablation_models()],
        ensemble=ablation_stage("ensemble"),
        final=ablation_stage("final"),
        labels=test_labels_input(),
        data="results/data/train.npz",
        split="results/splits/valid.json",
    output:
        csv=report(
            "results/report/ablation.csv",
            caption="../report/ablation.rst",
            category="7. Ablation",
        ),
        png=report(
            "results/report/ablation.png",
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
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    params:
        names=ablation_models(),
        stages=lambda w, input: " ".join(
            f"--{stage} {' '.join(getattr(input, stage))}"
            for stage in ("ensemble", "final")
            if getattr(input, stage)
        ),
        labels=lambda w: (
            f"--test-labels {test_labels_path()}" if test_labels_path() else ""
        ),
    shell:
        "deepsea ablation --names {params.names} --centre-valid {input.centre_valid} --centre-test {input.centre_test} "
        "--tta-valid {input.tta_valid} --tta-test {input.tta_test} --fused-valid {input.fused_valid} "
        "--fused-test {input.fused_test} {params.stages} {params.labels} --data {input.data} --split {input.split} "
        "--out {output.csv} --out-png {output.png} > {log} 2>&1"


rule top5:
    input:
        SUBMISSION,
    output:
        report(
            "results/submission/top5.csv",
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
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    shell:
        "deepsea top5 --submission {input} --k 5 --out {output} > {log} 2>&1"
