# handcrafted features of the raw images (image size, image moments, Haralick texture).


rule extract_features:
    input:
        paths.PACKED,
    output:
        features=paths.FEATURES,
        report=paths.FEATURES_REPORT,
    log:
        "results/logs/extract_features/{subset}.log",
    benchmark:
        "results/benchmarks/extract_features/{subset}.tsv"
    wildcard_constraints:
        subset="train|test",
    conda:
        CONDA_CPU
    threads: config["threads"]["features"]
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        groups=" ".join(config["features"]["groups"]),
        levels=config["features"]["haralick_levels"],
    shell:
        "deepsea extract-features --data {input} --groups {params.groups} --haralick-levels {params.levels} "
        "--out {output.features} --report {output.report} --workers {threads} > {log} 2>&1"
