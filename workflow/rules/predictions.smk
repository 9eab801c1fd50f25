# Stages 5-6: predictions of every model for the train, valid and test subsets, and their evaluation.


rule predict_tta:
    input:
        model="results/models/{model}/model.pt",
        data=packed_data,
        split=lambda w: split_file(w.model),
    output:
        "results/predictions/{model}/{subset}.npy",
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
    shell:
        "deepsea predict --model {input.model} --data {input.data} --subset {wildcards.subset} "
        "--split {input.split} --out {output} --device {params.device} --threads {threads} > {log} 2>&1"


rule evaluate:
    input:
        pred="results/predictions/{model}/valid.npy",
        data="results/data/train.npz",
        split=lambda w: split_file(w.model),
    output:
        "results/eval/{model}.json",
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
    shell:
        "deepsea evaluate --pred {input.pred} --data {input.data} --split {input.split} --out {output} "
        "> {log} 2>&1"
