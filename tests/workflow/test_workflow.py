"""End to end: the real Snakefile, run as a user runs it, in temporary folders.

The module's two runs are the shipped demo DAG (`config.yaml` as it is, `snakemake --cores 2 final_submission`, what
`make run` does; on CPU, where the same bytes are promised, even on a machine with a GPU): run A uninterrupted; run
B stopped twice on the way and resumed (SIGTERM to the whole run while convnets train, SIGKILL to one TTA job).
Every split, feature, prediction, fused, ensemble, pseudo-label and final file, the submission and every model's
weights must be the same bytes in both: one comparison shows that two full demo runs agree on CPU and that an
interrupted run ends exactly where an uninterrupted one does.

The other tests use run A (a second dry run has nothing to do; --forcerun and an edited model plan exactly the jobs
they should; a rule's logged command remakes its bytes by hand; the report has every section) or small configs of
their own (a user's folder of PNGs, a mistyped key, preinit).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import CPU_ONLY, DEMO_ARGS, REPO, SNAKEMAKE, planned_jobs, run_snakemake, wait_for, workflow_copy
from deepsea.blending.submission import read_submission, score_submission
from deepsea.blending.temperature import apply_temperature
from deepsea.predictions import Predictions, average
from deepsea.training.model_file import load_model
from deepsea.training.settings import bag_member_seed

pytestmark = pytest.mark.slow
PLAIN_BAG = ["plain", "plain_bag1"]  # the demo's bagged model: bags [1]
SHARDS = 2  # config.yaml: pseudo_labels.shards
COMPARED = ("splits", "features", "predictions", "fused", "ensemble", "pseudo_labels", "final", "submission")
ENSEMBLED = ["plain", "cr4_ds", "convroll4_doublescale_fs5", "probe"]  # config.yaml's ensemble models


def _job_processes(workdir: Path, *words: str) -> list[int]:
    """Pids of the `deepsea` job processes running in `workdir` whose command line holds all `words`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if Path(entry / "cwd").resolve() != workdir.resolve():
                continue
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in argv]
        if any(a.endswith("deepsea") for a in text) and all(w in text for w in words):
            found.append(int(entry.name))
    return found


@dataclass
class KilledRun:
    """Run B and what was seen while it was being stopped."""

    workdir: Path
    interrupted: list[str]  # models whose training SIGTERM stopped (a checkpoint, no model.pt)
    killed_output: Path | None  # the output of the TTA job SIGKILL stopped
    killed_output_left: bool  # did that job leave its output behind?
    final: subprocess.CompletedProcess  # the run that finished the DAG


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> KilledRun:
    """Run B: the same DAG, stopped as Ctrl-C or a cluster's preemption stops it, then resumed to the end."""
    workdir = workflow_copy(tmp_path_factory.mktemp("run_b") / "wf")
    quiet = dict(
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir, env=CPU_ONLY, start_new_session=True
    )
    models = workdir / "results" / "models"

    snake = subprocess.Popen([*SNAKEMAKE, *DEMO_ARGS], **quiet)
    wait_for(lambda: any(models.glob("*/checkpoint.pt")) or snake.poll() is not None)
    os.killpg(snake.pid, signal.SIGTERM)  # Snakemake and its jobs, as Ctrl-C or a preemption does
    snake.wait(timeout=300)
    interrupted = sorted(p.parent.name for p in models.glob("*/checkpoint.pt") if not (p.parent / "model.pt").exists())

    snake = subprocess.Popen([*SNAKEMAKE, *DEMO_ARGS], **quiet)
    wait_for(lambda: _job_processes(workdir, "predict") or snake.poll() is not None)
    killed_output = None
    victims = _job_processes(workdir, "predict")
    if victims:
        argv = (Path("/proc") / str(victims[0]) / "cmdline").read_bytes().decode().split("\0")
        killed_output = workdir / argv[argv.index("--out") + 1]
        time.sleep(1.0)
        os.kill(victims[0], signal.SIGKILL)
    snake.wait(timeout=1800)
    killed_output_left = killed_output is not None and killed_output.exists()

    final = run_snakemake(workdir, *DEMO_ARGS, timeout=3600)
    return KilledRun(workdir, interrupted, killed_output, killed_output_left, final)


