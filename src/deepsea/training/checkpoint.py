"""Checkpoints of a training run, so that a killed job resumes where it stopped and ends with the same weights.

A checkpoint holds the step, the weights, the optimiser's state, the RNG states, the log rows and the snapshots
kept so far, under a fingerprint of what the run trains on (its settings, its training ids, its pseudo-labels). A
checkpoint with another fingerprint belongs to another run and is ignored. SIGTERM (what SLURM and Snakemake send
before killing a job) is turned into a checkpoint at the end of the current step.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepsea.io import atomic_path
from deepsea.training.pseudo_labels import PseudoLabelPool
from deepsea.training.settings import ModelSettings

log = logging.getLogger(__name__)


def training_fingerprint(settings: ModelSettings, train_ids: list[str], pool: PseudoLabelPool | None = None) -> str:
    """Identifies what a checkpoint was trained on; a checkpoint with another fingerprint is not resumed."""
    digest = hashlib.sha256(settings.to_json().encode())
    digest.update("\n".join(train_ids).encode())
    if pool is not None:  # new pseudo-labels (a changed ensemble) make a new model
        digest.update("\n".join(pool.images.ids.tolist()).encode())
        digest.update(np.ascontiguousarray(pool.targets).tobytes())
    return digest.hexdigest()


@dataclass
class Progress:
    """What a run has done so far: the next step, the log rows and the snapshot weights kept, by step."""

    step: int = 0
    rows: list[list[Any]] = field(default_factory=list)
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint file of one run (beside its model file) and the run's fingerprint."""

    path: Path
    fingerprint: str

    def resume(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> Progress:
        """Restore model, optimiser and RNG states from the checkpoint if it is this run's; the progress made."""
        if not self.path.exists():
            return Progress()
        # onto the CPU: the RNG states must stay CPU tensors (mapped onto a GPU, set_rng_state refuses them), and
        # load_state_dict moves the weights and the optimiser's buffers to their parameters' device
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") != self.fingerprint:
            log.warning("ignoring %s: it was made with other settings or another split", self.path)
            return Progress()
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)  # dropout's draws on the GPU
        log.info("resuming from %s at step %d", self.path, state["step"])
        return Progress(state["step"], state["log_rows"], state.get("snapshots", {}))

    def save(
        self, progress: Progress, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
    ) -> None:
        with atomic_path(self.path) as tmp:
            torch.save(
                {
                    "fingerprint": self.fingerprint,
                    "step": progress.step,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "log_rows": progress.rows,
                    "snapshots": progress.snapshots,
                },
                tmp,
            )

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def sigterm_requests_stop() -> Iterator[dict[str, bool]]:
    """While the block runs, SIGTERM sets `flag["requested"]` instead of killing the process; the loop then
    checkpoints and stops at the end of its step."""
    flag = {"requested": False}
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: flag.update(requested=True))
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
