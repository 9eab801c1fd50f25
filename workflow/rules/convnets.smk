# convnet training, once per model run (a GPU rule: `gpu` resource for profiles to place it).
# Pseudo-label models train in pseudo_labels.smk (same outputs, their own rule).


rule train_convnet:
    input:
        unpack(plan.train_inputs),
    output:
        model=paths.MODEL,
        log_csv=paths.TRAIN_LOG,
    log:
        "results/logs/train_convnet/{model}.log",
    benchmark:
        "results/benchmarks/train_convnet/{model}.tsv"
    wildcard_constraints:
        model=name_pattern(plan.convnet_runs),
    conda:
        CONDA_GPU
    threads: config["threads"]["train"]
    resources:
        gpu=1,
    params:
        settings=lambda w: plan.model_settings_json(w.model),
        device=config["device"],
        preinit=preinit_option,
        orientation=config["data"]["orientation"],  # resolved by the job from the pack report
        mirror=config["data"]["mirror"],
    shell:
        jobs.TRAIN_CONVNET


rule augmentation_grid:
    input:
        data=paths.TRAIN_DATA,
        pack_report=paths.TRAIN_REPORT,
    output:
        report(
            paths.AUGMENTATION_GRID,
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
    params:
        settings=lambda w: plan.entry_settings_json(w.model),
        orientation=config["data"]["orientation"],
        mirror=config["data"]["mirror"],
    shell:
        "deepsea augment-grid --settings {params.settings:q} --data {input.data} --orientation {params.orientation} "
        "--mirror {params.mirror} --pack-report {input.pack_report} --out {output} > {log} 2>&1"
