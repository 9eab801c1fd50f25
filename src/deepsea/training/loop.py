"""`deepsea train`: train one model entry on its split, with checkpoints that survive a kill.

The loop in the style of nanoGPT's train.py, no framework: SGD with Nesterov momentum (or Adam) as the original
Deep Sea code (its train_convnet.py), the learning rate dropped 10x at the configured fractions of the steps,
augmented batches produced by DataLoader workers while the model trains, an evaluation of the validation split every
`eval_every` steps into a CSV log, and a checkpoint every `checkpoint_every` steps and on SIGTERM (checkpoint.py).
A rerun with the same settings resumes from the checkpoint and ends with the same weights as an uninterrupted run
on CPU. A NaN or infinite loss stops training with an error; the last good checkpoint is kept. A pseudo-label
model (`pseudo_label.fraction` > 0, pseudo_labels.py) trains the same way on batches that mix in test images.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from deepsea.data.batches import AugmentedBatches, Normalisation, views_batch
from deepsea.data.imageset import LONGEST_SIDE_PERCENTILE, ImageSet, longest_side_p75
from deepsea.data.splits import Split
from deepsea.device import resolve_device
from deepsea.errors import DeepseaError, NonFiniteError
from deepsea.io import atomic_path, read_json
from deepsea.nets.efficientnet_lite import EfficientNetLite
from deepsea.nets.pretrained_weights import load_pretrained
from deepsea.nets.registry import PRETRAINED_NETS, Network, build_model
from deepsea.training.checkpoint import Checkpoint, sigterm_requests_stop, training_fingerprint
from deepsea.training.model_file import copy_early_layers, save_model
from deepsea.training.probe import fit_probe
from deepsea.training.pseudo_labels import (
    PseudoLabelBatches,
    PseudoLabelInputs,
    PseudoLabelPool,
    load_pseudo_label_pool,
    pseudo_labelled_per_batch,
)
from deepsea.training.settings import ModelSettings, auto_size_range
from deepsea.training.snapshots import snapshot_steps, weights_copy

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
    """SGD with Nesterov momentum (or Adam) over the model's parameter groups where it defines them (a pretrained
    backbone's `lr_scale` below its new head's: nets/resnet.py), else over all its parameters."""
    t = settings.train
    groups = model.param_groups() if isinstance(model, PRETRAINED_NETS) else [{"params": list(model.parameters())}]
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.learning_rate, weight_decay=t.weight_decay)
    return torch.optim.SGD(groups, lr=t.learning_rate, momentum=t.momentum, nesterov=True, weight_decay=t.weight_decay)


def split_images(data: ImageSet, split_path: str | os.PathLike[str]) -> tuple[ImageSet, ImageSet]:
    """(training images, validation images) of a split file."""
    split = Split.from_json(read_json(split_path), str(split_path))
    return (
        data.subset(data.index_of(split.train_ids, str(split_path))),
        data.subset(data.index_of(split.valid_ids, str(split_path))),
    )


@torch.no_grad()
def evaluate_centre(
    model: Network, images: ImageSet, norm: Normalisation, device: torch.device, batch_size: int = 256
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


@dataclass
class _Run:
    """Everything one training run is made of, built in the order that fixes its random draws."""

    settings: ModelSettings
    device: torch.device
    class_names: list[str]
    train_set: ImageSet
    valid_set: ImageSet
    model: Network
    norm: Normalisation
    pool: PseudoLabelPool | None
    optimizer: torch.optim.Optimizer
    checkpoint: Checkpoint


def _fit_to_data(settings: ModelSettings, data: ImageSet, train_set: ImageSet) -> ModelSettings:
    """What the entry leaves to the data: the steps of `train.epochs` (this run's training images), the pixels of
    `input_size: auto` (all packed training images, as the pack report: settings.py), logged, and recorded in the
    model file with the settings."""
    p75 = longest_side_p75(data.shapes)
    fitted = settings.with_steps(len(train_set)).with_input_size(p75)
    if settings.input_size == "auto":
        log.info(
            "model %s: input_size auto -> %d px (percentile %d of the %d training images' longest side: %.0f px, "
            "within %d-%d px, rounded to a size %s takes)",
            settings.name,
            fitted.pixels,
            LONGEST_SIDE_PERCENTILE,
            len(data),
            p75,
            *auto_size_range(settings.architecture),
            settings.architecture,
        )
    return fitted


def _build_run(
    settings: ModelSettings,
    data_path: str | os.PathLike[str],
    split_path: str | os.PathLike[str],
    out_model: Path,
    *,
    device: torch.device,
    preinit_path: str | os.PathLike[str] | None,
    pseudo_labels: PseudoLabelInputs | None,
) -> _Run:
    """Data, split, network (its initialisation draws from the seeded RNG), normalisation, optional preinit and
    pseudo-labels, optimiser and the checkpoint that belongs to exactly this run."""
    data = ImageSet.load(data_path)
    train_set, valid_set = split_images(data, split_path)
    settings = _fit_to_data(settings, data, train_set)
    model = build_model(
        settings.architecture, len(data.class_names), settings.pixels, settings.params, f"models.{settings.name}"
    ).to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # NHWC, as predict.py: oneDNN and cuDNN convolve it faster
    norm = Normalisation.fit(train_set, model.inputs[0])
    if isinstance(model, PRETRAINED_NETS):  # a pretrained entry starts from its backbone's weights (none: scratch)
        load_pretrained(model, model.weights, model.backbone, f"models.{settings.name}")
    if isinstance(model, EfficientNetLite):  # it undoes the data's standardisation to see ImageNet's input scale
        model.set_input_normalisation(norm.mean, norm.std)
    if preinit_path is not None:
        copy_early_layers(model, preinit_path, settings)
    pool = load_pseudo_label_pool(settings, pseudo_labels, data.class_names)
    optimizer = make_optimizer(settings, model)
    checkpoint = Checkpoint(
        out_model.with_name("checkpoint.pt"), training_fingerprint(settings, train_set.ids.tolist(), pool)
    )
    return _Run(settings, device, data.class_names, train_set, valid_set, model, norm, pool, optimizer, checkpoint)


def _log_plan(run: _Run, balanced_steps: int, keep_at: set[int]) -> None:
    s, t = run.settings, run.settings.train
    labelled_per_batch = t.batch_size
    if run.pool is not None:
        labelled_per_batch -= pseudo_labelled_per_batch(s.pseudo_label.fraction, t.batch_size)
    log.info(
        "model %s: %s, %d parameters, %d training / %d validation images, %d steps of %d on %s (%.1f epochs "
        "of the training images)",
        s.name,
        s.architecture,
        sum(p.numel() for p in run.model.parameters()),
        len(run.train_set),
        len(run.valid_set),
        t.steps,
        t.batch_size,
        run.device,
        t.steps * labelled_per_batch / max(1, len(run.train_set)),
    )
    if balanced_steps:
        log.info(
            "class-balanced batches for the first %d of %d steps (train.balanced_until %g), then the true class "
            "distribution",
            balanced_steps,
            t.steps,
            t.balanced_until,
        )
    if keep_at:
        log.info("snapshot ensemble: the weights after steps %s and the final ones", sorted(keep_at))


def _batches(run: _Run, balanced_steps: int) -> AugmentedBatches | PseudoLabelBatches:
    """The augmented training batches, by step; a pseudo-label model's mix in test images with soft targets."""
    s, inputs = run.settings, run.model.inputs
    if run.pool is None:
        return AugmentedBatches(
            run.train_set, inputs, s.train.batch_size, s.augmentation, run.norm, seed=s.seed,
            balanced_steps=balanced_steps,
        )  # fmt: skip
    return PseudoLabelBatches(
        run.train_set,
        run.pool,
        inputs,
        s.train.batch_size,
        s.pseudo_label.fraction,
        ranges=s.augmentation,
        norm=run.norm,
        seed=s.seed,
        balanced_steps=balanced_steps,
    )


@dataclass
class _Running:
    """Training loss and accuracy since the last evaluation (augmented batches, dropout on)."""

    loss: float = 0.0
    correct: int = 0
    count: int = 0
    per_batch: int = 1

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        target = y if y.ndim == 1 else y.argmax(dim=1)  # soft targets (pseudo-labels): their most likely class
        self.loss, self.count, self.per_batch = self.loss + loss.item(), self.count + 1, len(target)
        self.correct += int((logits.detach().argmax(dim=1).cpu() == target).sum())


def _train_step(
    run: _Run, x: list[torch.Tensor], y: torch.Tensor, step: int, autocast: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, loss, backward, (clip,) update; returns the logits and refuses a non-finite loss."""
    t = run.settings.train
    with autocast:
        logits = run.model(*[xi.to(run.device, non_blocking=True) for xi in x])
    loss = F.cross_entropy(logits.float(), y.to(run.device))  # y: class indices, or soft targets (B, classes)
    if not torch.isfinite(loss):
        raise NonFiniteError(
            f"models.{run.settings.name}: the training loss became {loss.item()} at step {step}. Lower "
            f"train.learning_rate (now {t.learning_rate}), add train.weight_decay or set train.max_grad_norm "
            f"(e.g. 5); the last good checkpoint is kept at {run.checkpoint.path}, delete it to start over."
        )
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if t.max_grad_norm > 0:
        nn.utils.clip_grad_norm_(run.model.parameters(), t.max_grad_norm)
    run.optimizer.step()
    return loss, logits


def _evaluation_row(run: _Run, running: _Running, done: int, n_train: int, began: float) -> list[Any]:
    """Validate the centre views and make the log row: step, epoch, lr, train loss and accuracy, valid loss and
    accuracy, seconds."""
    valid_loss, valid_acc = evaluate_centre(run.model, run.valid_set, run.norm, run.device)
    epoch = round(done * n_train / len(run.train_set), 3)  # epochs of the training images
    lr = float(f"{learning_rate(run.settings, done - 1):.6g}")
    seconds = round(time.monotonic() - began, 1)
    train_acc = round(running.correct / (running.count * running.per_batch), 4)
    log.info(
        "step %d: train loss %.4f, valid loss %.4f, valid accuracy %.3f",
        done,
        running.loss / running.count,
        valid_loss,
        valid_acc,
    )
    return [done, epoch, lr, running.loss / running.count, train_acc, valid_loss, valid_acc, seconds]


def _bar_postfix(row: list[Any]) -> dict[str, str]:
    """The progress bar's losses, from a log row (LOG_COLUMNS)."""
    named = dict(zip(LOG_COLUMNS, row, strict=True))
    return {"loss": f"{named['train_loss']:.3f}", "valid": f"{named['valid_loss']:.3f}"}


def _steps(batches: AugmentedBatches | PseudoLabelBatches, start_step: int, settings: ModelSettings) -> tqdm:
    """The batches of steps start_step.. made by DataLoader workers while the model trains, with a progress bar."""
    t = settings.train
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
    return tqdm(loader, total=t.steps, initial=start_step, desc=f"train {settings.name}", unit="step", mininterval=5.0)


def train(
    settings: ModelSettings,
    data_path: str | os.PathLike[str],
    split_path: str | os.PathLike[str],
    out_model: str | os.PathLike[str],
    out_log: str | os.PathLike[str],
    *,
    device_name: str = "auto",
    threads: int = 1,
    preinit_path: str | os.PathLike[str] | None = None,
    pseudo_labels: PseudoLabelInputs | None = None,
) -> None:
    """Train `settings` on the split's training images; write the model and the CSV training log.

    `preinit_path`: a trained model whose convolution layers initialise this model's matching layers (the original's
    "preinit" models). `pseudo_labels`: where the test images, shards and the ensemble's test probabilities are."""
    torch.set_num_threads(max(1, threads))
    torch.manual_seed(settings.seed)
    device = resolve_device(device_name)
    run = _build_run(
        settings, data_path, split_path, Path(out_model), device=device, preinit_path=preinit_path,
        pseudo_labels=pseudo_labels,
    )  # fmt: skip
    settings, t = run.settings, run.settings.train  # the length resolved for the data (epochs -> steps)
    if settings.architecture == "probe":  # fitted, not trained by steps
        return _fit_probe(run, Path(out_model), out_log)
    balanced_steps = round(t.balanced_until * t.steps)
    keep_at = set(snapshot_steps(t.steps, t.snapshots, t.snapshot_from)[:-1])  # the last: the final model
    _log_plan(run, balanced_steps, keep_at)
    progress = run.checkpoint.resume(run.model, run.optimizer, device)
    start_step = progress.step
    steps = _steps(batches := _batches(run, balanced_steps), start_step, settings)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=t.bf16 and device.type == "cuda")
    run.model.train()
    running, began = _Running(), time.monotonic()
    with sigterm_requests_stop() as stop:
        for step, (x, y) in enumerate(steps, start=start_step):
            # set the learning rate, then forward, backward and update
            for group in run.optimizer.param_groups:
                group["lr"] = learning_rate(settings, step) * group.get("lr_scale", 1.0)
            loss, logits = _train_step(run, x, y, step, autocast)
            running.add(loss, logits, y)
            progress.step = done = step + 1
            # keep a snapshot of the weights
            if done in keep_at:
                progress.snapshots[done] = weights_copy(run.model)
            # evaluate on validation and log
            if done % t.eval_every == 0 or done == t.steps:
                progress.rows.append(_evaluation_row(run, running, done, batches.n_train, began))
                steps.set_postfix(_bar_postfix(progress.rows[-1]))
                running = _Running()
            # checkpoint, and stop where SIGTERM asked to
            if done % t.checkpoint_every == 0 and done < t.steps or stop["requested"]:
                run.checkpoint.save(progress, run.model, run.optimizer, device)
            if stop["requested"]:
                raise DeepseaError(f"stopped by SIGTERM at step {done}; rerun to resume from {run.checkpoint.path}.")
    write_log(out_log, progress.rows)
    save_model(out_model, run.model, settings, run.norm, run.class_names, steps=t.steps, snapshots=progress.snapshots)
    run.checkpoint.remove()
    log.info("model %s trained in %.0f s -> %s", settings.name, time.monotonic() - began, out_model)


def _fit_probe(run: _Run, out_model: Path, out_log: str | os.PathLike[str]) -> None:
    """A linear probe is fitted, not trained by steps (training/probe.py); its log has one row, as a model
    evaluated once at the end."""
    assert isinstance(run.model, EfficientNetLite)
    began = time.monotonic()
    s = run.settings
    fit = fit_probe(run.model, run.train_set, run.norm, run.device, ranges=s.augmentation,
                    train_views=run.model.train_views, seed=s.seed)  # fmt: skip
    valid_loss, valid_acc = evaluate_centre(run.model, run.valid_set, run.norm, run.device)
    seconds = round(time.monotonic() - began, 1)
    write_log(out_log, [[1, 1.0, 0.0, fit.train_loss, round(fit.train_accuracy, 4), valid_loss, valid_acc, seconds]])
    save_model(out_model, run.model, s, run.norm, run.class_names, steps=1)
    log.info("model %s (linear probe) fitted in %.0f s -> %s", s.name, seconds, out_model)


def write_log(path: str | os.PathLike[str], rows: list[list[Any]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(LOG_COLUMNS)
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue())
