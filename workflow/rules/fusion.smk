# Stage 7: late fusion of handcrafted features with a convnet's predictions, and its evaluation.


rule fuse_features:
    input:
        train="results/predictions/{model}/train.npy",
        valid="results/predictions/{model}/valid.npy",
        test=lambda w: test_prediction(w.model, fused=False),
        features_train="results/features/train.npz",
        features_test="results/features/test.npz",
        data="results/data/train.npz",
        split=lambda w: split_file(w.model),
    output:
        valid="results/fused/{model}/valid.npy",
        test="results/fused/{model}/test.npy",
        report="results/fused/{model}/report.json",
    log:
        "results/logs/fuse_features/{model}.log",
    benchmark:
        "results/benchmarks/fuse_features/{model}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=0,
    params:
        settings=fusion_json(),
    shell:
        "deepsea fuse --pred-train {input.train} --pred-valid {input.valid} --pred-test {input.test} "
        "--features-train {input.features_train} --features-test {input.features_test} --data {input.data} "
        "--split {input.split} --settings {params.settings:q} --out-valid {output.valid} "
        "--out-test {output.test} --report {output.report} --threads {threads} > {log} 2>&1"


rule evaluate_fused:
    input:
        pred="results/fused/{model}/valid.npy",
        unfused="results/predictions/{model}/valid.npy",
        data="results/data/train.npz",
        split=lambda w: split_file(w.model),
    output:
        "results/eval/fused/{model}.json",
    log:
        "results/logs/evaluate_fused/{model}.log",
    benchmark:
        "results/benchmarks/evaluate_fused/{model}.tsv"
    conda:
        CONDA_CPU
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    shell:
        "deepsea evaluate --pred {input.pred} --unfused {input.unfused} --data {input.data} "
        "--split {input.split} --out {output} > {log} 2>&1"
