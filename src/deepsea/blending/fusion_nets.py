"""The trained fusion nets of one convnet (fusion.py), kept so that new images can be fused as the test set was.

`deepsea fuse` trains, per feature group, `copies` small nets on standardised features and the convnet's
log-probabilities; their fused test prediction was all it used to keep. A model bundle (`deepsea classify`) needs
the nets themselves: each group's feature columns, the training split's mean and standard deviation, and every
copy's weights, for each fold of the k-fold scheme (one "fold" for a hold-out split). `FittedGroup` standardises
and averages a group's copies for both `fuse` and a bundle; `FusionNets.fuse` averages the groups and folds as
`fuse` and `fuse_folds` do, with the same `equal_mean` (tests/unit/test_fusion.py checks the two give the same bits).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepsea.errors import DataMismatchError, DeepseaError
from deepsea.io import atomic_path

LOG_FLOOR = 1e-7  # probabilities are clipped here before the log, so a 0 cannot become -inf


class FusionNet(nn.Module):
    """(features (B, F), convnet log-probabilities (B, C)) -> fused logits (B, C)."""

    def __init__(self, n_features: int, n_classes: int, hidden: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        self.correction = nn.Linear(width, n_classes)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)
        self.body = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
        return log_probs + self.correction(self.body(features))


def equal_mean(parts: Sequence[np.ndarray]) -> np.ndarray:
    """`parts` averaged with equal weights, summed in order (float64): fusion's one average of its groups and of
    its folds, in training (fusion.py) and in a model bundle (`FusionNets.fuse`), so that both give the same bits."""
    out = np.zeros(parts[0].shape, np.float64)
    for part in parts:
        out += part / len(parts)
    return out


def log_probs_of(probs: np.ndarray) -> torch.Tensor:
    """The convnet's probabilities as the fusion nets take them: float32 logs, clipped at LOG_FLOOR."""
    return torch.from_numpy(np.log(np.clip(probs, LOG_FLOOR, 1.0)).astype(np.float32))


@dataclass
class FittedGroup:
    """One feature group's trained nets: which feature columns, how they were standardised, every copy's weights."""

    name: str
    columns: np.ndarray  # indices of the group's columns in the features table
    mean: np.ndarray  # of the training split's features (the table's dtype)
    std: np.ndarray  # ditto, 0 replaced by 1
    states: list[dict[str, torch.Tensor]]

    def standardise(self, values: np.ndarray) -> torch.Tensor:
        """Feature rows of the whole table (N, all columns) -> this group's standardised inputs (N, F)."""
        return torch.from_numpy(((values[:, self.columns] - self.mean) / self.std).astype(np.float32))

    def probabilities(self, features: torch.Tensor, log_probs: torch.Tensor, hidden: tuple[int, ...]) -> np.ndarray:
        """The copies' softmax outputs averaged uniformly (float64, N x C)."""
        net = FusionNet(features.shape[1], log_probs.shape[1], hidden)
        total = np.zeros(tuple(log_probs.shape), np.float64)
        with torch.no_grad():
            for state in self.states:
                net.load_state_dict(state)
                total += torch.softmax(net(features, log_probs), 1).double().numpy()
        return total / len(self.states)


@dataclass
class FusionNets:
    """Every fold's feature groups (a hold-out split: one fold) of one convnet's fusion."""

    hidden: tuple[int, ...]
    class_names: list[str]
    feature_names: list[str]  # the features table's columns, in order
    folds: list[list[FittedGroup]]

    def fuse(self, values: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Fused probabilities (float64) of images with feature rows `values` and convnet probabilities `probs`:
        the groups averaged (the original's blend_momentsinfo_haralick), then the folds."""
        log_probs = log_probs_of(probs)
        return equal_mean([
            equal_mean([group.probabilities(group.standardise(values), log_probs, self.hidden) for group in groups])
            for groups in self.folds
        ])  # fmt: skip

    def check_inputs(self, feature_names: list[str], class_names: list[str], where: str) -> None:
        if feature_names != self.feature_names:
            raise DataMismatchError(f"{where}: its features are not those the fusion nets trained on; re-extract them.")
        if class_names != self.class_names:
            raise DataMismatchError(f"{where}: its classes differ from those the fusion nets trained on.")

    def save(self, path: str | os.PathLike[str]) -> None:
        state = {
            "hidden": list(self.hidden),
            "class_names": self.class_names,
            "feature_names": self.feature_names,
            "folds": [[vars(group) for group in groups] for groups in self.folds],
        }
        # through a file object, as model_file.py: given a path, torch.save names the archive's records after it
        # (here a random temporary name), and two identical fusions would write different bytes
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            torch.save(state, handle)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FusionNets:
        try:
            state = torch.load(path, weights_only=False, map_location="cpu")
            folds = [[FittedGroup(**group) for group in groups] for groups in state["folds"]]
            return cls(tuple(state["hidden"]), state["class_names"], state["feature_names"], folds)
        except (OSError, KeyError, TypeError, RuntimeError) as err:
            raise DeepseaError(f"{path}: not a fusion nets file ({err}); rerun `deepsea fuse` for it.") from err
