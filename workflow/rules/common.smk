# Shared input functions and checks: the only Python in the workflow. Rules stay one `deepsea` command each.
import json
import sys
from pathlib import Path

from deepsea.errors import ConfigError
from deepsea.settings import load_model_settings

SUBMISSION = "results/submission/submission.csv.gz"
CONDA_CPU = "../../envs/deepsea-cpu.yaml"  # used with --sdm conda; paths are relative to this file
CONDA_GPU = "../../envs/deepsea-cuda.yaml"

# Jobs run the `deepsea` command. Put the interpreter running Snakemake first on PATH, so that
# `.venv/bin/snakemake ...` works without activating the venv.
shell.prefix(f'export PATH="{Path(sys.executable).parent}":"$PATH"; ')


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    subset=r"train|valid|test",
    seed=r"\d+",


def model_settings_json(name):
    """The model entry, defaults filled by the schema, as the compact JSON `deepsea train --settings` reads.

    It is a rule param, so editing one model's entry reruns that model's jobs and what depends on them only.
    """
    return json.dumps(
        {"name": name, **config["models"][name]}, sort_keys=True, separators=(",", ":")
    )


def check_config():
    """Cross-key checks the schema cannot express; errors name the key."""
    for name in config["models"]:
        load_model_settings(model_settings_json(name))
    for name, entry in config["models"].items():
        source = entry.get("preinit", "")
        if source and (source not in config["models"] or source == name):
            raise ConfigError(
                f"models.{name}.preinit: '{source}' is not another entry of `models` ({sorted(config['models'])})."
            )
    unknown = [m for m in config["submission"]["models"] if m not in config["models"]]
    if unknown:
        raise ConfigError(
            f"submission.models: {unknown} are not entries of `models` ({sorted(config['models'])})."
        )


check_config()


def split_file(model):
    """The split a model trains on: the standard validation split or one bagging split."""
    split = config["models"][model]["split"]
    return (
        "results/splits/valid.json"
        if split == "valid"
        else f"results/splits/{split}.json"
    )


def train_inputs(wildcards):
    """Packed data, the model's split, and the trained model it is pre-initialised from (if any)."""
    inputs = {"data": "results/data/train.npz", "split": split_file(wildcards.model)}
    source = config["models"][wildcards.model].get("preinit", "")
    if source:
        inputs["preinit"] = f"results/models/{source}/model.pt"
    return inputs


def preinit_option(wildcards, input):
    return f"--preinit {input.preinit}" if "preinit" in input.keys() else ""


def data_source(wildcards):
    """What `pack` reads: the demo manifest when the data is the generated demo set, else the folder itself."""
    folder = Path(config["data"][f"{wildcards.subset}_dir"])
    demo = Path(config["demo"]["dir"])
    if folder.resolve().is_relative_to(demo.resolve()):
        return f"{config['demo']['dir']}/manifest.json"
    return str(folder)


def packed_data(wildcards):
    """Packed images behind a subset: train and valid come from the training data."""
    return (
        "results/data/test.npz"
        if wildcards.subset == "test"
        else "results/data/train.npz"
    )
