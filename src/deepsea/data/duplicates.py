"""Identical images in a data set: found by a digest of their pixels, reported by `pack`, kept together by `split`.

Real collections hold copies: an image exported twice, the same frame under two names, or filed under two classes. A
copy on each side of the validation split scores the model on an image it trained on, so validation looks better
than the test set will; copies under different classes are label noise, worth fixing at the source. Packing reports
both (`duplicates` in the pack report, a line in the closing summary); the split keeps the copies of an image on one
side (`splits.stratified_split`). A test image identical to a training image (the same specimen in both sets) is
reported too (`copies_of_training_images`). Identical means the same decoded gray pixels: the same image saved as
PNG and as JPEG differs by compression and is not found.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from deepsea.data.imageset import ImageSet


def pixel_digest(pixels: np.ndarray) -> str:
    """A 128-bit digest of an image's shape and pixels: equal for identical images, in any process or run."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(pixels.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


def duplicate_groups(ids: Sequence[str], digests: Sequence[str]) -> list[list[str]]:
    """The ids of every set of two or more identical images (equal `pixel_digest`s), each sorted, the groups sorted
    by their first id."""
    by_digest: dict[str, list[str]] = {}
    for image_id, digest in zip(ids, digests, strict=True):
        by_digest.setdefault(digest, []).append(str(image_id))
    return sorted(sorted(group) for group in by_digest.values() if len(group) > 1)


def copies_of(ids: Sequence[str], digests: Sequence[str], reference: ImageSet) -> list[list[str]]:
    """[id, reference id] for every image (given by its `pixel_digest`) identical to one in `reference` (the first
    such reference id, by id)."""
    first_id: dict[str, str] = {}
    for ref_id, pixels in zip(reference.ids.tolist(), reference, strict=True):
        digest = pixel_digest(pixels)
        first_id[digest] = min(first_id.get(digest, ref_id), ref_id)
    pairs = [[str(i), first_id.get(digest, "")] for i, digest in zip(ids, digests, strict=True)]
    return sorted(pair for pair in pairs if pair[1])
