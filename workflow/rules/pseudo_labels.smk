# pseudo-label retraining (one GPU job per test shard), the shard models' combined prediction, and the
# final blend with the weighted ensemble (its weight fixed, or fitted on validation: fit_final_weight). The shard
# models' TTA predictions come from predict_tta.


rule train_pseudolabel:
    input:
        unpack(plan.train_inputs),  # with the test images, shards and soft targets (the ensemble's test probabilities)
    output:
        model=paths.MODEL,
        log_csv=paths.TRAIN_LOG,
    log:
        "results/logs/train_pseudolabel/{model}.log",
    benchmark:
        "results/benchmarks/train_pseudolabel/{model}.tsv"
    wildcard_constraints:
        model=name_pattern(plan.pseudo_label_runs),
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
        jobs.TRAIN_PSEUDOLABEL


rule combine_shards:
    input:
        preds=plan.shard_predictions,
        shards=paths.TEST_SHARDS,
    output:
        pred=paths.PSEUDO_LABELS,
        meta=paths.meta(paths.PSEUDO_LABELS),  # `{output}` passes both to --out
    log:
        "results/logs/combine_shards/{name}/{subset}.log",
    benchmark:
        "results/benchmarks/combine_shards/{name}/{subset}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        mode=config["pseudo_labels"]["combine"],
    shell:
        "deepsea combine-shards --pred {input.preds} --shards {input.shards} --mode {params.mode} --out {output} "
        "> {log} 2>&1"


rule fit_final_weight:
    input:
        ensemble_valid=plan.ensemble_inputs("valid"),
        ensemble_weights=paths.ENSEMBLE_WEIGHTS,
        pseudo_labels=plan.pseudo_label_predictions("valid"),
        data=paths.TRAIN_DATA,
    output:
        paths.FINAL_BLEND,
    log:
        "results/logs/fit_final_weight.log",
    benchmark:
        "results/benchmarks/fit_final_weight.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        folds=config["ensemble"]["folds"],
        seed=config["ensemble"]["seed"],
        min_gain_se=config["decisions"]["min_gain_se"],
    shell:
        "deepsea fit-final-weight --ensemble-valid {input.ensemble_valid} --ensemble-weights {input.ensemble_weights} "
        "--pseudo-labels {input.pseudo_labels} --data {input.data} --folds {params.folds} --seed {params.seed} "
        "--min-gain-se {params.min_gain_se} --out {output} > {log} 2>&1"


rule final_blend:
    input:
        preds=plan.final_blend_inputs,
        blend=[paths.FINAL_BLEND] if plan.final_weight_fitted() else [],
    output:
        pred=paths.FINAL,
        meta=paths.meta(paths.FINAL),  # `{output}` passes both to --out
    log:
        "results/logs/final_blend/{subset}.log",
    benchmark:
        "results/benchmarks/final_blend/{subset}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        weights=plan.final_blend_weights(),
    shell:
        "deepsea average --pred {input.preds} {params.weights} --out {output} > {log} 2>&1"
