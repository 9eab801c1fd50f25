"""`deepsea train --config FILE --model NAME`: a config's model trained by hand exactly as its Snakemake job trains
it (spec: "rerun one stage")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CPU_ONLY, SNAKEMAKE, workflow_copy
from deepsea.dag.config_loader import load_workflow_config
from deepsea.dag.jobs import train_job
from deepsea.errors import ConfigError

PREINIT = """
models:
  convroll4: {architecture: convroll4, input_size: 15, params: {width: 0.125, depth: 2, dense: 16},
              train: {steps: 30, batch_size: 16, workers: 0}, bags: [3]}
  deep: {architecture: convroll5_preinit, preinit: convroll4, input_size: 15, params: {width: 0.125, depth: 2,
         dense: 16}, train: {steps: 20, batch_size: 16, workers: 0}}
fusion: {models: []}
ensemble: {models: [convroll4]}
pseudo_labels: {models: {}}
submission: {source: ensemble, models: [convroll4]}
threads: {train: 2}
device: cpu
tta: {views: 4}
"""  # preinit, a bag member, threads and device that are not the defaults


def _workflow(tmp: Path) -> Path:
    """A copy of the workflow folder (what `snakemake` and `deepsea train --config` read) with PREINIT beside it."""
    workdir = workflow_copy(tmp / "wf")
    (workdir / "pre.yaml").write_text(PREINIT)
    return workdir


def run_snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", *args],
        cwd=workdir,
        env=CPU_ONLY,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _rule_commands(workdir: Path, *configfile: str) -> set[str]:
    """The `deepsea train` command of every training job of `snakemake -n -p all`, without its log redirection."""
    result = run_snakemake(workdir, "-n", "-p", "--forceall", *configfile, "--", "all")
    shell = [line.split("Shell command: ", 1)[1] for line in result.stdout.splitlines() if "Shell command: " in line]
    return {line.split(" > results/logs/", 1)[0].rstrip() for line in shell if line.startswith("deepsea train ")}


@pytest.mark.parametrize("configfile", [[], ["pre.yaml"]], ids=["embedded", "preinit"])
def test_every_runs_job_is_the_rules_command(tmp_path: Path, configfile: list[str]) -> None:
    """Bag members, pseudo-label shard models (embedded config) and a pre-initialised model on other threads and
    device (pre.yaml): what --config --model resolves is, option for option, what the workflow runs."""
    workdir = _workflow(tmp_path)
    rules = _rule_commands(workdir, *(["--configfile", *configfile] if configfile else []))
    config = load_workflow_config(workdir, [workdir / f for f in configfile])
    runs = sorted(line.split("--out results/models/", 1)[1].split("/", 1)[0] for line in rules)
    assert {train_job(config, run).command() for run in runs} == rules
    expected = ["convroll4", "convroll4_bag3", "deep"] if configfile else ["doublescale_pl_shard0", "plain_bag1"]
    assert set(expected) <= set(runs)


def test_unknown_model_and_mistyped_key_are_named(tmp_path: Path) -> None:
    workdir = _workflow(tmp_path)
    with pytest.raises(ConfigError, match=r"'plian' is not a model of this config; its models are \[.*'plain'"):
        train_job(load_workflow_config(workdir, []), "plian")
    (workdir / "typo.yaml").write_text("models:\n  plain: {architecture: plain, trian: {steps: 3}}\n")
    with pytest.raises(ConfigError, match="'trian' was unexpected"):
        load_workflow_config(workdir, [workdir / "typo.yaml"])
    with pytest.raises(ConfigError, match="not a deepsea workflow folder"):
        load_workflow_config(workdir / "workflow", [])


def _deepsea(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepsea.cli", *args], cwd=workdir, env=CPU_ONLY, capture_output=True, text=True
    )


@pytest.mark.slow
def test_trained_by_hand_equals_the_rules_model(tmp_path: Path) -> None:
    """Missing inputs are named with the command that makes them; once made, the model trained by hand (a bag
    member, pre-initialised from the workflow's model) has the bytes of the one the rule trained; trained over the
    workflow's model file with other weights, what was made from it is out of date for Snakemake."""
    workdir = _workflow(tmp_path)
    (workdir / "pre.yaml").write_text(
        PREINIT + "demo: {n_train: 150, n_test: 40, classes: 4, seed: 1}\nsplits: {scheme: holdout}\n"
    )
    result = _deepsea(workdir, "train", "--config", "pre.yaml", "--model", "deep")
    assert result.returncode == 2
    assert (
        "results/data/train.npz, results/data/train_report.json, results/splits/valid.json, "
        "results/models/convroll4/model.pt not made yet; make them first: snakemake --cores N --configfile pre.yaml "
        "-- results/data/train.npz results/data/train_report.json" in result.stderr
    )
    targets = ["results/models/deep/model.pt", "results/predictions/convroll4_bag3/valid.npy"]
    run_snakemake(workdir, "--configfile", "pre.yaml", "--", *targets)
    for run in ("deep", "convroll4_bag3"):
        out = tmp_path / "by_hand" / run / "model.pt"
        result = _deepsea(workdir, "train", "--config", "pre.yaml", "--model", run, "--out", str(out))
        assert result.returncode == 0, result.stderr[-3000:]
        assert out.read_bytes() == (workdir / f"results/models/{run}/model.pt").read_bytes(), run
        assert (out.parent / "train_log.csv").exists()
    # retrained in place: the same bytes leave its predictions up to date (Snakemake compares checksums of newer
    # inputs); on other threads the weights differ (docs/robustness.md: Determinism), so Snakemake redoes them
    for threads, redone in (("2", False), ("1", True)):
        args = ("train", "--config", "pre.yaml", "--model", "convroll4_bag3", "--threads", threads)
        assert _deepsea(workdir, *args).returncode == 0
        planned = run_snakemake(workdir, "-n", "--configfile", "pre.yaml", "--", targets[1]).stdout
        assert ("Updated input files: results/models/convroll4_bag3/model.pt" in planned) == redone, planned
