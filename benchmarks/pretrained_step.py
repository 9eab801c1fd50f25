"""What a training step of a pretrained backbone and a linear probe's feature extraction cost, against the demo's
best cyclic model's training step, in one run.

Baseline: the demo's cr4_ds (config.yaml: cyclic roll/pool with a fixed 1/2-scale stream, width 0.375, 3 stages) at
its 31 px. Measured: `architecture: pretrained` (EfficientNet-Lite0, ResNet-18 and ResNet-50) at 32, 64 and 128 px:
a forward, backward and SGD step on a batch of 32 random images; and `architecture: probe` (EfficientNet-Lite0):
the frozen backbone's pooled features of a batch of 32 (inference, no gradient), in images per second and as
seconds per 32 images against the baseline's step. On CPU with `--threads` torch threads (the demo trains with 1),
and on CUDA too when present. Prints JSON.

    python benchmarks/pretrained_step.py [--steps 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from _timing import seconds_per_call

from deepsea.nets.registry import build_model

BATCH, N_CLASSES = 32, 20
BASELINE = ("cr4_ds", 31, {"dense": 128, "depth": 3, "dropout": 0.2, "width": 0.375})
SIZES = (32, 64, 128)
MEASURED = [("pretrained", size, {"backbone": backbone, "weights": "none"})
            for backbone in ("efficientnet_lite0", "resnet18", "resnet50") for size in SIZES]  # fmt: skip


def seconds_per_step(architecture: str, size: int, params: dict, steps: int, device: torch.device) -> float:
    """Mean seconds of forward + backward + SGD step (after one warm-up step), as the training loop runs them."""
    torch.manual_seed(0)
    model = build_model(architecture, N_CLASSES, size, params).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    xs = [torch.randn(BATCH, len(s.rotations), s.size, s.size, device=device) for s in model.inputs]
    y = torch.randint(0, N_CLASSES, (BATCH,), device=device)

    def step() -> None:
        loss = F.cross_entropy(model(*xs), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return seconds_per_call(step, steps, device)


def seconds_per_feature_batch(size: int, calls: int, device: torch.device) -> float:
    """Mean seconds of a probe's pooled features of one batch (frozen backbone, eval mode, no gradient)."""
    model = build_model("probe", N_CLASSES, size, {"weights": "none"}).to(device, memory_format=torch.channels_last)
    model.eval()
    x = torch.randn(BATCH, 1, size, size, device=device)

    def features() -> None:
        with torch.no_grad():
            model.features(x)

    return seconds_per_call(features, calls, device)


def measure(device: torch.device, steps: int) -> dict:
    base = seconds_per_step(*BASELINE, steps, device)
    rows = {f"{BASELINE[0]} {BASELINE[1]} px (baseline)": {"seconds_per_step": round(base, 4), "ratio": 1.0}}
    for architecture, size, params in MEASURED:
        seconds = seconds_per_step(architecture, size, params, steps, device)
        rows[f"{params['backbone']} {size} px"] = {
            "seconds_per_step": round(seconds, 4),
            "ratio": round(seconds / base, 1),
        }
    for size in SIZES:
        seconds = seconds_per_feature_batch(size, steps, device)
        rows[f"probe features efficientnet_lite0 {size} px"] = {
            "images_per_second": round(BATCH / seconds, 1),
            "seconds_per_32_images": round(seconds, 4),
            "ratio": round(seconds / base, 2),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = {"benchmark": "pretrained_step", "batch": BATCH, "cpu_threads": args.threads}
    result["cpu"] = measure(torch.device("cpu"), args.steps)
    if torch.cuda.is_available():
        result["gpu"] = torch.cuda.get_device_name(0)
        result["cuda"] = measure(torch.device("cuda"), args.steps * 10)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