def test_killed_run_resumes_and_leaves_nothing_partial(killed_run: KilledRun) -> None:
    """No partial output is ever consumed, and stopped trainings resume from their checkpoints."""
    assert killed_run.final.returncode == 0, killed_run.final.stderr[-3000:]
    assert killed_run.interrupted, "SIGTERM came when no training had a checkpoint"
    logs = killed_run.workdir / "results" / "logs" / "train_convnet"
    for model in killed_run.interrupted:
        assert f"resuming from results/models/{model}/checkpoint.pt" in (logs / f"{model}.log").read_text(), model
    assert killed_run.killed_output is not None, "the run ended before any TTA job started"
    assert not killed_run.killed_output_left  # the killed job left nothing a later step could read


def test_two_demo_runs_give_identical_bytes(demo_run: Path, killed_run: KilledRun) -> None:
    """Same config and seed, same bytes on CPU: every file the submission depends on and every model file."""
    a, b = demo_run, killed_run.workdir
    assert killed_run.final.returncode == 0, killed_run.final.stderr[-3000:]
    files = sorted(p.relative_to(a) for folder in COMPARED for p in (a / "results" / folder).rglob("*") if p.is_file())
    assert any(str(f).endswith("submission.csv.gz") for f in files) and len(files) > 50
    differing = [str(f) for f in files if (a / f).read_bytes() != (b / f).read_bytes()]
    assert not differing, f"{len(differing)} files differ between two runs of the same config: {differing[:10]}"
    models = sorted(p.relative_to(a) for p in (a / "results" / "models").rglob("model.pt"))
    assert len(models) == 7  # 4 convnets (plain with 1 bag member), the probe and 2 pseudo-label models
    for rel in models:  # byte for byte: weights, settings, normalisation (run B's were resumed from checkpoints)
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_final_submission_is_valid_and_learned(demo_run: Path) -> None:
    workdir = demo_run
    submission = workdir / "results" / "submission" / "submission.csv.gz"
    ids, classes, probs = read_submission(submission)
    assert len(ids) == 200 and len(classes) == 20
    scores = json.loads((workdir / "results" / "eval" / "plain.json").read_text())
    assert scores["valid"]["log_loss"] < scores["class_prior"]["log_loss"]
    assert "centre" in scores and "tta_gain" in scores  # TTA and centre view side by side
    assert len(json.loads((workdir / "results/predictions/plain/test.tta.meta.json").read_text())["views"]) == 35
    # what moved on: the TTA mean or the centre view, the same for valid and test, decided on validation
    chosen = {
        s: json.loads((workdir / f"results/predictions/plain/{s}.meta.json").read_text()) for s in ("valid", "test")
    }
    assert chosen["valid"]["views_used"] == chosen["test"]["views_used"] == scores["views_used"]
    # plain is bagged (bags: [1]): its submission input is the bag's average
    members = [workdir / f"results/predictions/{run}/test.npy" for run in PLAIN_BAG]
    bagged = Predictions.load(workdir / "results/predictions/plain/test_bagged.npy").probs
    np.testing.assert_array_equal(bagged, average(members, mean="geometric").probs)  # ensemble.bag_mean
    assert (workdir / "results/splits/bag_1.json").exists() and (workdir / "results/eval/plain_bag1.json").exists()
    # each member from its own start: not a clone of the standard member that only saw another split
    member_seeds = [load_model(workdir / f"results/models/{run}/model.pt", "cpu")[1].seed for run in PLAIN_BAG]
    assert member_seeds == [0, bag_member_seed(0, 1)]
    fused = json.loads((workdir / "results/eval/fused/cr4_ds.json").read_text())
    assert "unfused" in fused and "fusion_gain" in fused  # fused and unfused side by side
    assert (workdir / "results/fused/plain/test.npy").exists()  # the submission's input for a fused model
    weights = json.loads((workdir / "results/ensemble/weights.json").read_text())["weights"]
    assert set(weights) == set(ENSEMBLED) and sum(weights.values()) == pytest.approx(1.0)
    # pseudo-labels (config.yaml: doublescale_pl, 2 shards): one model per shard, combined, blended with the ensemble
    shards = json.loads((workdir / "results/splits/test_shards.json").read_text())["shards"]
    assert len(shards) == SHARDS and sorted(i for s in shards for i in s) == sorted(ids)
    for k in range(SHARDS):
        log = (workdir / f"results/logs/train_pseudolabel/doublescale_pl_shard{k}.log").read_text()
        assert f"(all but shard {k}), 33% of every batch" in log
        assert (workdir / f"results/eval/doublescale_pl_shard{k}.json").exists()
    result = Predictions.load(workdir / "results/final/test.npy")
    final, final_ids, final_classes = result.probs, result.ids, result.class_names
    result = Predictions.load(workdir / "results/ensemble/test.npy")
    ensemble, ens_ids = result.probs, result.ids
    result = Predictions.load(workdir / "results/pseudo_labels/doublescale_pl/test.npy")
    pseudo, pl_ids = result.probs, result.ids
    assert final_ids == ens_ids == pl_ids
    # config.yaml: final_weight fit, against the ensemble's out-of-fold validation blend
    fitted = json.loads((workdir / "results/final/blend.json").read_text())
    w = fitted["final_weight"]
    assert fitted["ensemble"]["mean"] == json.loads((workdir / "results/ensemble/weights.json").read_text())["mean"]
    assert fitted["pseudo_labels"] == ["results/pseudo_labels/doublescale_pl/valid.npy"]
    assert fitted["valid_log_loss"]["fitted"] <= fitted["valid_log_loss"]["half_and_half"]
    np.testing.assert_allclose(final, (1 - w) * ensemble + w * pseudo, atol=1e-6)
    # the submission is the final blend, calibrated with the temperature fitted on validation (1: not adopted)
    temperature = json.loads((workdir / "results/calibration/temperature.json").read_text())["temperature"]
    calibrated = apply_temperature(final, temperature)
    rows, columns = [final_ids.index(i) for i in ids], [final_classes.index(c) for c in classes]
    np.testing.assert_allclose(probs, calibrated[rows][:, columns], atol=2e-6)
    test_score = score_submission(submission, workdir / "data" / "demo" / "test_labels.csv")
    assert test_score["log_loss"] < 0.3 and test_score["accuracy"] > 0.85  # the class prior: 2.5, 19% right
    logs = workdir / "results" / "logs"
    for log_file in (
        "demo_data.log",
        "pack/train.log",
        "pack/test.log",
        "split/valid.log",
        "train_convnet/plain.log",
        "predict_tta/plain/valid.log",
        "predict_tta/plain/test.log",
        "evaluate/plain.log",
        "bag_average/plain.log",
        "submit.log",
    ):
        first_line = (logs / log_file).read_text().splitlines()[0]
        assert "INFO deepsea: $ deepsea " in first_line, (log_file, first_line)
    log = (workdir / "results" / "logs" / "train_convnet" / "plain.log").read_text()
    assert "$ deepsea train --settings" in log.splitlines()[0]
    assert re.search(r"608 steps of 32 on cpu \(27\.0 epochs of the training images\)", log)  # 27 epochs of 720
    # the run ends with every model's validation scores (and evaluate's warnings, if any): Snakemake's own log
    run_log = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))[0]  # the fixture's run: the first
    data, summary = run_log.read_text().split("deepsea: validation log loss (results/eval/):\n")
    assert re.search(r"deepsea: data \(results/data/\):\n  train: 800 images in 20 classes, \d+-\d+ px", data)
    assert re.search(r"\n  test: 200 images", data)
    assert re.search(rf"  plain +{scores['valid']['log_loss']:.4f}   TTA mean [\d.]+   centre view", summary)
    assert re.search(rf"  cr4_ds \(fused\) +{fused['valid']['log_loss']:.4f}", summary)
    assert f"deepsea: final blend (results/final/blend.json): pseudo-label weight {w:.2f}, valid" in summary


