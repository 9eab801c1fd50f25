# predictions of every model for the train, valid and test subsets, and their evaluation.


rule predict_tta:
    input:
        model=paths.MODEL,
        data=plan.packed_data,
        split=lambda w: plan.split_file(w.model),
    output:
        pred=paths.PREDICTION,
        pred_meta=paths.meta(paths.PREDICTION),
        centre=paths.CENTRE_PREDICTION,
        centre_meta=paths.meta(paths.CENTRE_PREDICTION),
    log:
        "results/logs/predict_tta/{model}/{subset}.log",
    benchmark:
        "results/benchmarks/predict_tta/{model}/{subset}.tsv"
    conda:
        CONDA_GPU
    threads: config["threads"]["predict"]
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=1,
    params:
        device=config["device"],
        tta=plan.tta_json(),
        workers=lambda w, threads: max(0, threads - 1),
    shell:
        "deepsea predict --model {input.model} --data {input.data} --subset {wildcards.subset} "
        "--split {input.split} --tta {params.tta:q} --out {output.pred} --out-centre {output.centre} "
        "--device {params.device} --threads {threads} --workers {params.workers} > {log} 2>&1"


rule evaluate:
    input:
        pred=paths.fill(paths.PREDICTION, subset="valid"),
        centre=paths.fill(paths.CENTRE_PREDICTION, subset="valid"),
        data=paths.TRAIN_DATA,
        split=lambda w: plan.split_file(w.model),
    output:
        paths.EVALUATION,
    log:
        "results/logs/evaluate/{model}.log",
    benchmark:
        "results/benchmarks/evaluate/{model}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    shell:
        "deepsea evaluate --pred {input.pred} --centre {input.centre} --data {input.data} --split {input.split} "
        "--out {output} "
        "> {log} 2>&1"


rule bag_average:
    input:
        plan.bag_members,
    output:
        pred=paths.BAGGED_TEST,
        meta=paths.meta(paths.BAGGED_TEST),  # `{output}` passes both to --out
    log:
        "results/logs/bag_average/{model}.log",
    benchmark:
        "results/benchmarks/bag_average/{model}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    params:
        mean=config["ensemble"]["bag_mean"],
    shell:
        "deepsea average --pred {input} --mean {params.mean} --out {output} > {log} 2>&1"
