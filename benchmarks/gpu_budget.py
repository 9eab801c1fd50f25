"""How long a config's DAG keeps one GPU busy, estimated from its models' FLOPs: an estimate, not a measurement.

For every model run of the config (bag members, fold models and pseudo-label shard models included) the network is
built at its input size (`input_size: auto` resolved for images whose longest side has the given 75th percentile)
and its forward pass counted with torch's FlopCounterMode (convolutions and dense layers; the cyclic slices count,
they are convolved as a 4x batch). A training step costs three forward passes (forward, and a backward of about
twice that) over `batch_size` images; a prediction one forward pass per image and view (the TTA views plus the
centre view), over the subsets the DAG predicts (valid and test; train too for a fused model under the hold-out
scheme); every `eval_every` steps training scores the validation images once. The sum is divided by a sustained
throughput, by default 15 TFLOP/s: our assumption for an A100-class GPU (156 TFLOP/s TF32 peak) running these
batch-32 convnets, about a tenth of its peak, since no GPU was lent to this project to measure one. A measurement
replaces it: `python benchmarks/train_step.py` on a GPU prints the model's images/s (convroll4, 95 px), and
images/s x its FLOPs per image is the sustained rate. CPU stages (packing, features, fusion, blends) are not counted.
Prints JSON.

    python benchmarks/gpu_budget.py --config workflow/configs/gpu.yaml --train-images 5000 --test-images 5000
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from deepsea.dag.config_loader import load_workflow_config
from deepsea.dag.runs import all_runs, kfold, settings_json
from deepsea.nets.registry import build_model
from deepsea.training.settings import load_model_settings

REPO = Path(__file__).parents[1]


def forward_flops(settings: Any, n_classes: int, p75: float) -> float:
    """FLOPs of one image's forward pass through a run's network (its input size resolved for `p75`)."""
    resolved = settings.with_input_size(p75)
    model = build_model(resolved.architecture, n_classes, resolved.pixels, resolved.params).eval()
    inputs = [torch.zeros(1, len(spec.rotations), spec.size, spec.size) for spec in model.inputs]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    return float(counter.get_total_flops())


def run_budget(config: dict, run: str, settings: Any, images: dict[str, int], flops: float) -> dict[str, float]:
    """Training and prediction FLOPs of one model run."""
    folds = config["splits"]["folds"] if kfold(config) else 0
    valid = images["train"] // folds if folds else round(images["train"] * config["splits"]["valid_fraction"])
    train = images["train"] - valid
    t = settings.with_steps(train).train
    views = config["tta"]["views"] + 1
    fused = run in config["fusion"]["models"] and not folds
    predicted = valid + images["test"] + (train if fused else 0)
    evaluations = math.ceil(t.steps / t.eval_every) * valid
    return {
        "input_size": settings.with_input_size(images["p75"]).pixels,
        "gflops_per_image": round(flops / 1e9, 3),
        "steps": t.steps,
        "train_flops": 3 * flops * t.steps * t.batch_size + flops * evaluations,
        "predict_flops": flops * views * predicted,
    }


def budget(config_files: list[str], images: dict[str, int], tflops: float, n_classes: int) -> dict[str, Any]:
    config = load_workflow_config(REPO, config_files)
    convnets, pseudo = all_runs(config)
    runs: dict[str, dict[str, float]] = {}
    for run, raw in {**convnets, **pseudo}.items():
        settings = load_model_settings(settings_json(run, raw))
        runs[run] = run_budget(config, run, settings, images, forward_flops(settings, n_classes, images["p75"]))
    rate = tflops * 1e12
    hours = {kind: sum(r[f"{kind}_flops"] for r in runs.values()) / rate / 3600 for kind in ("train", "predict")}
    hours["total"] = hours["train"] + hours["predict"]
    return {
        "config": config_files,
        "images": images,
        "assumed_sustained_tflops": tflops,
        "model_runs": len(runs),
        "gpu_hours": {kind: round(value, 2) for kind, value in hours.items()},
        "runs": {
            name: {k: (round(v / 1e15, 2) if k.endswith("flops") else v) for k, v in r.items()}
            for name, r in runs.items()
        },
        "flops_unit": "PFLOP (train_flops, predict_flops)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", nargs="+", default=["workflow/configs/gpu.yaml"], help="--configfile files")
    parser.add_argument("--train-images", type=int, default=5000)
    parser.add_argument("--test-images", type=int, default=5000)
    parser.add_argument("--p75", type=float, default=95.0, help="75th percentile of the images' longest side (px)")
    parser.add_argument("--classes", type=int, default=121)
    parser.add_argument("--tflops", type=float, default=15.0, help="sustained TFLOP/s of the GPU (an assumption)")
    args = parser.parse_args()
    images = {"train": args.train_images, "test": args.test_images, "p75": args.p75}
    print(json.dumps(budget(args.config, images, args.tflops, args.classes), indent=2))


if __name__ == "__main__":
    main()