def test_second_dry_run_has_nothing_to_do(demo_run: Path) -> None:
    result = run_snakemake(demo_run, "-n", "final_submission")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_forcerun_reruns_the_stage_and_its_dependents_only(demo_run: Path) -> None:
    """docs/usage.md (a): `snakemake --forcerun fuse_features final_submission` redoes fusion and what consumes it."""
    result = run_snakemake(demo_run, "-n", "--forcerun", "fuse_features", "--", "final_submission")
    assert result.returncode == 0, result.stderr[-3000:]
    rules = {rule for rule, _ in planned_jobs(result.stdout)}
    downstream = {"fuse_features", "evaluate_fused", "ensemble", "train_pseudolabel", "predict_tta", "choose_views",
                  "evaluate", "bundle",
                  "combine_shards", "fit_final_weight", "final_blend", "submit", "final_submission",
                  "fit_calibration", "calibrate", "plot_calibration",
                  "plot_training", "model_table", "plot_final", "plot_ensemble", "ablation", "top5"}  # fmt: skip
    assert "fuse_features" in rules and rules <= downstream, rules
    assert not rules & {"pack", "split_valid", "split_bag", "extract_features", "train_convnet", "bag_average"}
    predicted = {out.split("/")[2] for rule, out in planned_jobs(result.stdout) if rule == "predict_tta"}
    assert predicted == {f"doublescale_pl_shard{k}" for k in range(SHARDS)}  # only models trained on the ensemble


