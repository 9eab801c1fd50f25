# the weighted ensemble of the (fused, bagged) model predictions.


rule ensemble:
    input:
        valid=plan.ensemble_inputs("valid"),
        test=plan.ensemble_inputs("test"),
        data=paths.TRAIN_DATA,
    output:
        weights=paths.ENSEMBLE_WEIGHTS,
        cv=paths.ENSEMBLE_CV,
        valid=paths.fill(paths.ENSEMBLE, subset="valid"),
        valid_meta=paths.meta(paths.fill(paths.ENSEMBLE, subset="valid")),
        test=paths.fill(paths.ENSEMBLE, subset="test"),
        test_meta=paths.meta(paths.fill(paths.ENSEMBLE, subset="test")),
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
    params:
        names=" ".join(config["ensemble"]["models"]),
        folds=config["ensemble"]["folds"],
        seed=config["ensemble"]["seed"],
        mean=config["ensemble"]["mean"],
        min_gain_se=config["decisions"]["min_gain_se"],
        out_dir=lambda w, output: Path(output.weights).parent,
    shell:
        "deepsea ensemble --names {params.names} --valid {input.valid} --test {input.test} --data {input.data} "
        "--folds {params.folds} --seed {params.seed} --mean {params.mean} --out-dir {params.out_dir} "
        "--min-gain-se {params.min_gain_se} > {log} 2>&1"
