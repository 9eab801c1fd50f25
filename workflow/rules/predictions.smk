# predictions of every model for the train, valid and test subsets, and their evaluation.


rule predict_tta:
    input:
        model=paths.MODEL,
        data=plan.packed_data,
        split=lambda w: plan.split_file(w.model),
        pack_report=paths.TRAIN_REPORT,  # the orientation check: upright images are not turned over
    output:
        pred=paths.TTA_PREDICTION,
        pred_meta=paths.meta(paths.TTA_PREDICTION),
        centre=paths.CENTRE_PREDICTION,
        centre_meta=paths.meta(paths.CENTRE_PREDICTION),
    log:
        "results/logs/predict_tta/{model}/{subset}.log",
    benchmark:
        "results/benchmarks/predict_tta/{model}/{subset}.tsv"
    wildcard_constraints:
        model=name_pattern(plan.runs),
    conda:
        CONDA_GPU
    threads: config["threads"]["predict"]
    resources:
        gpu=1,
    params:
        device=config["device"],
        tta=plan.tta_json(),
        orientation=config["data"]["orientation"],
        mirror=config["data"]["mirror"],
        workers=lambda w, threads: max(0, threads - 1),
    shell:
        "deepsea predict --model {input.model} --data {input.data} --subset {wildcards.subset} "
        "--split {input.split} --tta {params.tta:q} --orientation {params.orientation} --mirror {params.mirror} "
        "--pack-report {input.pack_report} --out {output.pred} --out-centre {output.centre} "
        "--device {params.device} --threads {threads} --workers {params.workers} > {log} 2>&1"


rule assemble_folds:
    input:
        valid=plan.fold_predictions(paths.TTA_PREDICTION, "valid"),
        test=plan.fold_predictions(paths.TTA_PREDICTION, "test"),
        centre_valid=plan.fold_predictions(paths.CENTRE_PREDICTION, "valid"),
        centre_test=plan.fold_predictions(paths.CENTRE_PREDICTION, "test"),
    output:
        valid=paths.fill(paths.TTA_PREDICTION, subset="valid"),
        valid_meta=paths.meta(paths.fill(paths.TTA_PREDICTION, subset="valid")),
        test=paths.fill(paths.TTA_PREDICTION, subset="test"),
        test_meta=paths.meta(paths.fill(paths.TTA_PREDICTION, subset="test")),
        centre_valid=paths.fill(paths.CENTRE_PREDICTION, subset="valid"),
        centre_valid_meta=paths.meta(
            paths.fill(paths.CENTRE_PREDICTION, subset="valid")
        ),
        centre_test=paths.fill(paths.CENTRE_PREDICTION, subset="test"),
        centre_test_meta=paths.meta(paths.fill(paths.CENTRE_PREDICTION, subset="test")),
    log:
        "results/logs/assemble_folds/{model}.log",
    benchmark:
        "results/benchmarks/assemble_folds/{model}.tsv"
    wildcard_constraints:
        model=name_pattern(plan.assembled_entries),
    conda:
        CONDA_CPU
    threads: 1
    params:
        mean=config["ensemble"]["bag_mean"],
    shell:
        "(deepsea assemble-folds --valid {input.valid} --test {input.test} --mean {params.mean} "
        "--out-valid {output.valid} {output.valid_meta} --out-test {output.test} {output.test_meta} && "
        "deepsea assemble-folds --valid {input.centre_valid} --test {input.centre_test} --mean arithmetic "
        "--out-valid {output.centre_valid} {output.centre_valid_meta} "
        "--out-test {output.centre_test} {output.centre_test_meta}) > {log} 2>&1"


rule choose_views:
    input:
        tta_valid=paths.fill(paths.TTA_PREDICTION, subset="valid"),
        centre_valid=paths.fill(paths.CENTRE_PREDICTION, subset="valid"),
        tta=paths.TTA_PREDICTION,
        centre=paths.CENTRE_PREDICTION,
        data=paths.TRAIN_DATA,
    output:
        pred=paths.PREDICTION,
        meta=paths.meta(paths.PREDICTION),  # `{output}` passes both to --out
    log:
        "results/logs/choose_views/{model}/{subset}.log",
    benchmark:
        "results/benchmarks/choose_views/{model}/{subset}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        choice=config["tta"]["choice"],
        min_gain_se=config["decisions"]["min_gain_se"],
    shell:
        "deepsea choose-views --tta-valid {input.tta_valid} --centre-valid {input.centre_valid} --tta {input.tta} "
        "--centre {input.centre} --data {input.data} --choice {params.choice} "
        "--min-gain-se {params.min_gain_se} --out {output} > {log} 2>&1"


rule evaluate:
    input:
        pred=paths.fill(paths.PREDICTION, subset="valid"),
        tta=paths.fill(paths.TTA_PREDICTION, subset="valid"),
        centre=paths.fill(paths.CENTRE_PREDICTION, subset="valid"),
        logs=plan.train_logs,
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
    shell:
        "deepsea evaluate --pred {input.pred} --tta {input.tta} --centre {input.centre} --train-log {input.logs} --data {input.data} --split {input.split} "
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
    params:
        mean=config["ensemble"]["bag_mean"],
    shell:
        "deepsea average --pred {input} --mean {params.mean} --out {output} > {log} 2>&1"