def test_editing_one_model_reruns_only_that_model_and_downstream(demo_run: Path) -> None:
    """docs/usage.md (b): a changed setting of cr4_ds reruns cr4_ds's jobs, not the other convnets'."""
    workdir = demo_run
    shipped = (workdir / "config.yaml").read_text()
    before, after = shipped.split("\n  cr4_ds:", 1)
    own_training = "train: {epochs: 29, learning_rate: 0.01, max_grad_norm: 5.0, weight_decay: 0.0005}"
    edited = after.replace("train: *cyclic_training", own_training, 1)  # its own block instead of the shared one
    (workdir / "edited.yaml").write_text(before + "\n  cr4_ds:" + edited)
    assert "epochs: 29" in (workdir / "edited.yaml").read_text().split("\n  cr4_ds:")[1].split("\n  conv")[0]
    result = run_snakemake(workdir, "-n", "--configfile", "edited.yaml", "--", "final_submission")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    assert {out for rule, out in jobs if rule == "train_convnet"} == {"results/models/cr4_ds/model.pt"}
    predicted = {out.split("/")[2] for rule, out in jobs if rule == "predict_tta"}
    assert predicted == {"cr4_ds"} | {f"doublescale_pl_shard{k}" for k in range(SHARDS)}
    assert {out for rule, out in jobs if rule == "fuse_features"} == {"results/fused/cr4_ds/valid.npy"}
    assert "params have changed since last execution" in result.stdout.lower()  # the model's settings param


def test_forcing_an_orientation_reruns_the_jobs_that_turn_images_and_their_dependents(demo_run: Path) -> None:
    """data.orientation: the demo looks free (auto decided so when it ran); forcing upright reruns training, the
    test-time views and the figures that show them, and what depends on them; packing, splits and features stay."""
    report = json.loads((demo_run / "results/data/train_report.json").read_text())
    assert report["orientation_auto"] == "free" and 0.4 < report["upright_score"] < 0.6
    (demo_run / "upright.yaml").write_text("data: {orientation: upright}\n")  # merged into config.yaml's data:
    result = run_snakemake(demo_run, "-n", "--configfile", "upright.yaml", "--", "final_submission")
    assert result.returncode == 0, result.stderr[-3000:]
    rules = {rule for rule, _ in planned_jobs(result.stdout)}
    assert {"train_convnet", "train_pseudolabel", "predict_tta", "augmentation_grid", "plot_data", "submit"} <= rules
    assert not rules & {"demo_data", "pack", "split_valid", "split_bag", "shard_test", "extract_features"}


