"""Stage 4, `deepsea train`: train one model entry on its split, with checkpoints that survive a kill.

The loop (one screen, no framework): SGD with Nesterov momentum (or Adam), learning rate dropped 10x at the
configured fractions of the steps, augmented batches produced by DataLoader workers while the model trains, an
evaluation of the validation split every `eval_every` steps into a CSV log, and a checkpoint every
`checkpoint_every` steps (and on SIGTERM). A rerun with the same settings resumes from the checkpoint and ends
with the same weights as an uninterrupted run on CPU; a checkpoint made with other settings is ignored.
A NaN or infinite loss stops training with an error; the last good checkpoint is kept. A pseudo-label model
(`pseudo_label.fraction` > 0, `pseudo_labels.py`) trains the same way on batches that mix in test images.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from deepsea.data import AugmentedBatches, Normalisation, views_batch
from deepsea.device import resolve_device
from deepsea.errors import DeepseaError, NonFiniteError
from deepsea.imageset import ImageSet
from deepsea.io import atomic_path, read_json
from deepsea.models.registry import build_model
from deepsea.pseudo_labels import (
    PseudoLabelBatches,
    PseudoLabelInputs,
    PseudoLabelPool,
    load_pseudo_label_pool,
    pseudo_labelled_per_batch,
)
from deepsea.settings import ModelSettings, from_dict
from deepsea.snapshots import snapshot_steps, weights_copy
from deepsea.splits import Split

log = logging.getLogger(__name__)

LOG_COLUMNS = [
    "step", "epoch", "learning_rate", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "seconds"
]  # fmt: skip


def learning_rate(settings: ModelSettings, step: int) -> float:
    """Step schedule: the base rate divided by 10 for every drop fraction already passed."""
    t = settings.train
    drops = sum(step >= int(f * t.steps) for f in t.lr_drops)
    return t.learning_rate * 0.1**drops


def make_optimizer(settings: ModelSettings, model: nn.Module) -> torch.optim.Optimizer:
    t = settings.train
    if t.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=t.learning_rate, momentum=t.momentum, nesterov=True, weight_decay=t.weight_decay
    )


def training_fingerprint(settings: ModelSettings, train_ids: list[str], pool: PseudoLabelPool | None = None) -> str:
    """Identifies what a checkpoint was trained on; a checkpoint with another fingerprint is not resumed."""
    digest = hashlib.sha256(settings.to_json().encode())
    digest.update("\n".join(train_ids).encode())
    if pool is not None:  # new pseudo-labels (a changed ensemble) make a new model
        digest.update("\n".join(pool.images.ids.tolist()).encode())
        digest.update(np.ascontiguousarray(pool.targets).tobytes())
    return digest.hexdigest()


def split_images(data: ImageSet, split_path: str | os.PathLike[str]) -> tuple[ImageSet, ImageSet]:
    """(training images, validation images) of a split file."""
    split = Split.from_json(read_json(split_path), str(split_path))
    return (
        data.subset(data.index_of(split.train_ids, str(split_path))),
        data.subset(data.index_of(split.valid_ids, str(split_path))),
    )


@torch.no_grad()
def evaluate_centre(
    model: nn.Module, images: ImageSet, norm: Normalisation, device: torch.device, batch_size: int = 256
) -> tuple[float, float]:
    """Validation (log loss, accuracy) on centre views; NaN when the split has no validation images."""
    if len(images) == 0:
        return float("nan"), float("nan")
    model.eval()
    losses, correct = 0.0, 0
    for start in range(0, len(images), batch_size):
        idx = np.arange(start, min(start + batch_size, len(images)))
        logits = model(*[x.to(device) for x in views_batch(images, idx, model.inputs, norm)]).float()
        y = torch.from_numpy(images.labels[idx].astype(np.int64)).to(device)
        losses += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    model.train()
    return losses / len(images), correct / len(images)


class _StopRequested(Exception):
    pass


def train(
    settings: ModelSettings,
    data_path: str | os.PathLike[str],
    split_path: str | os.PathLike[str],
    out_model: str | os.PathLike[str],
    out_log: str | os.PathLike[str],
    device_name: str = "auto",
    threads: int = 1,
    preinit_path: str | os.PathLike[str] | None = None,
    pseudo_labels: PseudoLabelInputs | None = None,
) -> None:
    """Train `settings` on the split's training images; write the model and the CSV training log.

    `preinit_path`: a trained model whose convolution layers initialise this model's matching layers (seed 000's
    "preinit" models started from convroll4's first layers). `pseudo_labels`: where the test images, their
    shards and the ensemble's test probabilities are, for a model with `pseudo_label.fraction` > 0."""
    torch.set_num_threads(max(1, threads))
    torch.manual_seed(settings.seed)
    device = resolve_device(device_name)
    out_model = Path(out_model)
    checkpoint_path = out_model.with_name("checkpoint.pt")

    data = ImageSet.load(data_path)
    train_set, valid_set = split_images(data, split_path)
    t = settings.train
    model = build_model(
        settings.architecture, len(data.class_names), settings.input_size, settings.params, f"models.{settings.name}"
    ).to(device, memory_format=torch.channels_last)  # NHWC, as predict.py: oneDNN and cuDNN convolve it faster
    norm = Normalisation.fit(train_set, model.inputs[0])
    if preinit_path is not None:
        copy_early_layers(model, preinit_path, settings)
    pool = load_pseudo_label_pool(settings, pseudo_labels, data.class_names)
    optimizer = make_optimizer(settings, model)
    fingerprint = training_fingerprint(settings, train_set.ids.tolist(), pool)
    labelled_per_batch = t.batch_size
    if pool is not None:
        labelled_per_batch -= pseudo_labelled_per_batch(settings.pseudo_label.fraction, t.batch_size)
    log.info(
        "model %s: %s, %d parameters, %d training / %d validation images, %d steps of %d on %s (%.1f epochs "
        "of the training images)",
        settings.name,
        settings.architecture,
        sum(p.numel() for p in model.parameters()),
        len(train_set),
        len(valid_set),
        t.steps,
        t.batch_size,
        device,
        t.steps * labelled_per_batch / max(1, len(train_set)),
    )
    balanced_steps = round(t.balanced_until * t.steps)
    if balanced_steps:
        log.info(
            "class-balanced batches for the first %d of %d steps (train.balanced_until %g), then the true class "
            "distribution",
            balanced_steps,
            t.steps,
            t.balanced_until,
        )

    keep_at = set(snapshot_steps(t.steps, t.snapshots, t.snapshot_from)[:-1])  # the last: the final model
    if keep_at:
        log.info("snapshot ensemble: the weights after steps %s and the final ones", sorted(keep_at))
    start_step, rows, snapshots = 0, [], {}
    if checkpoint_path.exists():
        # onto the CPU: the RNG states must stay CPU tensors (mapped onto a GPU, set_rng_state refuses them), and
        # load_state_dict moves the weights and the optimiser's buffers to their parameters' device
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], device)  # dropout's draws on the GPU
            start_step, rows, snapshots = state["step"], state["log_rows"], state.get("snapshots", {})
            log.info("resuming from %s at step %d", checkpoint_path, start_step)
        else:
            log.warning("ignoring %s: it was made with other settings or another split", checkpoint_path)

    def save_checkpoint(step: int) -> None:
        with atomic_path(checkpoint_path) as tmp:
            torch.save(
                {
                    "fingerprint": fingerprint,
                    "step": step,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "log_rows": rows,
                    "snapshots": snapshots,
                },
                tmp,
            )

    stop = {"requested": False}
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    batches: AugmentedBatches | PseudoLabelBatches = (
        AugmentedBatches(
            train_set, model.inputs, t.batch_size, settings.augmentation, norm, settings.seed, balanced_steps
        )
        if pool is None
        else PseudoLabelBatches(
            train_set,
            pool,
            model.inputs,
            t.batch_size,
            settings.pseudo_label.fraction,
            settings.augmentation,
            norm,
            settings.seed,
            balanced_steps,
        )
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=t.bf16 and device.type == "cuda")
    # The loader gets its own generator: creating an iterator draws a seed from it, and drawing from the global
    # RNG instead would shift the dropout masks of a resumed run away from those of an uninterrupted one.
    loader = DataLoader(
        batches,
        sampler=range(start_step, t.steps),
        batch_size=None,
        num_workers=t.workers,
        prefetch_factor=4 if t.workers > 0 else None,
        generator=torch.Generator().manual_seed(settings.seed),
    )
    model.train()
    running, correct, count, began = 0.0, 0, 0, time.monotonic()
    step = start_step
    try:
        progress = tqdm(
            loader, total=t.steps, initial=start_step, desc=f"train {settings.name}", unit="step", mininterval=5.0
        )
        for step, (x, y) in enumerate(progress, start=start_step):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(settings, step)
            with autocast:
                logits = model(*[xi.to(device, non_blocking=True) for xi in x])
            loss = F.cross_entropy(logits.float(), y.to(device))  # y: class indices, or soft targets (B, classes)
            if not torch.isfinite(loss):
                raise NonFiniteError(
                    f"models.{settings.name}: the training loss became {loss.item()} at step {step}. Lower "
                    f"train.learning_rate (now {t.learning_rate}), add train.weight_decay or set "
                    f"train.max_grad_norm (e.g. 5); the last good checkpoint "
                    f"is kept at {checkpoint_path}, delete it to start over."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if t.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
            optimizer.step()
            running, count = running + loss.item(), count + 1
            target = y if y.ndim == 1 else y.argmax(dim=1)  # soft targets (pseudo-labels): their most likely class
            correct += int((logits.detach().argmax(dim=1).cpu() == target).sum())
            done = step + 1
            if done in keep_at:
                snapshots[done] = weights_copy(model)
            if done % t.eval_every == 0 or done == t.steps:
                valid_loss, valid_acc = evaluate_centre(model, valid_set, norm, device)
                epoch = round(done * batches.n_train / len(train_set), 3)  # epochs of the training images
                lr = float(f"{learning_rate(settings, step):.6g}")
                seconds = round(time.monotonic() - began, 1)
                train_acc = round(correct / (count * len(target)), 4)  # augmented batches, dropout on
                rows.append([done, epoch, lr, running / count, train_acc, valid_loss, valid_acc, seconds])
                progress.set_postfix(loss=f"{running / count:.3f}", valid=f"{valid_loss:.3f}")
                log.info(
                    "step %d: train loss %.4f, valid loss %.4f, valid accuracy %.3f",
                    done,
                    running / count,
                    valid_loss,
                    valid_acc,
                )
                running, correct, count = 0.0, 0, 0
            if done % t.checkpoint_every == 0 and done < t.steps:
                save_checkpoint(done)
            if stop["requested"]:
                save_checkpoint(done)
                raise _StopRequested
    except _StopRequested:
        raise DeepseaError(f"stopped by SIGTERM at step {step + 1}; rerun to resume from {checkpoint_path}.") from None
    finally:
        signal.signal(signal.SIGTERM, previous_handler)

    write_log(out_log, rows)
    save_model(out_model, model, settings, norm, data.class_names, t.steps, snapshots)
    checkpoint_path.unlink(missing_ok=True)
    log.info("model %s trained in %.0f s -> %s", settings.name, time.monotonic() - began, out_model)


def copy_early_layers(model: nn.Module, source_path: str | os.PathLike[str], settings: ModelSettings) -> None:
    """Copy the convolution parameters of `source_path` into `model` wherever name and shape match."""
    if not Path(source_path).is_file():
        raise DeepseaError(f"models.{settings.name}.preinit: {source_path} not found; train that model first.")
    source = torch.load(source_path, map_location="cpu", weights_only=False)["state_dict"]
    own = model.state_dict()
    copied = {k: v for k, v in source.items() if ".features." in k and k in own and own[k].shape == v.shape}
    if not copied:
        raise DeepseaError(
            f"models.{settings.name}.preinit: no convolution layer of {source_path} matches this architecture "
            "(names and shapes must agree); pre-initialise from a model of the same family and widths."
        )
    model.load_state_dict(copied, strict=False)
    log.info(
        "pre-initialised %d tensors (%d parameters) from %s",
        len(copied),
        sum(v.numel() for v in copied.values()),
        source_path,
    )


def write_log(path: str | os.PathLike[str], rows: list[list[Any]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(LOG_COLUMNS)
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue())


def save_model(
    path: str | os.PathLike[str],
    model: nn.Module,
    settings: ModelSettings,
    norm: Normalisation,
    class_names: list[str],
    steps: int,
    snapshots: dict[int, dict[str, torch.Tensor]] | None = None,
) -> None:
    """`snapshots`: earlier weights of the run by step (`train.snapshots`), stored only when there are any."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    saved = {
        "state_dict": state,
        "settings": settings.to_dict(),
        "normalisation": asdict(norm),
        "class_names": class_names,
        "steps": steps,
    }
    if snapshots:
        saved["snapshots"] = {step: snapshots[step] for step in sorted(snapshots)}
    # through a file object: torch.save names the archive's records after a path it is given (here the random
    # temporary name), which made two identical trainings write different bytes
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(saved, handle)


def load_model(
    path: str | os.PathLike[str], device: torch.device
) -> tuple[nn.Module, ModelSettings, Normalisation, list[str]]:
    """A trained model ready for inference, with its settings, normalisation and class names."""
    model, settings, norm, class_names, _ = load_model_and_snapshots(path, device)
    return model, settings, norm, class_names


def load_model_and_snapshots(
    path: str | os.PathLike[str], device: torch.device
) -> tuple[nn.Module, ModelSettings, Normalisation, list[str], dict[int, nn.Module]]:
    """`load_model`'s four, then the earlier networks of a snapshot ensemble (`train.snapshots`) by step (none for
    an ordinary model), from one read of the file."""
    if not Path(path).is_file():
        raise DeepseaError(f"{path}: trained model not found. Run `snakemake {path}` first.")
    state = torch.load(path, map_location="cpu", weights_only=False)
    settings = from_dict(ModelSettings, state["settings"], str(path))
    model = _network(settings, state, state["state_dict"], device)
    snapshots = {
        step: _network(settings, state, weights, device) for step, weights in state.get("snapshots", {}).items()
    }
    return model, settings, Normalisation(**state["normalisation"]), state["class_names"], snapshots


def _network(settings: ModelSettings, state: dict[str, Any], weights: dict, device: torch.device) -> nn.Module:
    model = build_model(
        settings.architecture,
        len(state["class_names"]),
        settings.input_size,
        settings.params,
        f"models.{settings.name}",
    )
    model.load_state_dict(weights)
    return model.to(device).eval()
