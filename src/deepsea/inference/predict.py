"""`deepsea predict`: class probabilities of a trained model for one subset, averaged over TTA views.

For every image the model sees all test-time views (views.py) plus the plain centre view; the views' predictions
are averaged (arithmetic, geometric or logit mean) into `<out>` and the centre view alone goes to `<out_centre>`, so
the gain of TTA is measured on the same run. Work is streamed: a DataLoader's worker processes warp chunks of
`tta.chunk_images` images x all views (the same `views_batch` as training, no second implementation) while the
model predicts the previous chunk in batches of `batch_size`, so memory does not grow with the number of images.
Both are written as `Predictions` (float32, images x classes, with a .meta.json of ids, classes and the views),
atomically.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from deepsea.data.augment import CENTRE_VIEW, AffineParams, InputSpec
from deepsea.data.batches import Normalisation, views_batch
from deepsea.data.imageset import ImageSet
from deepsea.data.splits import Split
from deepsea.device import resolve_device
from deepsea.errors import DeepseaError
from deepsea.inference.views import CENTRE_ONLY, TTASettings, make_views, views_to_json
from deepsea.io import read_json
from deepsea.means import combine
from deepsea.nets.registry import Network
from deepsea.predictions import Predictions
from deepsea.training.model_file import load_model_and_snapshots

log = logging.getLogger(__name__)


def subset_images(
    data_path: str | os.PathLike[str], subset: str, split_path: str | os.PathLike[str] | None
) -> ImageSet:
    """The images of `subset`: the split's train or valid ids from the training data, or all test images."""
    data = ImageSet.load(data_path)
    if subset == "test":
        return data
    if split_path is None:
        raise DeepseaError(f"predict: subset '{subset}' needs --split (the split file that defines it).")
    split = Split.from_json(read_json(split_path), str(split_path))
    ids = split.train_ids if subset == "train" else split.valid_ids
    return data.subset(data.index_of(ids, str(split_path)))


class ViewChunks(Dataset):
    """Item k: (k, inputs of images [k*chunk, (k+1)*chunk) under every view, image-major: (n*V, C, S, S) each)."""

    def __init__(
        self, images: ImageSet, inputs: list[InputSpec], norm: Normalisation, views: list[AffineParams], chunk: int
    ):
        self.images, self.inputs, self.norm, self.views, self.chunk = images, inputs, norm, views, chunk

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.chunk)

    def __getitem__(self, k: int) -> tuple[int, list[torch.Tensor]]:
        idx = np.arange(k * self.chunk, min((k + 1) * self.chunk, len(self.images)))
        repeated = np.repeat(idx, len(self.views))
        return k, views_batch(self.images, repeated, self.inputs, self.norm, self.views * len(idx))


def _nhwc(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.to(device).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def predict_views(
    model: Network,
    images: ImageSet,
    norm: Normalisation,
    views: list[AffineParams],
    mean: str,
    *,
    device: torch.device,
    batch_size: int = 128,
    chunk: int = 32,
    workers: int = 0,
    desc: str = "predict",
    snapshots: Sequence[Network] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """(views-averaged probabilities, centre-view probabilities), each (N, n_classes) float32.

    `snapshots`: more networks of a snapshot ensemble (`snapshots.py`). Each chunk's views, warped once, go through
    the model and every snapshot; all their views are averaged together (`mean`), their centre views
    arithmetically."""
    # channels_last: oneDNN (CPU) and cuDNN convolutions run faster on NHWC tensors (measured on CPU: 0.9 vs 1.7
    # ms per view for the demo convroll4, 43 vs 65 ms per image for the 13-layer model)
    networks = [net.to(memory_format=torch.channels_last) for net in (model, *snapshots)]  # type: ignore[call-overload]
    all_views = views if views == [CENTRE_VIEW] else [*views, CENTRE_VIEW]
    n_views = len(views)
    loader = DataLoader(
        ViewChunks(images, networks[0].inputs, norm, all_views, chunk),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
    )
    averaged: np.ndarray | None = None
    centre: np.ndarray | None = None
    for k, xs in tqdm(loader, desc=desc, unit="chunk", mininterval=5.0):
        total = xs[0].shape[0]
        logits = np.stack(
            [
                torch.cat(
                    [
                        net(*[_nhwc(x[s : s + batch_size], device) for x in xs]).float().cpu()
                        for s in range(0, total, batch_size)
                    ]
                )
                .numpy()
                .reshape(total // len(all_views), len(all_views), -1)
                for net in networks
            ],
            axis=1,
        )  # (n, networks, V(+1), C)
        if averaged is None:
            averaged = np.zeros((len(images), logits.shape[3]), np.float32)
            centre = np.zeros_like(averaged)
        assert centre is not None
        rows = slice(k * chunk, k * chunk + logits.shape[0])
        averaged[rows] = combine(logits[:, :, :n_views].reshape(len(logits), -1, logits.shape[3]), mean)
        centre[rows] = combine(logits[:, :, -1], "arithmetic")
    assert averaged is not None and centre is not None
    return averaged, centre


@dataclass(frozen=True)
class PredictOptions:
    """How `predict` runs: the test-time views (None: the centre view only), views per forward pass, the device,
    torch threads and the worker processes that warp views while the model predicts."""

    tta: TTASettings | None = None
    batch_size: int = 128
    device: str = "auto"
    threads: int = 1
    workers: int = 0


def predict(
    model_path: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    subset: str,
    out: str | os.PathLike[str],
    out_centre: str | os.PathLike[str] | None = None,
    *,
    split_path: str | os.PathLike[str] | None = None,
    options: PredictOptions = PredictOptions(),
) -> None:
    """Write the TTA-averaged probabilities of every image of `subset` to `out` (and the centre view's)."""
    tta = options.tta or CENTRE_ONLY
    torch.set_num_threads(max(1, options.threads))
    device = resolve_device(options.device)
    model, settings, norm, class_names, snapshots = load_model_and_snapshots(model_path, device)
    images = subset_images(data_path, subset, split_path)
    if images.class_names and images.class_names != class_names:
        raise DeepseaError(f"{data_path}: its classes differ from those {model_path} was trained on; retrain.")
    if len(images) == 0:
        raise DeepseaError(f"predict: the {subset} subset of {data_path} has no images.")
    views = make_views(tta)
    if snapshots:
        log.info("snapshot ensemble: the final weights and those after steps %s", list(snapshots))
    n, name = len(images), settings.name
    log.info(
        "predicting %d %s images x %d views (%s, %s mean) with %s", n, subset, len(views), tta.method, tta.mean, name
    )
    averaged, centre = predict_views(
        model,
        images,
        norm,
        views,
        tta.mean,
        device=device,
        batch_size=options.batch_size,
        chunk=tta.chunk_images,
        workers=options.workers,
        desc=f"predict {name}/{subset}",
        snapshots=list(snapshots.values()),
    )
    about: dict[str, Any] = {"model": name, "subset": subset}
    ids = images.ids.tolist()
    if out_centre is not None:
        Predictions(centre, ids, class_names, {**about, "views": views_to_json([CENTRE_VIEW])}).save(out_centre)
    ensemble = {"snapshot_steps": [*snapshots, settings.train.steps]} if snapshots else {}
    about |= {"views": views_to_json(views), "tta": asdict(tta), **ensemble}
    Predictions(averaged, ids, class_names, about).save(out)
    log.info("predicted %d %s images with %s -> %s", n, subset, name, out)