def test_switching_to_the_local_gpu_profile_reruns_nothing(demo_run: Path) -> None:
    result = run_snakemake(demo_run, "-n", "--profile", "workflow/profiles/local-gpu", "--cores", "2", "--",
                        "final_submission")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "log_file, outputs",
    [
        ("predict_tta/plain/valid.log", ["--out", "--out-centre"]),
        ("evaluate/cr4_ds.log", ["--out"]),
        ("ensemble.log", ["--out-dir"]),
    ],
)
def test_logged_command_reproduces_the_rule_by_hand(
    demo_run: Path, tmp_path: Path, log_file: str, outputs: list
) -> None:
    """docs/usage.md (c): the first line of every rule's log is the `deepsea` command; run by hand, it makes the same
    bytes (outputs redirected to a scratch folder here)."""
    workdir = demo_run
    first_line = (workdir / "results/logs" / log_file).read_text().splitlines()[0]
    argv = shlex.split(first_line.split("INFO deepsea: $ ", 1)[1])
    assert argv[0] == "deepsea"
    pairs = {}
    for option in outputs:
        at = argv.index(option) + 1
        pairs[argv[at]] = str(tmp_path / Path(argv[at]).name) if option != "--out-dir" else str(tmp_path / "dir")
        argv[at] = pairs[argv[at]]
    result = subprocess.run(
        [sys.executable, "-m", "deepsea.cli", *argv[1:]], cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for original, by_hand in pairs.items():
        if Path(by_hand).is_dir():
            compared = [p.name for p in Path(by_hand).iterdir()]
            assert compared and all(
                (workdir / original / name).read_bytes() == (Path(by_hand) / name).read_bytes() for name in compared
            )
        elif original.endswith(".npy"):
            assert np.array_equal(np.load(workdir / original), np.load(by_hand))
        else:
            assert (workdir / original).read_bytes() == Path(by_hand).read_bytes(), original


REPORT_SECTIONS = {
    "1. Data": {"class_counts.png", "image_sizes.png", "samples.png"},
    "2. Augmentation": {"tta_views.png", "plain.png", "cr4_ds.png", "convroll4_doublescale_fs5.png", "probe.png"},
    "3. Training": {f"{run}.png" for run in ["plain", "plain_bag1", "cr4_ds", "convroll4_doublescale_fs5", "probe",
                                             "doublescale_pl_shard0", "doublescale_pl_shard1"]},
    "4. Models": {"models.csv", "models.png"},
    "5. Final model": {"confusion.png", "reliability.png", "thresholds.csv", "thresholds.png"},
    "6. Ensemble": {"ensemble.png"},
    "7. Ablation": {"ablation.csv", "ablation.png"},
    "8. Submission": {"top5.csv"},
}  # fmt: skip


def test_report_has_every_section(demo_run: Path) -> None:
    """`snakemake --report` renders one self-contained HTML file with every section, each with its caption."""
    workdir = demo_run
    result = run_snakemake(workdir, "--report", "report.html", "--", "final_submission")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (workdir / "report.html").read_text()
    found = re.search(r"\bcategories = (\{.*?\});\n", html, flags=re.S)
    files = re.search(r"\bresults = (\{.*?\});\n", html, flags=re.S)
    assert found and files, "the report's category and file tables were not found"
    categories, entries = json.loads(found.group(1)), json.loads(files.group(1))
    listed = {cat: {Path(p).name for sub in subs.values() for p in sub} for cat, subs in categories.items()}
    assert listed == REPORT_SECTIONS
    for path, entry in entries.items():
        assert entry["caption"].strip(), f"{path} has no caption"
        assert entry["data_uri"].startswith("data:"), f"{path} is not embedded (the report must be self-contained)"
    ablation = list(csv.DictReader((workdir / "results/report/ablation.csv").open()))
    assert [row["what"].split(" (")[0] for row in ablation] == [
        "best single model",
        "+ 35-view TTA",
        "uniform blend of 4 models",
        "weighted ensemble",
        "+ pseudo-labels",
        "+ calibration",
    ]  # fmt: skip  (the best single model is the probe, which is not fused: no fusion row)
    assert all(row["test_log_loss"] for row in ablation)  # the demo's hidden labels are known
    top5 = list(csv.DictReader((workdir / "results/submission/top5.csv").open()))
    assert len(top5) == 200 and float(top5[0]["prob_1"]) >= float(top5[0]["prob_2"])


# A user's `models:` replaces the demo's, so the lists naming models must name theirs.
ONLY_CONVROLL4 = (
    "fusion: {models: []}\nensemble: {models: [convroll4]}\npseudo_labels: {models: {}}\n"
    "submission: {source: ensemble, models: [convroll4]}\n"
)
ONE_SMALL_MODEL = """
models:
  plain: {architecture: plain, input_size: 24, params: {widths: [8, 16], dense: 32}, train: {steps: 40, batch_size: 16}}
tta: {views: 4}
fusion: {models: [plain], copies: 2, epochs: 5}
ensemble: {models: [plain]}
pseudo_labels: {models: {}}
submission: {source: ensemble, models: [plain]}
"""  # every stage but pseudo-labels, in seconds


def test_users_own_folder_of_pngs(tmp_path: Path, tiny_demo: Path) -> None:
    """`--configfile=mine.yaml final_submission` with data outside the demo folder, in another format (PNG), under a
    path with a space, a class folder and a test file whose names hold a comma, a space and non-ASCII letters."""
    import cv2

    demo = tiny_demo
    mydata = tmp_path / "my data"
    for jpg in [*demo.glob("train/*/*.jpg"), *demo.glob("test/*.jpg")]:
        png = mydata / jpg.relative_to(demo).with_suffix(".png")
        png.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(png), cv2.imread(str(jpg), cv2.IMREAD_GRAYSCALE))
    renamed_class = "copépod, large"
    first_class = sorted((mydata / "train").iterdir())[0]
    first_class.rename(mydata / "train" / renamed_class)
    first_test = sorted((mydata / "test").iterdir())[0]
    first_test.rename(mydata / "test" / "läppchen, 1.png")
    some_training_image = sorted((mydata / "train" / renamed_class).iterdir())[0]
    shutil.copy(some_training_image, mydata / "test" / "seen before.png")  # the same specimen in both sets
    workdir = workflow_copy(tmp_path / "wf")
    mine = f"data:\n  train_dir: '{mydata}/train'\n  test_dir: '{mydata}/test'\n"
    (workdir / "mine.yaml").write_text(ONE_SMALL_MODEL + mine)
    result = run_snakemake(workdir, "--cores", "2", "--configfile=mine.yaml", "final_submission", timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert not (workdir / "data" / "demo").exists()  # the demo generator did not run
    ids, classes, _ = read_submission(workdir / "results" / "submission" / "submission.csv.gz")
    assert len(ids) == 41 and all(i.endswith(".png") for i in ids)
    assert "läppchen, 1.png" in ids and renamed_class in classes
    report = json.loads((workdir / "results" / "data" / "test_report.json").read_text())
    assert report["copies_of_training_images"] == [["seen before.png", f"{renamed_class}/{some_training_image.name}"]]
    (run_log,) = (workdir / ".snakemake" / "log").glob("*.snakemake.log")
    assert re.search(r"  test: 41 images, \d+-\d+ px, 1 identical to training images", run_log.read_text())


def test_mistyped_key_is_named(tmp_path: Path) -> None:
    workdir = workflow_copy(tmp_path / "wf")
    (workdir / "typo.yaml").write_text("data:\n  trian_dir: /somewhere\n")
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "--configfile", "typo.yaml"], cwd=workdir, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "'trian_dir' was unexpected" in result.stderr + result.stdout


