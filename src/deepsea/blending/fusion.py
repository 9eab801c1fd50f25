"""`deepsea fuse`: late fusion of handcrafted features with a convnet's predictions (the Deep Sea documentation,
sections 3.2.6 and 6.4).

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
from tqdm import tqdm

from deepsea.blending.fusion_nets import FittedGroup, FusionNet, FusionNets, equal_mean, log_probs_of
from deepsea.data.imageset import ImageSet
from deepsea.data.splits import Split
from deepsea.errors import ConfigError, DataMismatchError
from deepsea.io import positions_of, read_json, read_npz, write_json
from deepsea.metrics import log_loss
from deepsea.predictions import Predictions

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class FusionSubset:
    """One subset's fusion-net inputs: standardised features (N, F), the convnet's log-probabilities (N, C) and,
    for the training and validation splits, the labels (N,)."""

    features: torch.Tensor
    log_probs: torch.Tensor
    labels: torch.Tensor | None = None


def train_fusion_net(
    train: FusionSubset, valid: FusionSubset, s: FusionSettings, *, weight_decay: float, seed: int
) -> FusionNet:
    """SGD with Nesterov momentum, 10x learning-rate drops; keeps the epoch with the lowest validation loss."""
    assert train.labels is not None and valid.labels is not None
    torch.manual_seed(seed)
    net = FusionNet(train.features.shape[1], train.log_probs.shape[1], s.hidden)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=s.learning_rate, momentum=s.momentum, nesterov=True, weight_decay=weight_decay
    )
    generator = torch.Generator().manual_seed(seed)
    best_loss, best_state = float("inf"), None
    for epoch in range(s.epochs):
        for group in optimizer.param_groups:
            group["lr"] = s.learning_rate * 0.1 ** sum(epoch >= int(f * s.epochs) for f in s.lr_drops)
        net.train()
        for batch in torch.randperm(len(train.labels), generator=generator).split(s.batch_size):
            loss = F.cross_entropy(net(train.features[batch], train.log_probs[batch]), train.labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            logits = net(valid.features, valid.log_probs)
            valid_loss = F.cross_entropy(logits, valid.labels).item() if len(valid.labels) else 0.0
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


@dataclass(frozen=True)
class FusionFiles:
    """What `fuse` reads: the convnet's predictions of the training split, the validation split and the test set
    (a bag's average for bagged models), the features of the packed training and test data, the packed training
    data (labels) and the split the convnet trained on."""

    pred_train: str | os.PathLike[str]
    pred_valid: str | os.PathLike[str]
    pred_test: str | os.PathLike[str]
    features_train: str | os.PathLike[str]
    features_test: str | os.PathLike[str]
    data: str | os.PathLike[str]
    split: str | os.PathLike[str]


@dataclass
class _FusionData:
    """Everything a fusion net trains and predicts from, checked: predictions, feature rows and labels by subset."""

    predictions: dict[str, Predictions]  # train, valid, test
    features: dict[str, np.ndarray]  # every image's feature row (all groups)
    feature_groups: np.ndarray  # the group of each feature column
    labels: dict[str, torch.Tensor]  # train, valid
    feature_names: list[str]  # the features table's columns

    @classmethod
    def load(cls, files: FusionFiles) -> _FusionData:
        data = ImageSet.load(files.data)
        split = Split.from_json(read_json(files.split), str(files.split))
        sets = {name: Predictions.load(getattr(files, f"pred_{name}")) for name in ("train", "valid", "test")}
        if sorted(sets["train"].ids) != sorted(split.train_ids) or sorted(sets["valid"].ids) != sorted(split.valid_ids):
            raise DataMismatchError(
                f"fuse: the train/valid predictions are not of the split {files.split}; rerun them."
            )
        tables = {"train": read_npz(files.features_train), "test": read_npz(files.features_test)}
        return cls.build(sets, tables, data, str(files.split))

    @classmethod
    def build(
        cls, sets: dict[str, Predictions], tables: dict[str, dict[str, np.ndarray]], data: ImageSet, where: str
    ) -> _FusionData:
        """From the train/valid/test predictions, the feature tables (train, test) and the packed training data."""
        if any(s.class_names != data.class_names for s in sets.values()):
            raise DataMismatchError("fuse: the prediction files' classes differ from the packed training data's.")
        # every image's feature row, found once (the groups only choose columns)
        features = {}
        for name, predicted in sets.items():
            table = tables["test" if name == "test" else "train"]
            features[name] = table["values"][_feature_rows(table, predicted.ids, f"fuse {name}")]
        labels = {
            name: torch.from_numpy(data.labels[data.index_of(sets[name].ids, where)].astype(np.int64))
            for name in ("train", "valid")
        }
        names = [str(name) for name in tables["train"]["names"]]
        return cls(sets, features, tables["train"]["groups"], labels, names)

    def subsets(self, group: FittedGroup) -> dict[str, FusionSubset]:
        """Each subset's inputs for one feature group, standardised as `group` says."""
        return {
            name: FusionSubset(
                group.standardise(self.features[name]),
                log_probs_of(self.predictions[name].probs),
                self.labels.get(name),
            )
            for name in self.predictions
        }

    def standardiser(self, name: str, columns: np.ndarray) -> FittedGroup:
        """A group over `columns` (indices), standardised with the training split's mean and standard deviation;
        its nets not trained yet."""
        raw = self.features["train"][:, columns]
        mean, std = raw.mean(axis=0), raw.std(axis=0)
        std[std == 0] = 1.0  # a constant feature carries nothing; keep it finite
        return FittedGroup(name, columns, mean, std, states=[])


def _fuse_group(
    group: FeatureGroup, data: _FusionData, settings: FusionSettings
) -> tuple[dict[str, np.ndarray], FittedGroup]:
    """The group's fused valid and test probabilities (its `copies` nets averaged) and its trained nets."""
    columns = np.flatnonzero(np.isin(data.feature_groups, group.features))
    if not len(columns):
        raise ConfigError(
            f"fusion.groups.{group.name}: features {list(group.features)} were not extracted; "
            f"add them to features.groups."
        )
    fitted = data.standardiser(group.name, columns)
    x = data.subsets(fitted)
    for copy in tqdm(range(settings.copies), desc=f"fuse {group.name}", unit="net", mininterval=5.0):
        seed = settings.seed * 1000 + copy
        net = train_fusion_net(x["train"], x["valid"], settings, weight_decay=group.weight_decay, seed=seed)
        fitted.states.append({key: value.clone() for key, value in net.state_dict().items()})
    probs = {
        name: fitted.probabilities(x[name].features, x[name].log_probs, settings.hidden) for name in ("valid", "test")
    }
    return probs, fitted


def _fuse_groups(
    data: _FusionData, settings: FusionSettings
) -> tuple[dict[str, np.ndarray], dict[str, dict], list[FittedGroup]]:
    """The fused valid and test probabilities (the groups' fused predictions averaged, as the original's
    blend_momentsinfo_haralick), per group its features and valid probabilities, and the trained groups."""
    groups: dict[str, dict] = {}
    fitted_groups, group_probs = [], []
    for group in settings.groups:
        probs, fitted = _fuse_group(group, data, settings)
        groups[group.name] = {"n_features": len(fitted.columns), "valid_probs": probs["valid"]}
        fitted_groups.append(fitted)
        group_probs.append(probs)
    fused = {name: equal_mean([probs[name] for probs in group_probs]) for name in ("valid", "test")}
    return fused, groups, fitted_groups


def _report(settings: FusionSettings, labels: np.ndarray, unfused: np.ndarray, fused: np.ndarray, groups: dict) -> dict:
    report: dict = {"settings": asdict(settings), "groups": {}}
    for name, group in groups.items():
        report["groups"][name] = {
            "n_features": group["n_features"],
            "valid_log_loss": log_loss(labels, group["valid_probs"]),
        }
    report["valid_log_loss_unfused"] = log_loss(labels, unfused)
    report["valid_log_loss_fused"] = log_loss(labels, fused)
    log.info(
        "fusion: valid log loss %.4f -> %.4f (%s)",
        report["valid_log_loss_unfused"],
        report["valid_log_loss_fused"],
        ", ".join(f"{k} {v['valid_log_loss']:.4f}" for k, v in report["groups"].items()),
    )
    return report


def _nets(settings: FusionSettings, data: _FusionData, folds: list[list[FittedGroup]]) -> FusionNets:
    return FusionNets(settings.hidden, list(data.predictions["train"].class_names), data.feature_names, folds)


def fuse(
    files: FusionFiles,
    settings: FusionSettings,
    out_valid: str | os.PathLike[str],
    out_test: str | os.PathLike[str],
    report_path: str | os.PathLike[str],
    *,
    nets_path: str | os.PathLike[str] | None = None,
) -> dict:
    """Train the fusion nets of every group on the training split; write fused valid and test predictions and,
    to `nets_path`, the trained nets (fusion_nets.py: what a model bundle fuses new images with)."""
    data = _FusionData.load(files)
    sets = data.predictions
    fused, groups, fitted = _fuse_groups(data, settings)
    if nets_path is not None:
        _nets(settings, data, [fitted]).save(nets_path)
    report = _report(settings, data.labels["valid"].numpy(), sets["valid"].probs, fused["valid"], groups)
    for name, out, source in (("valid", out_valid, files.pred_valid), ("test", out_test, files.pred_test)):
        Predictions(fused[name], sets[name].ids, sets[name].class_names, {"fused_from": str(source)}).save(out)
    write_json(report_path, report)
    return report


@dataclass(frozen=True)
class FoldFusionFiles:
    """What `fuse_folds` reads (k-fold scheme): the convnet's out-of-fold predictions of every training image and
    its fold models' averaged test prediction, the features, the packed training data and the fold splits."""

    pred_oof: str | os.PathLike[str]
    pred_test: str | os.PathLike[str]
    features_train: str | os.PathLike[str]
    features_test: str | os.PathLike[str]
    data: str | os.PathLike[str]
    folds: tuple[str | os.PathLike[str], ...]


def fuse_folds(
    files: FoldFusionFiles,
    settings: FusionSettings,
    out_valid: str | os.PathLike[str],
    out_test: str | os.PathLike[str],
    report_path: str | os.PathLike[str],
    *,
    nets_path: str | os.PathLike[str] | None = None,
) -> dict:
    """Fusion on out-of-fold predictions: for every fold, fusion nets train on the other folds' out-of-fold
    predictions and predict the fold's images, so every fused training prediction is out of fold too (nets that
    trained on the convnets' in-sample predictions would learn to trust a confidence the test images never get).
    The test prediction is the mean of the folds' fused test predictions."""
    data = ImageSet.load(files.data)
    oof, test = Predictions.load(files.pred_oof), Predictions.load(files.pred_test)
    splits = [Split.from_json(read_json(path), str(path)) for path in files.folds]
    if sorted(oof.ids) != sorted(i for split in splits for i in split.valid_ids):
        raise DataMismatchError(f"fuse: {files.pred_oof} is not out of fold over the folds' images; rerun it.")
    tables = {"train": read_npz(files.features_train), "test": read_npz(files.features_test)}
    fused, fold_tests = {"valid": np.zeros(oof.probs.shape)}, []
    group_valid: dict[str, dict] = {}
    folds: list[list[FittedGroup]] = []
    for split, where in zip(splits, files.folds, strict=True):
        sets = {
            "train": oof.in_order_of(split.train_ids, str(where)),
            "valid": oof.in_order_of(split.valid_ids, str(where)),
            "test": test,
        }
        fold_data = _FusionData.build(sets, tables, data, str(where))
        fold_fused, groups, fitted = _fuse_groups(fold_data, settings)
        folds.append(fitted)
        rows = positions_of(split.valid_ids, oof.ids)[0]
        fused["valid"][rows] = fold_fused["valid"]
        fold_tests.append(fold_fused["test"])
        for name, group in groups.items():
            entry = group_valid.setdefault(
                name, {"n_features": group["n_features"], "valid_probs": np.zeros(oof.probs.shape)}
            )
            entry["valid_probs"][rows] = group["valid_probs"]
    fused["test"] = equal_mean(fold_tests)
    if nets_path is not None:
        _nets(settings, fold_data, folds).save(nets_path)
    labels = data.labels[data.index_of(oof.ids, str(files.pred_oof))]
    report = _report(settings, labels, oof.probs, fused["valid"], group_valid)
    report["folds"] = len(splits)
    for name, out, source in (("valid", out_valid, files.pred_oof), ("test", out_test, files.pred_test)):
        kept = oof if name == "valid" else test
        Predictions(fused[name], kept.ids, kept.class_names, {"fused_from": str(source), "folds": len(splits)}).save(
            out
        )
    write_json(report_path, report)
    return report
