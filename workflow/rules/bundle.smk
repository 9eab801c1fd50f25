# the trained ensemble as one folder (results/bundle), and new images classified with it: the bundle keeps every
# model, fusion net and weight the submission's test prediction came from (deepsea/deploy/bundle.py).


rule bundle:
    input:
        plan.bundle_inputs(),
    output:
        directory(paths.BUNDLE),
    log:
        "results/logs/bundle.log",
    benchmark:
        "results/benchmarks/bundle.tsv"
    conda:
        CONDA_CPU
    threads: 1
    params:
        recipe=plan.bundle_json(),
    shell:
        "deepsea bundle --recipe {params.recipe:q} --out {output} > {log} 2>&1"


rule classify_images:
    input:
        paths.BUNDLE,
    output:
        paths.CLASSIFIED,
    log:
        "results/logs/classify.log",
    benchmark:
        "results/benchmarks/classify.tsv"
    conda:
        CONDA_GPU
    threads: config["threads"]["predict"]
    resources:
        gpu=1,
    params:
        images=lambda w: plan.classify_dir(),
        device=config["device"],
        on_bad_image=config["data"]["on_bad_image"],
        every_class=(
            "--all-probabilities" if config["classify"]["all_probabilities"] else ""
        ),
        precision=(
            f"--precision {config['classify']['precision']}"
            if config["classify"]["precision"] is not None
            else ""
        ),
    shell:
        "deepsea classify --bundle {input} --images {params.images:q} --out {output} --device {params.device} "
        "--on-bad-image {params.on_bad_image} --threads {threads} {params.every_class} {params.precision} "
        "> {log} 2>&1"


rule classify:
    input:
        paths.CLASSIFIED,
