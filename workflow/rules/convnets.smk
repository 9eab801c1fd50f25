# Stage 4: convnet training, once per model run (a GPU rule: `gpu` resource for profiles to place it).
# Pseudo-label models train in pseudo_labels.smk (same outputs, their own rule).


rule train_convnet:
    input:
        unpack(train_inputs),
    output:
        model="results/models/{model}/model.pt",
        log_csv="results/models/{model}/train_log.csv",
    log:
        "results/logs/train_convnet/{model}.log",
    benchmark:
        "results/benchmarks/train_convnet/{model}.tsv"
    wildcard_constraints:
        model=name_pattern(CONVNET_RUNS),
    conda:
        CONDA_GPU
    threads: config["threads"]["train"]
    resources:
        mem_mb=8000,
        runtime=2880,
        gpu=1,
    params:
        settings=lambda w: model_settings_json(w.model),
        device=config["device"],
        preinit=preinit_option,
    shell:
        "deepsea train --settings {params.settings:q} --data {input.data} --split {input.split} "
        "--out {output.model} --log-csv {output.log_csv} --device {params.device} --threads {threads} {params.preinit} "
        "> {log} 2>&1"


rule augmentation_grid:
    input:
        "results/data/train.npz",
    output:
        report(
            "results/plots/augmentation/{model}.png",
            caption="../report/augmentation_grid.rst",
            category="2. Augmentation",
            labels={"model": "{model}"},
        ),
    log:
        "results/logs/augmentation_grid/{model}.log",
    benchmark:
        "results/benchmarks/augmentation_grid/{model}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    params:
        settings=lambda w: model_settings_json(w.model),
    shell:
        "deepsea augment-grid --settings {params.settings:q} --data {input} --out {output} > {log} 2>&1"