def test_preinit_is_a_dag_dependency_and_checked(tmp_path: Path) -> None:
    workdir = workflow_copy(tmp_path / "wf")
    (workdir / "pre.yaml").write_text(
        ONLY_CONVROLL4 + "models:\n  convroll4: {architecture: convroll4}\n"
        "  deep: {architecture: convroll5_preinit, preinit: convroll4, input_size: 15,"
        " params: {width: 0.125, depth: 2, dense: 16}}\n"
    )
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "-p", "--configfile=pre.yaml", "results/models/deep/model.pt"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "--preinit results/models/convroll4/model.pt" in result.stdout
    assert "results/models/convroll4/model.pt" in result.stdout.split("--preinit")[0]  # the source trains first
    (workdir / "bad.yaml").write_text(
        ONLY_CONVROLL4 + "models:\n  convroll4: {}\n  deep: {architecture: convroll5_preinit, preinit: nothere}\n"
    )
    result = subprocess.run([*SNAKEMAKE, "-n", "--configfile=bad.yaml"], cwd=workdir, capture_output=True, text=True)
    assert result.returncode != 0
    assert "models.deep.preinit: 'nothere' is not another entry" in result.stdout + result.stderr


def test_users_models_replace_the_demos(tmp_path: Path) -> None:
    """A --configfile with `models:` gets exactly its models: none of the demo's (nor their bags) join the DAG."""
    workdir = workflow_copy(tmp_path / "wf")
    (workdir / "mine.yaml").write_text(ONLY_CONVROLL4 + "models:\n  convroll4: {architecture: convroll4}\n")
    result = subprocess.run(
        [*SNAKEMAKE, "-n", "-p", "--configfile=mine.yaml", "all"], cwd=workdir, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    trained = sorted(set(re.findall(r"--out results/models/([^/]+)/model.pt", result.stdout)))
    assert trained == ["convroll4"]


def test_lint_is_clean() -> None:
    result = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in output, output
