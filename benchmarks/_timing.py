"""What the step-timing benchmarks share: timing a training step after a warm-up, CUDA synchronised."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def seconds_per_call(step: Callable[[], None], calls: int, device: torch.device) -> float:
    """Mean seconds of `step()` over `calls` calls, after one warm-up call (allocations, cuDNN's algorithm choice);
    on CUDA the queue is drained before and after, so the time is the device's, not the launch's."""
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls
