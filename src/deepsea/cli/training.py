"""`deepsea train` (one model run, from explicit paths or a config's model by name) and `deepsea augment-grid`."""

from __future__ import annotations

import argparse
import logging

from deepsea.cli.common import AddCommand, add_orientation_options, claim_gpu, logged_orientation, orientation_of
from deepsea.errors import DeepseaError

log = logging.getLogger("deepsea")


def _cmd_train(a: argparse.Namespace) -> None:
    from deepsea.training.loop import train
    from deepsea.training.pseudo_labels import PseudoLabelInputs
    from deepsea.training.settings import load_model_settings

    if a.config or a.model:
        _train_from_config(a)
        return
    needed = {"--settings": a.settings, "--data": a.data, "--split": a.split, "--out": a.out, "--log-csv": a.log_csv}
    missing = [option for option, value in needed.items() if value is None]
    if missing:
        raise DeepseaError(
            f"train: {', '.join(missing)} missing. Give --settings, --data, --split, --out and --log-csv (what the "
            "workflow's rule passes), or --config FILE --model NAME to train a config's model by hand."
        )
    given = [a.test_data, a.shards, a.pseudo_labels]
    if any(given) and not all(given):
        raise DeepseaError("train: --test-data, --shards and --pseudo-labels go together (a pseudo-label model).")
    pseudo = PseudoLabelInputs(a.test_data, a.shards, a.pseudo_labels) if all(given) else None
    device = a.device or "auto"
    settings = load_model_settings(a.settings).with_orientation(orientation_of(a))
    claim_gpu(device)
    train(
        settings, a.data, a.split, a.out, a.log_csv,
        device_name=device, threads=a.threads or 1, preinit_path=a.preinit, pseudo_labels=pseudo,
    )  # fmt: skip


def _train_from_config(a: argparse.Namespace) -> None:
    """`deepsea train --config FILE --model NAME`: the model run as its Snakemake job would train it (settings,
    inputs, outputs and device from the config), for rerunning one stage by hand."""
    from pathlib import Path

    from deepsea.dag.config_loader import load_workflow_config
    from deepsea.dag.jobs import train_job
    from deepsea.training.loop import train
    from deepsea.training.pseudo_labels import PseudoLabelInputs
    from deepsea.training.settings import load_model_settings

    by_hand = {"--settings": a.settings, "--data": a.data, "--split": a.split, "--preinit": a.preinit,
               "--test-data": a.test_data, "--shards": a.shards, "--pseudo-labels": a.pseudo_labels,
               "--orientation": a.orientation, "--mirror": a.mirror, "--pack-report": a.pack_report}  # fmt: skip
    explicit = [option for option, value in by_hand.items() if value is not None]
    if explicit or not a.model:
        raise DeepseaError(
            "train: --config takes --model NAME and reads the model's settings and inputs from the config; "
            + (f"drop {', '.join(explicit)}." if explicit else "name the model with --model.")
        )
    workdir = Path(a.workdir)
    job = train_job(load_workflow_config(workdir, a.config or []), a.model)
    missing = job.missing_inputs(workdir)
    if missing:
        configfile = f" --configfile {' '.join(a.config)}" if a.config else ""
        raise DeepseaError(
            f"train --model {a.model}: {', '.join(missing)} not made yet; make them first: "
            f"snakemake --cores N{configfile} -- {' '.join(missing)}"
        )
    log.info("the workflow's job for %s: %s", a.model, job.command())
    paths = {key: str(workdir / path) for key, path in job.inputs.items()}
    out = Path(a.out) if a.out else workdir / job.out
    log_csv = a.log_csv or out.with_name("train_log.csv")
    device = a.device or job.device
    pseudo = PseudoLabelInputs(paths["test"], paths["shards"], paths["targets"]) if "test" in paths else None
    orientation = logged_orientation(job.orientation, job.mirror, paths["pack_report"])
    claim_gpu(device)
    train(
        load_model_settings(job.settings).with_orientation(orientation),
        paths["data"],
        paths["split"],
        out,
        log_csv,
        device_name=device,
        threads=a.threads or job.threads,
        preinit_path=paths.get("preinit"),
        pseudo_labels=pseudo,
    )
    if not a.out:  # the workflow's own model file: Snakemake compares it with what was made from it
        log.info("%s: if its bytes changed, snakemake's next run redoes what depends on it", job.out)


def _cmd_augment_grid(a: argparse.Namespace) -> None:
    from deepsea.report.augment_grid import augmentation_grid
    from deepsea.training.settings import load_model_settings

    settings = load_model_settings(a.settings).with_orientation(orientation_of(a))
    augmentation_grid(a.data, settings, a.out, n_images=a.n_images, n_samples=a.n_samples, seed=a.seed)


def add_commands(add: AddCommand) -> None:
    p = add(
        "train",
        _cmd_train,
        "train one model run: from explicit --settings and paths (what the workflow's rule passes), or a config's "
        "model by name (--config FILE --model NAME, as its Snakemake job would)",
    )
    by_name = p.add_argument_group("a config's model by name")
    by_name.add_argument(
        "--config",
        nargs="+",
        action="extend",
        metavar="FILE",
        help="config file(s) merged over the workflow's config.yaml, as snakemake --configfile (with --model)",
    )
    by_name.add_argument("--model", help="the model run to train (an entry, <entry>_bag<seed>, <pl>_shard<k>)")
    by_name.add_argument("--workdir", default=".", help="the workflow folder (Snakefile, config.yaml)")
    explicit = p.add_argument_group("explicit settings and files (what the workflow's rule passes)")
    explicit.add_argument("--settings", help="the model's settings as JSON, or a JSON file")
    explicit.add_argument("--data", help="packed training data (.npz)")
    explicit.add_argument("--split", help="split JSON the model trains on")
    explicit.add_argument("--preinit", help="trained model whose matching convolution layers initialise this one")
    pseudo = p.add_argument_group("a pseudo-label model's test images (with the explicit files)")
    pseudo.add_argument("--test-data", help="packed test images (.npz)")
    pseudo.add_argument("--shards", help="the test shards JSON (deepsea shard-test)")
    pseudo.add_argument("--pseudo-labels", help="the ensemble's test predictions (soft targets)")
    add_orientation_options(p)
    outputs = p.add_argument_group("outputs and where it runs (with --config: the job's unless given)")
    outputs.add_argument("--out", help="model file to write (model.pt; with --config: the workflow's)")
    outputs.add_argument("--log-csv", help="training log CSV to write (with --config: train_log.csv beside --out)")
    outputs.add_argument("--device", help="auto, cpu or cuda[:N] (default: auto; with --config: the config's device)")
    outputs.add_argument("--threads", type=int, help="torch threads (default 1; with --config: threads.train)")

    p = add("augment-grid", _cmd_augment_grid, "PNG grid of augmented training samples of one model entry")
    p.add_argument("--settings", required=True, help="the model's settings as JSON, or a JSON file")
    p.add_argument("--data", required=True, help="packed training data (.npz)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--n-images", type=int, default=8)
    p.add_argument("--n-samples", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    add_orientation_options(p)
