"""`ImageSet`: a data set of variable-size grayscale images held as one flat uint8 buffer.

Why ragged: NDSB images range from under 40 px to 400 px a side; padding them to one size would waste memory and
destroy the size information that the multiscale models and the size features use. One flat buffer plus offsets
keeps 160k images in a few GB and loads in one read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from deepsea.data.images import background_level
from deepsea.errors import DataMismatchError
from deepsea.io import positions_of, read_npz, write_npz

NO_LABEL = -1  # label of test images


@dataclass
class ImageSet:
    """Images, their ids and (for training data) integer labels into `class_names`."""

    pixels: np.ndarray  # (total_pixels,) uint8, all images row-major, one after another
    offsets: np.ndarray  # (N + 1,) int64, image i is pixels[offsets[i]:offsets[i + 1]]
    shapes: np.ndarray  # (N, 2) int32, (height, width)
    ids: np.ndarray  # (N,) str, unique
    labels: np.ndarray  # (N,) int32, NO_LABEL for test images
    class_names: list[str]
    # each image's background level (images.background_level), measured on first use: a constant of the image
    _backgrounds: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_images(
        cls, images: Sequence[np.ndarray], ids: Sequence[str], labels: Sequence[int], class_names: Sequence[str]
    ) -> ImageSet:
        """Build a set from a list of 2-D uint8 arrays."""
        if not (len(images) == len(ids) == len(labels)):
            raise DataMismatchError(f"{len(images)} images, {len(ids)} ids and {len(labels)} labels differ in number.")
        shapes = np.array([im.shape for im in images], dtype=np.int32).reshape(-1, 2)
        sizes = shapes[:, 0].astype(np.int64) * shapes[:, 1]
        offsets = np.zeros(len(images) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        pixels = np.empty(int(offsets[-1]), dtype=np.uint8)
        for i, im in enumerate(images):
            pixels[offsets[i] : offsets[i + 1]] = np.asarray(im, dtype=np.uint8).ravel()
        return cls(
            pixels, offsets, shapes, np.array(ids, dtype=str), np.array(labels, dtype=np.int32), list(class_names)
        )

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, i: int) -> np.ndarray:
        """Image `i` as a (H, W) uint8 view into the buffer (no copy)."""
        h, w = self.shapes[i]
        return self.pixels[self.offsets[i] : self.offsets[i + 1]].reshape(int(h), int(w))

    def background(self, i: int) -> int:
        """Image `i`'s background level, measured once (every augmented batch and test-time view needs it)."""
        if self._backgrounds is None:
            self._backgrounds = np.full(len(self), -1, dtype=np.int16)
        if self._backgrounds[i] < 0:
            self._backgrounds[i] = background_level(self.image(i))
        return int(self._backgrounds[i])

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.image(i) for i in range(len(self)))

    def index_of(self, ids: Sequence[str], where: str = "split") -> np.ndarray:
        """Positions of `ids` in this set; unknown ids are an error that names a few of them."""
        rows, missing = positions_of(ids, self.ids.tolist())
        if missing:
            raise DataMismatchError(
                f"{where}: {len(missing)} image ids are not in the packed data (e.g. {missing[:3]}). The data "
                "changed since the split was made: rerun the split stage (snakemake --forcerun split_valid ...)."
            )
        return rows

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageSet:
        """A new set with the images at `indices`, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageSet.from_images(
            [self.image(int(i)) for i in idx], self.ids[idx].tolist(), self.labels[idx].tolist(), self.class_names
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        write_npz(
            path,
            pixels=self.pixels,
            offsets=self.offsets,
            shapes=self.shapes,
            ids=self.ids,
            labels=self.labels,
            class_names=np.array(self.class_names, dtype=str),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ImageSet:
        """The set saved at `path`; its pixels are memory-mapped read-only (see `read_npz`), not read."""
        a = read_npz(path, required=("pixels", "offsets", "shapes", "ids", "labels", "class_names"), mapped=("pixels",))
        return cls(a["pixels"], a["offsets"], a["shapes"], a["ids"], a["labels"], a["class_names"].tolist())


LONGEST_SIDE_PERCENTILE = 75  # what `input_size: auto` starts from: three in four images are not shrunk


def longest_side_p75(shapes: np.ndarray) -> float:
    """The 75th percentile of the images' longest sides ((N, 2) shapes): the pack report's `longest_side_p75`,
    from which training resolves `input_size: auto` (training/settings.py)."""
    return float(np.percentile(shapes.max(axis=1), LONGEST_SIDE_PERCENTILE)) if len(shapes) else 0.0
