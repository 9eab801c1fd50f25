"""`deepsea bundle` (the workflow's trained ensemble as one folder) and `deepsea classify` (new images with it)."""

from __future__ import annotations

import argparse

from deepsea.cli.common import AddCommand, claim_gpu


def _cmd_bundle(a: argparse.Namespace) -> None:
    from deepsea.deploy.bundle import write_bundle
    from deepsea.records import load_json_argument

    write_bundle(load_json_argument(a.recipe, "--recipe"), a.out, a.workdir)


def _cmd_classify(a: argparse.Namespace) -> None:
    from deepsea.deploy.classify import ClassifyOptions, classify
    from deepsea.deploy.pipeline import RunOptions

    claim_gpu(a.device)
    run = RunOptions(a.device, a.threads, a.batch_size, a.workers)
    options = ClassifyOptions(run, a.chunk, a.on_bad_image, a.all_probabilities, a.precision)
    classify(a.bundle, a.images, a.out, options)


def add_commands(add: AddCommand) -> None:
    p = add("bundle", _cmd_bundle, "copy the trained ensemble's models, fusion nets and weights into one folder")
    p.add_argument("--recipe", required=True, help="what to bundle, as JSON or a JSON file (the bundle rule's)")
    p.add_argument("--out", required=True, help="the bundle folder to write (replaced whole)")
    p.add_argument("--workdir", default=".", help="the workflow folder the recipe's paths are relative to")

    p = add("classify", _cmd_classify, "classify every image under a folder with a model bundle (no Snakemake)")
    p.add_argument("--bundle", required=True, help="a bundle folder (results/bundle, or a copy of it)")
    p.add_argument("--images", required=True, help="folder of images, any depth (ids: paths relative to it)")
    p.add_argument("--out", required=True, help="CSV to write; <out>.counts.csv and <out>.report.json beside it")
    p.add_argument("--all-probabilities", action="store_true", help="also every class's probability")
    p.add_argument(
        "--precision",
        type=float,
        help="label an image only where its class's validation predictions reach this precision at its probability "
        "(per-class thresholds), else 'unclassified' (default: keep every label)",
    )
    p.add_argument("--on-bad-image", choices=["error", "skip"], default="error", help="as data.on_bad_image")
    p.add_argument("--chunk", type=int, default=1024, help="images read and predicted together (memory)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--batch-size", type=int, default=128, help="views per forward pass")
    p.add_argument("--workers", type=int, default=0, help="processes warping views while the model predicts")
