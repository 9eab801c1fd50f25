# one temperature for the submission source's prediction, fitted on validation predictions that did not see their
# labels (the ensemble out of fold), and the source's predictions calibrated with it (`calibration: none` skips both).


rule fit_calibration:
    input:
        unpack(lambda w: plan.calibration_inputs()),
    output:
        paths.CALIBRATION,
    log:
        "results/logs/fit_calibration.log",
    benchmark:
        "results/benchmarks/fit_calibration.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        stages=lambda w, input: " ".join(
            f"--{key.replace('_', '-')} {' '.join(getattr(input, key))}"
            for key in ("ensemble_valid", "ensemble_weights", "pseudo_labels")
            if key in input.keys()
        ),
        folds=config["ensemble"]["folds"],
        seed=config["ensemble"]["seed"],
        min_gain_se=config["decisions"]["min_gain_se"],
    shell:
        "deepsea fit-calibration --source-valid {input.source_valid} {params.stages} --data {input.data} "
        "--folds {params.folds} --seed {params.seed} --min-gain-se {params.min_gain_se} --out {output} > {log} 2>&1"


rule calibrate:
    input:
        preds=lambda w: plan.source_predictions(w.subset),
        calibration=paths.CALIBRATION,
    output:
        pred=paths.CALIBRATED,
        meta=paths.meta(paths.CALIBRATED),  # `{output}` passes both to --out
    log:
        "results/logs/calibrate/{subset}.log",
    benchmark:
        "results/benchmarks/calibrate/{subset}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    shell:
        "deepsea calibrate --pred {input.preds} --calibration {input.calibration} --out {output} > {log} 2>&1"
