"""How several predictions of one image become one: the means over test-time views and over a bag's members.

The original Deep Sea code (the blog post's "test-time augmentation" section) averaged the probabilities of the
views; the geometric and logit means are offered beside it because they discount a single confident outlier view.
Both TTA (`inference.predict`) and bag averaging (`predictions.average`) call `combine`, so a bag's members are
averaged exactly like one model's views.
"""

from __future__ import annotations

import numpy as np

from deepsea.errors import ConfigError

MEANS = ("arithmetic", "geometric", "logit")  # how `combine` averages views (or a bag's members)


def combine(logits: np.ndarray, mean: str, weights: np.ndarray | None = None) -> np.ndarray:
    """(N, V, C) logits of V views (or of V models: log-probabilities are logits too) -> (N, C) probabilities,
    averaged as `mean` says, the V weighted by `weights` (default: equally).

    arithmetic: mean of the probabilities (the original). geometric: normalised geometric mean of the probabilities
    (identical to a softmax of the mean logits). logit: mean of each class's log-odds log(p / (1 - p)), mapped back
    with the logistic function and normalised."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=2, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    if mean == "arithmetic":
        averaged = np.average(np.exp(log_probs), axis=1, weights=weights)
    elif mean == "geometric":
        z = np.average(log_probs, axis=1, weights=weights)
        averaged = np.exp(z - z.max(axis=1, keepdims=True))
    elif mean == "logit":
        p = np.clip(np.exp(log_probs), 1e-15, 1 - 1e-15)
        log_odds = np.average(np.log(p) - np.log1p(-p), axis=1, weights=weights)
        averaged = 1.0 / (1.0 + np.exp(-log_odds))
    else:  # callers outside TTA (a bag's average) reach here without make_views' check
        raise ConfigError(f"mean: one of {', '.join(MEANS)}, got '{mean}'.")
    return averaged / averaged.sum(axis=1, keepdims=True)
