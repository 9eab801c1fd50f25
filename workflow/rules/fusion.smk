# late fusion of handcrafted features with a convnet's predictions, and its evaluation.


rule fuse_features:
    input:
        train=paths.fill(paths.PREDICTION, subset="train"),
        valid=paths.fill(paths.PREDICTION, subset="valid"),
        test=lambda w: plan.test_prediction(w.model, fused=False),
        features_train=paths.fill(paths.FEATURES, subset="train"),
        features_test=paths.fill(paths.FEATURES, subset="test"),
        data=paths.TRAIN_DATA,
        split=lambda w: plan.split_file(w.model),
    output:
        valid=paths.fill(paths.FUSED, subset="valid"),
        valid_meta=paths.meta(paths.fill(paths.FUSED, subset="valid")),
        test=paths.fill(paths.FUSED, subset="test"),
        test_meta=paths.meta(paths.fill(paths.FUSED, subset="test")),
        report=paths.FUSION_REPORT,
        nets=paths.FUSION_NETS,
    log:
        "results/logs/fuse_features/{model}.log",
    benchmark:
        "results/benchmarks/fuse_features/{model}.tsv"
    wildcard_constraints:
        model=name_pattern(plan.fused_models("holdout")),
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        settings=plan.fusion_json(),
    shell:
        "deepsea fuse --pred-train {input.train} --pred-valid {input.valid} --pred-test {input.test} "
        "--features-train {input.features_train} --features-test {input.features_test} --data {input.data} "
        "--split {input.split} --settings {params.settings:q} --out-valid {output.valid} "
        "--out-test {output.test} --report {output.report} --out-nets {output.nets} --threads {threads} > {log} 2>&1"


rule fuse_features_kfold:
    input:
        oof=paths.fill(paths.PREDICTION, subset="valid"),
        test=paths.fill(paths.PREDICTION, subset="test"),
        features_train=paths.fill(paths.FEATURES, subset="train"),
        features_test=paths.fill(paths.FEATURES, subset="test"),
        data=paths.TRAIN_DATA,
        folds=plan.fold_splits(),
    output:
        valid=paths.fill(paths.FUSED, subset="valid"),
        valid_meta=paths.meta(paths.fill(paths.FUSED, subset="valid")),
        test=paths.fill(paths.FUSED, subset="test"),
        test_meta=paths.meta(paths.fill(paths.FUSED, subset="test")),
        report=paths.FUSION_REPORT,
        nets=paths.FUSION_NETS,
    log:
        "results/logs/fuse_features/{model}.log",
    benchmark:
        "results/benchmarks/fuse_features/{model}.tsv"
    wildcard_constraints:
        model=name_pattern(plan.fused_models("kfold")),
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        settings=plan.fusion_json(),
    shell:
        "deepsea fuse --pred-valid {input.oof} --pred-test {input.test} --features-train {input.features_train} "
        "--features-test {input.features_test} --data {input.data} --folds {input.folds} "
        "--settings {params.settings:q} --out-valid {output.valid} --out-test {output.test} "
        "--report {output.report} --out-nets {output.nets} --threads {threads} > {log} 2>&1"


rule evaluate_fused:
    input:
        pred=paths.fill(paths.FUSED, subset="valid"),
        unfused=paths.fill(paths.PREDICTION, subset="valid"),
        data=paths.TRAIN_DATA,
        split=lambda w: plan.split_file(w.model),
    output:
        paths.FUSED_EVALUATION,
    log:
        "results/logs/evaluate_fused/{model}.log",
    benchmark:
        "results/benchmarks/evaluate_fused/{model}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    shell:
        "deepsea evaluate --pred {input.pred} --unfused {input.unfused} --data {input.data} "
        "--split {input.split} --out {output} > {log} 2>&1"
