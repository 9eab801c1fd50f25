# the stratified validation split, the bagging splits, and the test shards of pseudo-labelling.


rule split_valid:
    input:
        paths.TRAIN_DATA,
    output:
        paths.VALID_SPLIT,
    log:
        "results/logs/split/valid.log",
    benchmark:
        "results/benchmarks/split/valid.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        fraction=config["splits"]["valid_fraction"],
        seed=config["splits"]["seed"],
    shell:
        "deepsea split --data {input} --valid-fraction {params.fraction} --seed {params.seed} --purpose valid "
        "--out {output} > {log} 2>&1"


rule split_folds:
    input:
        paths.TRAIN_DATA,
    output:
        folds=plan.fold_splits(),
        all=paths.OUT_OF_FOLD_SPLIT,
    log:
        "results/logs/split/folds.log",
    benchmark:
        "results/benchmarks/split/folds.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        folds=config["splits"]["folds"],
        seed=config["splits"]["seed"],
    shell:
        "deepsea split-folds --data {input} --folds {params.folds} --seed {params.seed} --out {output.folds} "
        "--out-all {output.all} > {log} 2>&1"


rule split_bag:
    input:
        paths.TRAIN_DATA,
    output:
        paths.BAG_SPLIT,
    log:
        "results/logs/split/bag_{seed}.log",
    benchmark:
        "results/benchmarks/split/bag_{seed}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        fraction=config["splits"]["valid_fraction"],
    shell:
        "deepsea split --data {input} --valid-fraction {params.fraction} --seed {wildcards.seed} --purpose bag "
        "--out {output} > {log} 2>&1"


rule shard_test:
    input:
        paths.TEST_DATA,
    output:
        paths.TEST_SHARDS,
    log:
        "results/logs/split/test_shards.log",
    benchmark:
        "results/benchmarks/split/test_shards.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        shards=config["pseudo_labels"]["shards"],
        seed=config["pseudo_labels"]["seed"],
    shell:
        "deepsea shard-test --data {input} --shards {params.shards} --seed {params.seed} --out {output} > {log} 2>&1"
