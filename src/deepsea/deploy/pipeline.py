"""The final prediction of a model bundle for a chunk of images: the workflow's test-prediction path, in memory.

Every step calls the function its workflow stage calls, on the same numbers, rounded to float32 where the stage
writes a file (predictions are stored as float32): each run's test-time views (or its centre view, where the
workflow chose it: blending/views_choice.py), each entry's bag average (`average_probs`), its feature fusion
(`FusionNets.fuse`), the weighted ensemble (`blend`), the pseudo-label shard models' mean (`shard_mean`) and the
final blend. So the bundle reproduces the submission on the images the workflow predicted, and treats new images
exactly as it treated those. Pseudo-label entries combined `held_out` take the mean of their shard models here:
a new image is in no shard, and no shard model trained on its pseudo-label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deepsea.blending.combine_shards import shard_mean
from deepsea.blending.ensemble import blend
from deepsea.blending.fusion_nets import FusionNets
from deepsea.blending.temperature import apply_temperature
from deepsea.data.features import FeatureSettings, feature_table
from deepsea.data.imageset import ImageSet
from deepsea.deploy.bundle import Bundle
from deepsea.device import resolve_device
from deepsea.errors import DeepseaError
from deepsea.inference.predict import predict_views
from deepsea.inference.views import TTASettings, make_views
from deepsea.predictions import average_probs
from deepsea.records import from_dict
from deepsea.training.model_file import load_model_and_snapshots


@dataclass(frozen=True)
class RunOptions:
    """Where and how the networks run: device, torch threads, views per forward pass, view-warping processes."""

    device: str = "auto"
    threads: int = 1
    batch_size: int = 128
    workers: int = 0


class LoadedBundle:
    """A bundle's networks and fusion nets, loaded once (onto the device) for every chunk."""

    def __init__(self, bundle: Bundle, options: RunOptions) -> None:
        torch.set_num_threads(max(1, options.threads))
        self.recipe, self.options = bundle.recipe, options
        self.device = resolve_device(options.device)
        self.networks = {
            run: load_model_and_snapshots(bundle.path(spec["model"]), self.device)
            for run, spec in self.recipe["runs"].items()
        }
        self.views = {
            run: from_dict(TTASettings, spec["tta"], f"{run} views") for run, spec in self.recipe["runs"].items()
        }
        self.fusion = {
            name: FusionNets.load(bundle.path(entry["fusion"]))
            for name, entry in self.recipe["entries"].items()
            if entry["fusion"]
        }
        for run, trained in self.networks.items():
            if trained.class_names != self.recipe["class_names"]:
                raise DeepseaError(f"{bundle.root}: model {run} has other classes than the bundle; rerun the bundle.")

    def run(self, run: str, images: ImageSet) -> np.ndarray:
        """One run's probabilities: the mean over its test-time views, or its centre view (as the workflow chose)."""
        trained, tta = self.networks[run], self.views[run]
        averaged, centre = predict_views(
            trained.network, images, trained.norm, make_views(tta), tta.mean, device=self.device,
            batch_size=self.options.batch_size, chunk=tta.chunk_images, workers=self.options.workers,
            desc=f"classify {run}", snapshots=list(trained.snapshots.values()),
        )  # fmt: skip
        return centre if self.recipe["runs"][run]["views_used"] == "centre" else averaged

    def entry(self, name: str, runs: dict[str, np.ndarray], features: np.ndarray | None) -> np.ndarray:
        """An entry's prediction: its bag's average, fused with the features if the entry was fused."""
        spec = self.recipe["entries"][name]
        members = [runs[run] for run in spec["members"]]
        probs = members[0] if len(members) == 1 else average_probs(members, [1.0] * len(members), spec["mean"])
        if spec["fusion"]:
            assert features is not None
            probs = self.fusion[name].fuse(features, probs).astype(np.float32)
        return probs

    def probabilities(self, images: ImageSet) -> np.ndarray:
        """The final prediction (float32, images x the bundle's classes) of a chunk of images: the submission's
        stage, calibrated with the bundle's temperature (1: as blended; bundles without one are uncalibrated)."""
        return apply_temperature(self.stage_probabilities(images), self.recipe.get("temperature", 1.0))

    def stage_probabilities(self, images: ImageSet) -> np.ndarray:
        """The submission's source (final blend, ensemble or models' average) of a chunk of images, uncalibrated."""
        recipe = self.recipe
        runs = {run: self.run(run, images) for run in recipe["runs"]}
        features = None
        if self.fusion:
            settings = FeatureSettings(tuple(recipe["features"]["groups"]), recipe["features"]["haralick_levels"])
            features, names = feature_table(images, settings)
            for nets in self.fusion.values():
                nets.check_inputs(names, recipe["class_names"], "classify features")
        entries = {name: self.entry(name, runs, features) for name in recipe["entries"]}
        if recipe["source"] == "models":
            return average_probs(list(entries.values()), [1.0] * len(entries))
        spec = recipe["ensemble"]
        stacked = np.stack([entries[name] for name in spec["names"]])
        ensemble = blend(stacked, np.asarray(spec["weights"]), spec["mean"]).astype(np.float32)
        if recipe["source"] == "ensemble" or not recipe["pseudo_labels"]:
            return ensemble
        pseudo = [
            shard_mean(np.stack([runs[run].astype(np.float64) for run in entry["runs"]])).astype(np.float32)
            for entry in recipe["pseudo_labels"].values()
        ]
        return average_probs([ensemble, *pseudo], recipe["final_weights"])
