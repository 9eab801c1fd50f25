"""The full-scale config (workflow/configs/ndsb-full.yaml) plans Deep Sea's final DAG on the real NDSB layout.

A dry run against a generated folder of 121 classes must list Deep Sea's model counts (the documentation, appendix A.1:
10 basic convnets + 1 pre-initialised + 28 bagged = 39 trained convnets, 3 pseudo-label models), and only the rules
that the SLURM profile sends to GPU nodes may ask for a GPU.
"""

from __future__ import annotations

import re
import subprocess

import cv2
import numpy as np
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, workflow_copy

N_CLASSES = 121
BASIC, PREINIT, BAGGED, PSEUDO_LABEL = 10, 1, 28, 3
ENSEMBLED, BAGGED_ENSEMBLED = 10, 7  # "a weighted blend of 10 models (7 bagged and 3 unbagged)"

EXPECTED_JOBS = {
    "pack": 2,  # train, test
    "extract_features": 2,
    "split_valid": 1,
    "split_bag": BAGGED,  # one split per bagging seed 0..27
    "train_convnet": BASIC + PREINIT + BAGGED,
    "train_pseudolabel": PSEUDO_LABEL,
    # train/valid/test for each ensembled (fused) model; valid (evaluation) and test (bag average) for each bag
    # member; valid and test for each pseudo-label model. The basic convroll4 is trained for convroll5's preinit only.
    "predict_tta": 3 * ENSEMBLED + 2 * BAGGED + 2 * PSEUDO_LABEL,
    "choose_views": 3 * ENSEMBLED + 2 * BAGGED + 2 * PSEUDO_LABEL,  # one per prediction: its views or centre
    "evaluate": ENSEMBLED + BAGGED + PSEUDO_LABEL,
    "bag_average": BAGGED_ENSEMBLED,
    "fuse_features": ENSEMBLED,
    "evaluate_fused": ENSEMBLED,
    "ensemble": 1,
    "shard_test": 1,
    "combine_shards": 2,  # the shard models' valid and test predictions
    "final_blend": 2,  # valid (the report's final model) and test (the submission)
    "fit_calibration": 1,  # one temperature for the final blend
    "calibrate": 2,  # valid (the report, the bundle's thresholds) and test (the submission)
    "submit": 1,
    "bundle": 1,  # the model bundle: every model, fusion net and weight the submission came from
    "final_submission": 1,
    # the report: a learning curve per evaluated model, augmentation grids of the submitted models, one of the rest
    "plot_training": ENSEMBLED + BAGGED + PSEUDO_LABEL,
    "augmentation_grid": ENSEMBLED,
    "plot_data": 1,
    "plot_tta_views": 1,
    "model_table": 1,
    "plot_final": 1,
    "plot_calibration": 1,
    "plot_ensemble": 1,
    "ablation": 1,
    "top5": 1,
}


@pytest.fixture(scope="module")
def full_dry_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("ndsb")
    image = np.full((24, 24), 230, np.uint8)
    for c in range(N_CLASSES):
        folder = root / "train" / f"class_{c:03d}"
        folder.mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(folder / f"{c * 10 + i}.jpg"), image)
    (root / "test").mkdir()
    for i in range(4):
        cv2.imwrite(str(root / "test" / f"{i}.jpg"), image)
    workdir = workflow_copy(tmp_path_factory.mktemp("full") / "wf")
    (workdir / "data.yaml").write_text(f"data: {{train_dir: {root}/train, test_dir: {root}/test}}\n")
    result = subprocess.run(
        [
            *SNAKEMAKE,
            "-n",
            "-p",
            "--configfile",
            "workflow/configs/ndsb-full.yaml",
            "data.yaml",
            "--",
            "final_submission",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _job_stats(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1].split("total")[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def test_full_scale_dry_run_has_the_seeds_model_counts(full_dry_run: str) -> None:
    assert _job_stats(full_dry_run) == EXPECTED_JOBS
    trained = set(re.findall(r"output: results/models/([^/]+)/model.pt", full_dry_run))
    assert len(trained) == BASIC + PREINIT + BAGGED + PSEUDO_LABEL == 42
    assert len({t for t in trained if re.search(r"_bag\d+$", t)}) == BAGGED
    bag_seeds = sorted(int(m) for t in trained for m in re.findall(r"_bag(\d+)$", t))
    assert bag_seeds == list(range(28))  # the original's bagging splits: seeds 0 through 27


def test_final_blend_is_the_originals_fixed_half(full_dry_run: str) -> None:
    """ndsb-full.yaml keeps final_weight 0.5: no fitted weight, the ensemble and the pseudo-label models half each."""
    assert "fit_final_weight" not in full_dry_run
    blend = re.search(
        r"deepsea average --pred results/ensemble/test.npy (\S+) --weights (\S+) (\S+) --out", full_dry_run
    )
    assert blend and blend.group(1).startswith("results/pseudo_labels/")
    assert (float(blend.group(2)), float(blend.group(3))) == (0.5, 0.5)


def test_only_profile_routed_rules_ask_for_a_gpu(full_dry_run: str) -> None:
    gpu_rules, cpu_rules = set(), set()
    for block in re.split(r"\n(?=rule \w+:)", full_dry_run):
        rule = re.match(r"rule (\w+):", block)
        resources = re.search(r"resources: (.*)", block)
        if not rule or rule.group(1) == "final_submission":
            continue
        gpu = re.search(r"\bgpu=(\d+)", resources.group(1)) if resources else None
        assert gpu is None or gpu.group(1) == "1", rule.group(1)  # only the GPU rules name the resource
        (gpu_rules if gpu else cpu_rules).add(rule.group(1))
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    routed = {rule for rule, res in profile["set-resources"].items() if res.get("slurm_partition") == "gpu"}
    assert gpu_rules <= routed == {"train_convnet", "train_pseudolabel", "predict_tta", "classify_images"}
    assert routed - gpu_rules == {"classify_images"}  # not in final_submission's DAG: `snakemake classify`
    assert cpu_rules and not cpu_rules & routed
