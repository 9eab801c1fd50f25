"""What every `deepsea` command group shares: how a command is registered, and the GPU claim of GPU commands."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from deepsea.errors import ConfigError

if TYPE_CHECKING:
    from deepsea.data.orientation import Orientation

Handler = Callable[[argparse.Namespace], None]
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


def claim_gpu(device: str) -> None:
    """On a multi-GPU workstation (DEEPSEA_GPU_SLOTS set by the workflow), take one free GPU before CUDA starts."""
    from deepsea.dag.gpu_slots import claim_gpu_slot, slots_from_environment

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


def add_orientation_options(parser: argparse.ArgumentParser) -> None:
    """`--orientation`, `--mirror`, `--pack-report`: how the command turns and mirrors images (data.orientation and
    data.mirror of the config; auto decides from the training images' pack report, data/orientation.py)."""
    from deepsea.data.orientation import MIRRORS, ORIENTATIONS

    group = parser.add_argument_group("orientation (the config's data.orientation and data.mirror)")
    group.add_argument("--orientation", choices=ORIENTATIONS, help="default free: any angle")
    group.add_argument("--mirror", choices=MIRRORS, help="default auto: mirror unless upright")
    group.add_argument("--pack-report", help="the training images' pack report (needed for --orientation auto)")


def logged_orientation(setting: str, mirror: str, pack_report: str | None) -> Orientation:
    """data.orientation and data.mirror resolved for the training images (data/orientation.py), and logged."""
    from deepsea.data.orientation import read_orientation

    orientation = read_orientation(setting, mirror, pack_report)
    logging.getLogger("deepsea").info("%s", orientation.describe())
    return orientation


def orientation_of(a: argparse.Namespace) -> Orientation:
    """The orientation the options ask for, resolved and logged."""
    return logged_orientation(a.orientation or "free", a.mirror or "auto", a.pack_report)
