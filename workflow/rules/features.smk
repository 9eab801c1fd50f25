# Stage 3: handcrafted features of the raw images (image size, image moments, Haralick texture).


rule extract_features:
    input:
        "results/data/{subset}.npz",
    output:
        features="results/features/{subset}.npz",
        report="results/features/{subset}_report.json",
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
        gpu=0,
    params:
        groups=" ".join(config["features"]["groups"]),
        levels=config["features"]["haralick_levels"],
    shell:
        "deepsea extract-features --data {input} --groups {params.groups} --haralick-levels {params.levels} "
        "--out {output.features} --report {output.report} --workers {threads} > {log} 2>&1"
