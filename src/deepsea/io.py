"""File I/O in one place: atomic writes and readers that fail with clear errors.

Why atomic: Snakemake (and users) treat an existing output file as finished. A job killed halfway must never leave
a truncated file that a later step could read, so every writer writes to a temporary file in the same directory
and renames it into place (rename is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import struct
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepsea.errors import DeepseaError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON (stable bytes for identical content)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, naming the file if it is missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise DeepseaError(f"{p}: file not found. Run the stage that makes it first (e.g. `snakemake {p}`).")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise DeepseaError(f"{p}: not valid JSON ({err}). Delete it and rerun the stage that makes it.") from err


def write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """Write arrays to an uncompressed .npz atomically (uncompressed: packing is I/O bound, not disk bound)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle


def _map_stored_member(path: Path, name: str) -> np.ndarray | None:
    """Array `name` of an uncompressed .npz as a read-only memory map, or None where it cannot be mapped
    (compressed, empty, or not a plain .npy member): the caller then reads it into memory."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(f"{name}.npy")
        except KeyError:
            return None
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local_header = fh.read(30)  # the member's local header: its name and extra field lengths end it
        if local_header[:4] != b"PK\x03\x04":
            return None
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
        fh.seek(info.header_offset + 30 + name_length + extra_length)
        major, _ = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(fh)
        offset = fh.tell()
    if dtype.hasobject or 0 in shape:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran_order else "C")


def read_npz(
    path: str | os.PathLike[str], required: tuple[str, ...] = (), mapped: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """Read every array of an .npz, checking that the `required` names are present.

    The arrays named in `mapped` are memory-mapped instead of read (our .npz files are uncompressed): the pixels of
    130,000 test images then cost no private memory, pages are read when a stage touches them and the kernel can drop
    them again, so streaming stages stay bounded and stages that need only ids and labels never read the pixels."""
    p = Path(path)
    if not p.is_file():
        raise DeepseaError(f"{p}: file not found. Run the stage that makes it first (e.g. `snakemake {p}`).")
    try:
        arrays = {name: m for name in mapped if (m := _map_stored_member(p, name)) is not None}
        with np.load(p, allow_pickle=False) as data:
            arrays |= {name: data[name] for name in data.files if name not in arrays}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DeepseaError(f"{p}: not a readable .npz file ({err}). Delete it and rerun its stage.") from err
    missing = [name for name in required if name not in arrays]
    if missing:
        raise DeepseaError(f"{p}: missing arrays {missing}; it was made by another version. Delete it and rerun.")
    return arrays


def write_gzip_text(path: str | os.PathLike[str], text: str) -> None:
    """Gzip `text` with a fixed header (no file name, mtime 0) so identical text gives identical bytes."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(text.encode("utf-8"))


def positions_of(wanted: Sequence[str], available: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """(row of each wanted id in `available`, the wanted ids that are not there). Callers name the problem."""
    row = {image_id: i for i, image_id in enumerate(available)}
    missing = [image_id for image_id in wanted if image_id not in row]
    return np.array([row.get(image_id, -1) for image_id in wanted], dtype=np.int64), missing
