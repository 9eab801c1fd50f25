# Stage 9: the weighted ensemble of the (fused, bagged) model predictions.


rule ensemble:
    input:
        valid=[valid_prediction(name) for name in config["ensemble"]["models"]],
        test=[test_prediction(name) for name in config["ensemble"]["models"]],
        data="results/data/train.npz",
    output:
        weights="results/ensemble/weights.json",
        cv="results/ensemble/cv.csv",
        valid="results/ensemble/valid.npy",
        test="results/ensemble/test.npy",
    log:
        "results/logs/ensemble.log",
    benchmark:
        "results/benchmarks/ensemble.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
        gpu=0,
    params:
        names=" ".join(config["ensemble"]["models"]),
        folds=config["ensemble"]["folds"],
        seed=config["ensemble"]["seed"],
        mean=config["ensemble"]["mean"],
        out_dir=lambda w, output: Path(output.weights).parent,
    shell:
        "deepsea ensemble --names {params.names} --valid {input.valid} --test {input.test} --data {input.data} "
        "--folds {params.folds} --seed {params.seed} --mean {params.mean} --out-dir {params.out_dir} > {log} 2>&1"
