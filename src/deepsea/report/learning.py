"""Whether a model was still learning when its training stopped, read from its training log.

A training length that suits one data set undertrains another (the same steps are 27 epochs of the demo and under
one of NDSB), and an undertrained model says so only in its learning curve. The sign looked for is a validation
loss that was still falling clearly at the full learning rate: over the second half of the steps before the first
learning-rate drop (the Deep Sea schedule drops 10x at 84% and 95% of the steps; the fall after a drop is expected
and says nothing). A k-fold entry has one log per fold model; the median of their falls decides, so one noisy fold
does not.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from statistics import median
from typing import Any

STILL_FALLING = 0.15  # a fall of the validation loss by more than this share counts as "still learning"


def _rows(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    with open(path, newline="") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def full_rate_fall(rows: list[dict[str, float]]) -> dict[str, float] | None:
    """The validation loss's relative fall over the second half of the full-learning-rate phase of one training
    log (`from_step`, `to_step`, the losses and the `fall`), or None where that phase holds under three evaluations
    (too few to tell)."""
    if not rows:
        return None
    top_rate = rows[0]["learning_rate"]
    phase = [row for row in rows if row["learning_rate"] >= top_rate]
    if len(phase) < 3:
        return None
    end = phase[-1]
    start = next(row for row in phase if row["step"] >= end["step"] / 2)  # the second half's first evaluation
    if start is end:
        return None
    fall = 1.0 - end["valid_loss"] / start["valid_loss"] if start["valid_loss"] > 0 else 0.0
    return {
        "from_step": start["step"],
        "to_step": end["step"],
        "valid_loss_from": start["valid_loss"],
        "valid_loss_to": end["valid_loss"],
        "fall": fall,
        "epochs": rows[-1]["epoch"],
    }


def still_learning(log_paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any] | None:
    """The full-rate falls of the logs (a model's, or a k-fold entry's fold models'), their median and whether it
    exceeds STILL_FALLING; None where no log can tell."""
    falls = [fall for fall in (full_rate_fall(_rows(path)) for path in log_paths) if fall is not None]
    if not falls:
        return None
    typical = sorted(falls, key=lambda f: f["fall"])[len(falls) // 2]
    median_fall = median(f["fall"] for f in falls)
    return {**typical, "median_fall": median_fall, "logs": len(falls), "still_learning": median_fall > STILL_FALLING}
