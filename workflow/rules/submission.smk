# the validated, gzipped submission CSV.


rule submit:
    input:
        preds=plan.submission_inputs(),
        test=paths.TEST_DATA,
    output:
        paths.SUBMISSION,
    log:
        "results/logs/submit.log",
    benchmark:
        "results/benchmarks/submit.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        class_order=config["submission"]["class_order"],
    shell:
        "deepsea submit --pred {input.preds} --test-data {input.test} --class-order {params.class_order:q} "
        "--out {output} > {log} 2>&1"
