# the demo data set (when configured) and packing of the image folders.


rule demo_data:
    output:
        paths.demo_manifest(config["demo"]["dir"]),
    log:
        "results/logs/demo_data.log",
    benchmark:
        "results/benchmarks/demo_data.tsv"
    conda:
        CONDA_CPU
    threads: 2
    resources:
        runtime=30,
    params:
        out=lambda w, output: Path(output[0]).parent,
        n_train=config["demo"]["n_train"],
        n_test=config["demo"]["n_test"],
        classes=config["demo"]["classes"],
        imbalance=config["demo"]["imbalance"],
        seed=config["demo"]["seed"],
    shell:
        "deepsea make-demo-data --out {params.out} --n-train {params.n_train} --n-test {params.n_test} "
        "--classes {params.classes} --imbalance {params.imbalance} --seed {params.seed} --workers {threads} "
        "> {log} 2>&1"


rule pack:
    input:
        plan.data_source,
        # the test set is packed with the training set's background (light, or dark and inverted)
        train_report=lambda w: (paths.TRAIN_REPORT if w.subset == "test" else []),
        # and compared with the training images (copies of a training image are reported)
        train_data=lambda w: paths.TRAIN_DATA if w.subset == "test" else [],
    output:
        data=paths.PACKED,
        report=paths.PACK_REPORT,
    log:
        "results/logs/pack/{subset}.log",
    benchmark:
        "results/benchmarks/pack/{subset}.tsv"
    wildcard_constraints:
        subset="train|test",
    conda:
        CONDA_CPU
    threads: config["threads"]["pack"]
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        folder=lambda w: config["data"][f"{w.subset}_dir"],
        on_bad_image=config["data"]["on_bad_image"],
        # train: the background setting; test: the training set's background, and its images to compare with
        subset_options=lambda w, input: (
            f"--background-from {input.train_report} --copies-from {input.train_data}"
            if w.subset == "test"
            else f"--background {config['data']['background']}"
        ),
    shell:
        "deepsea pack --dir {params.folder:q} --subset {wildcards.subset} --out {output.data} "
        "--report {output.report} --on-bad-image {params.on_bad_image} {params.subset_options} --workers {threads} "
        "> {log} 2>&1"
