# Stage 10: pseudo-label retraining (one GPU job per test shard), the shard models' combined prediction, and the
# final blend with the weighted ensemble (its weight fixed, or fitted on validation: fit_final_weight). The shard
# models' TTA predictions come from predict_tta.


rule train_pseudolabel:
    input:
        unpack(train_inputs),  # with the test images, shards and soft targets (the ensemble's test probabilities)
    output:
        model="results/models/{model}/model.pt",
        log_csv="results/models/{model}/train_log.csv",
    log:
        "results/logs/train_pseudolabel/{model}.log",
    benchmark:
        "results/benchmarks/train_pseudolabel/{model}.tsv"
    wildcard_constraints:
        model=name_pattern(PSEUDO_LABEL_RUNS),
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
        "--test-data {input.test} --shards {input.shards} --pseudo-labels {input.targets} "
        "--out {output.model} --log-csv {output.log_csv} --device {params.device} --threads {threads} {params.preinit} "
        "> {log} 2>&1"


rule combine_shards:
    input:
        preds=lambda w: [
            f"results/predictions/{run}/{w.subset}.npy" for run in shard_runs(w.name)
        ],
        shards="results/splits/test_shards.json",
    output:
        "results/pseudo_labels/{name}/{subset}.npy",
    log:
        "results/logs/combine_shards/{name}/{subset}.log",
    benchmark:
        "results/benchmarks/combine_shards/{name}/{subset}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    params:
        mode=config["pseudo_labels"]["combine"],
    shell:
        "deepsea combine-shards --pred {input.preds} --shards {input.shards} --mode {params.mode} --out {output} "
        "> {log} 2>&1"


rule fit_final_weight:
    input:
        ensemble_valid=[valid_prediction(name) for name in config["ensemble"]["models"]],
        ensemble_weights="results/ensemble/weights.json",
        pseudo_labels=expand(
            "results/pseudo_labels/{name}/valid.npy",
            name=config["pseudo_labels"]["models"],
        ),
        data="results/data/train.npz",
    output:
        "results/final/blend.json",
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
        gpu=0,
    params:
        folds=config["ensemble"]["folds"],
        seed=config["ensemble"]["seed"],
    shell:
        "deepsea fit-final-weight --ensemble-valid {input.ensemble_valid} --ensemble-weights {input.ensemble_weights} "
        "--pseudo-labels {input.pseudo_labels} --data {input.data} --folds {params.folds} --seed {params.seed} "
        "--out {output} > {log} 2>&1"


rule final_blend:
    input:
        preds=final_blend_inputs,
        blend=["results/final/blend.json"] if final_weight_fitted() else [],
    output:
        "results/final/{subset}.npy",
    log:
        "results/logs/final_blend/{subset}.log",
    benchmark:
        "results/benchmarks/final_blend/{subset}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    params:
        weights=final_blend_weights(),
    shell:
        "deepsea average --pred {input.preds} {params.weights} --out {output} > {log} 2>&1"
