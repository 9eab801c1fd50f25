"""Stage 5, `deepsea predict`: class probabilities of a trained model for one subset (train, valid or test).

This foundation predicts from the single centre view; the 70-view quasi-random test-time augmentation replaces
`predict_views` (issue 5) without changing the files this stage reads and writes:
`results/predictions/{model}/{subset}.npy` (float32, images x classes) and `{subset}.meta.json` (ids, classes,
views).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
from tqdm import tqdm

from deepsea.data import views_batch
from deepsea.device import resolve_device
from deepsea.errors import DeepseaError
from deepsea.imageset import ImageSet
from deepsea.io import read_json, save_predictions
from deepsea.splits import Split
from deepsea.train import load_model

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


@torch.no_grad()
def predict(
    model_path: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    subset: str,
    out: str | os.PathLike[str],
    split_path: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
    device_name: str = "auto",
    threads: int = 1,
) -> None:
    """Write the probabilities of every image of `subset` (centre view) to `out`."""
    torch.set_num_threads(max(1, threads))
    device = resolve_device(device_name)
    model, settings, norm, class_names = load_model(model_path, device)
    images = subset_images(data_path, subset, split_path)
    if images.class_names and images.class_names != class_names:
        raise DeepseaError(f"{data_path}: its classes differ from those {model_path} was trained on; retrain.")
    probs = np.zeros((len(images), len(class_names)), dtype=np.float32)
    for start in tqdm(
        range(0, len(images), batch_size), desc=f"predict {settings.name}/{subset}", unit="batch", mininterval=5.0
    ):
        idx = np.arange(start, min(start + batch_size, len(images)))
        logits = model(*[x.to(device) for x in views_batch(images, idx, model.inputs, norm)]).float()
        probs[idx] = torch.softmax(logits, dim=1).cpu().numpy()
    save_predictions(
        out, probs, images.ids.tolist(), class_names, model=settings.name, subset=subset, views=[{"name": "centre"}]
    )
    log.info("predicted %d %s images with %s -> %s", len(images), subset, settings.name, out)
