"""What every `deepsea` command group shares: how a command is registered, and the GPU claim of GPU commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from deepsea.errors import ConfigError

Handler = Callable[[argparse.Namespace], None]
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


def claim_gpu(device: str) -> None:
    """On a multi-GPU workstation (DEEPSEA_GPU_SLOTS set by the workflow), take one free GPU before CUDA starts."""
    from deepsea.workflow.gpu_slots import claim_gpu_slot, slots_from_environment

    slots = slots_from_environment()
    if slots and device.startswith("cuda:"):
        raise ConfigError(
            f"device: '{device}' with GPU slots: each job sees only the GPU it was given, as cuda:0; "
            "use device: auto (or cuda)."
        )
    if slots and device != "cpu":
        claim_gpu_slot(slots)


def add_prediction_out(parser: argparse.ArgumentParser) -> None:
    """`--out PRED.npy [PRED.meta.json]`: a rule passes every file it declares (`--out {output}`), so the meta file
    that `Predictions.save` writes beside the .npy is named by the rule too."""
    parser.add_argument(
        "--out", required=True, nargs="+", metavar="FILE", help="predictions .npy to write, optionally its .meta.json"
    )


def prediction_out(files: list[str]) -> str:
    """The .npy of `--out`, once any second file given is checked to be its meta file."""
    from deepsea.predictions import meta_path

    npy, *rest = files
    if len(rest) > 1 or (rest and Path(rest[0]) != meta_path(npy)):
        raise ConfigError(f"--out: give the predictions .npy and at most its meta file {meta_path(npy)}, not {files}.")
    return npy
