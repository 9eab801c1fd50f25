"""Can the loader keep up? Model training images/s vs augmented-loader images/s, for Deep Sea's 13-layer model.

Model: convroll4 (10 conv + 3 dense layers) at 95x95, batch 32 (x4 orientations inside the net), SGD step, on CPU
with the machine's cores, and on CUDA (bf16 autocast as an extra line) whenever a GPU is present. Loader: the
real training loader (`AugmentedBatches`: one affine warp per image, batch normalisation) in one worker process.
Goal: loader >= 2x the rate at which the model consumes images. Prints JSON.

    python benchmarks/train_step.py [--steps 5] [--images 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from _images import demo_images
from _timing import seconds_per_call
from torch.utils.data import DataLoader

from deepsea.data.augment import AugmentationRanges
from deepsea.data.batches import AugmentedBatches, Normalisation
from deepsea.nets.registry import build_model

SIZE, BATCH, N_CLASSES = 95, 32, 121


def model_rate(device: torch.device, steps: int, bf16: bool = False) -> float:
    """Images per second through forward + backward + SGD step."""
    torch.manual_seed(0)
    model = build_model("convroll4", N_CLASSES, SIZE, {}).to(device, memory_format=torch.channels_last)  # as train.py
    optimizer = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9, nesterov=True)
    x = torch.randn(BATCH, 1, SIZE, SIZE, device=device)
    y = torch.randint(0, N_CLASSES, (BATCH,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return BATCH / seconds_per_call(step, steps, device)


def loader_rate(images, batches: int, workers: int) -> float:
    """Images per second produced by the training loader with `workers` worker processes."""
    model_inputs = build_model("convroll4", N_CLASSES, SIZE, {"width": 0.125}).inputs
    norm = Normalisation.fit(images, model_inputs[0])
    dataset = AugmentedBatches(images, model_inputs, BATCH, AugmentationRanges(), norm, seed=0)
    loader = DataLoader(
        dataset,
        sampler=range(batches + 2),
        batch_size=None,
        num_workers=workers,
        prefetch_factor=4 if workers else None,
    )
    iterator = iter(loader)
    next(iterator), next(iterator)  # start-up of the worker is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--loader-batches", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    images = demo_images(args.images, n_classes=N_CLASSES)
    result: dict = {
        "benchmark": "train_step",
        "model": "convroll4 (13 layers)",
        "input": SIZE,
        "batch": BATCH,
        "cpu_threads": torch.get_num_threads(),
    }
    result["loader_images_per_s_1_worker"] = round(loader_rate(images, args.loader_batches, workers=1), 1)
    result["cpu_model_images_per_s"] = round(model_rate(torch.device("cpu"), args.steps), 1)
    result["cpu_loader_to_model_ratio"] = round(
        result["loader_images_per_s_1_worker"] / result["cpu_model_images_per_s"], 1
    )
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        result["gpu"] = torch.cuda.get_device_name(0)
        result["gpu_model_images_per_s"] = round(model_rate(gpu, args.steps * 20), 1)
        result["gpu_model_images_per_s_bf16"] = round(model_rate(gpu, args.steps * 20, bf16=True), 1)
        result["gpu_loader_to_model_ratio"] = round(
            result["loader_images_per_s_1_worker"] / result["gpu_model_images_per_s"], 2
        )
    else:
        result["gpu"] = None
    result["goal_loader_to_model_ratio"] = 2.0
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
