"""Stage 7, `deepsea fuse`: late fusion of handcrafted features with a convnet's predictions (seed 000, 3.2.6, 6.4).

For one convnet: a small net on standardised features (two dense layers of 80 units) produces a correction that is
added to the log of the convnet's (TTA) probabilities before the softmax; the convnet itself is frozen (only its
predictions are used). The correction's last layer starts at zero, so an untrained fusion net reproduces the
convnet exactly and training can only move away from it where the features help. Each fusion net is trained on the
convnet's predictions for the training split, and the state with the lowest validation loss is kept; `copies`
nets with different seeds are averaged uniformly. One fusion per feature group (the original: "momentsinfo" = size
+ moments, and "haralick"), then the groups' fused predictions are averaged (the original's
blend_momentsinfo_haralick). Rows are independent: a row's fused prediction depends only on that image's
prediction and features.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from deepsea.errors import ConfigError, DataMismatchError
from deepsea.imageset import ImageSet
from deepsea.io import load_predictions, positions_of, read_json, read_npz, save_predictions, write_json
from deepsea.metrics import log_loss
from deepsea.splits import Split

log = logging.getLogger(__name__)
LOG_FLOOR = 1e-7  # probabilities are clipped here before the log, so a 0 cannot become -inf


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    features: tuple[str, ...]  # feature groups of `extract-features` (size, moments, haralick, ...)
    weight_decay: float


@dataclass(frozen=True)
class FusionSettings:
    groups: tuple[FeatureGroup, ...] = field(
        default_factory=lambda: (
            FeatureGroup("momentsinfo", ("size", "moments"), 0.002),
            FeatureGroup("haralick", ("haralick",), 0.0002),
        )
    )
    hidden: tuple[int, ...] = (80, 80)
    copies: int = 10
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 0.001
    lr_drops: tuple[float, ...] = (0.7, 0.9)
    momentum: float = 0.9
    seed: int = 0

    @classmethod
    def from_json(cls, data: dict) -> FusionSettings:
        data = dict(data)
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ConfigError(f"fusion: unknown keys {sorted(unknown)}.")
        groups = tuple(
            FeatureGroup(g["name"], tuple(g["features"]), float(g["weight_decay"]))
            for g in data.pop("groups", [asdict(g) for g in cls().groups])
        )
        tuples = {k: tuple(v) for k, v in data.items() if k in ("hidden", "lr_drops")}
        return cls(groups=groups, **{**data, **tuples})


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


def _log_probs(probs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.log(np.clip(probs, LOG_FLOOR, 1.0)).astype(np.float32))


def train_fusion_net(
    x_train: torch.Tensor,
    lp_train: torch.Tensor,
    y_train: torch.Tensor,
    x_valid: torch.Tensor,
    lp_valid: torch.Tensor,
    y_valid: torch.Tensor,
    s: FusionSettings,
    weight_decay: float,
    seed: int,
) -> FusionNet:
    """SGD with Nesterov momentum, 10x learning-rate drops; keeps the epoch with the lowest validation loss."""
    torch.manual_seed(seed)
    net = FusionNet(x_train.shape[1], lp_train.shape[1], s.hidden)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=s.learning_rate, momentum=s.momentum, nesterov=True, weight_decay=weight_decay
    )
    generator = torch.Generator().manual_seed(seed)
    best_loss, best_state = float("inf"), None
    for epoch in range(s.epochs):
        for group in optimizer.param_groups:
            group["lr"] = s.learning_rate * 0.1 ** sum(epoch >= int(f * s.epochs) for f in s.lr_drops)
        net.train()
        for batch in torch.randperm(len(y_train), generator=generator).split(s.batch_size):
            loss = F.cross_entropy(net(x_train[batch], lp_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            valid_loss = F.cross_entropy(net(x_valid, lp_valid), y_valid).item() if len(y_valid) else 0.0
        if valid_loss < best_loss:
            best_loss, best_state = valid_loss, {k: v.clone() for k, v in net.state_dict().items()}
    assert best_state is not None
    net.load_state_dict(best_state)
    return net


def _feature_rows(table: dict[str, np.ndarray], ids: list[str], where: str) -> np.ndarray:
    """Rows of `ids` in a features table; ids without features are an error that names them."""
    rows, missing = positions_of(ids, table["ids"].tolist())
    if missing:
        raise DataMismatchError(
            f"{where}: no features for {len(missing)} image(s), e.g. {missing[:3]}; "
            "rerun extract_features on the same packed data."
        )
    return rows


def fuse(
    pred_train: str | os.PathLike[str],
    pred_valid: str | os.PathLike[str],
    pred_test: str | os.PathLike[str],
    features_train: str | os.PathLike[str],
    features_test: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    split_path: str | os.PathLike[str],
    settings: FusionSettings,
    out_valid: str | os.PathLike[str],
    out_test: str | os.PathLike[str],
    report_path: str | os.PathLike[str],
) -> dict:
    """Train the fusion nets of every group on the training split; write fused valid and test predictions."""
    data = ImageSet.load(data_path)
    split = Split.from_json(read_json(split_path), str(split_path))
    sets = {
        name: load_predictions(path)
        for name, path in (("train", pred_train), ("valid", pred_valid), ("test", pred_test))
    }
    class_names = sets["train"][2]
    if any(s[2] != class_names for s in sets.values()) or class_names != data.class_names:
        raise DataMismatchError("fuse: the prediction files' classes differ from the packed training data's.")
    if sorted(sets["train"][1]) != sorted(split.train_ids) or sorted(sets["valid"][1]) != sorted(split.valid_ids):
        raise DataMismatchError(f"fuse: the train/valid predictions are not of the split {split_path}; rerun them.")
    feats_train, feats_test = read_npz(features_train), read_npz(features_test)
    # every image's feature row, found once (the groups below only choose columns)
    features = {
        name: (feats_test if name == "test" else feats_train)["values"][
            _feature_rows(feats_test if name == "test" else feats_train, sets[name][1], f"fuse {name}")
        ]
        for name in sets
    }
    labels = {
        name: torch.from_numpy(data.labels[data.index_of(sets[name][1], str(split_path))].astype(np.int64))
        for name in ("train", "valid")
    }
    log_probs = {name: _log_probs(sets[name][0]) for name in sets}
    fused = {name: np.zeros((len(sets[name][1]), len(class_names)), np.float64) for name in ("valid", "test")}
    report: dict = {"settings": asdict(settings), "groups": {}}
    for group in settings.groups:
        columns = np.isin(feats_train["groups"], group.features)
        if not columns.any():
            raise ConfigError(
                f"fusion.groups.{group.name}: features {list(group.features)} were not extracted; "
                f"add them to features.groups."
            )
        raw = {name: features[name][:, columns] for name in sets}
        mean, std = raw["train"].mean(axis=0), raw["train"].std(axis=0)
        std[std == 0] = 1.0  # a constant feature carries nothing; keep it finite
        x = {name: torch.from_numpy(((raw[name] - mean) / std).astype(np.float32)) for name in sets}
        group_probs = {name: np.zeros_like(fused[name]) for name in fused}
        for copy in tqdm(range(settings.copies), desc=f"fuse {group.name}", unit="net", mininterval=5.0):
            net = train_fusion_net(
                x["train"],
                log_probs["train"],
                labels["train"],
                x["valid"],
                log_probs["valid"],
                labels["valid"],
                settings,
                group.weight_decay,
                settings.seed * 1000 + copy,
            )
            with torch.no_grad():
                for name in fused:
                    group_probs[name] += torch.softmax(net(x[name], log_probs[name]), 1).double().numpy()
        for name in fused:
            group_probs[name] /= settings.copies
            fused[name] += group_probs[name] / len(settings.groups)
        report["groups"][group.name] = {
            "n_features": int(columns.sum()),
            "valid_log_loss": log_loss(labels["valid"].numpy(), group_probs["valid"]),
        }
    report["valid_log_loss_unfused"] = log_loss(labels["valid"].numpy(), sets["valid"][0])
    report["valid_log_loss_fused"] = log_loss(labels["valid"].numpy(), fused["valid"])
    save_predictions(out_valid, fused["valid"], sets["valid"][1], class_names, fused_from=str(pred_valid))
    save_predictions(out_test, fused["test"], sets["test"][1], class_names, fused_from=str(pred_test))
    write_json(report_path, report)
    log.info(
        "fusion: valid log loss %.4f -> %.4f (%s)",
        report["valid_log_loss_unfused"],
        report["valid_log_loss_fused"],
        ", ".join(f"{k} {v['valid_log_loss']:.4f}" for k, v in report["groups"].items()),
    )
    return report
