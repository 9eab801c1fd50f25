"""Reading one image file into the grayscale uint8 array every stage works on.

Plankton images are grayscale, dark organisms on a light background. Users bring whatever OpenCV reads, so this
module normalises the variety once, at packing time: colour is converted to gray, 16-bit and float images are
scaled to 8 bits, an alpha channel is composited onto the white background. Anything unreadable raises
`BadImageError` with the file named, so packing can stop or skip and report.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from deepsea.errors import BadImageError

# Extensions OpenCV's imread decodes in its PyPI builds; other files in a data folder are reported, not guessed at.
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".pgm",
        ".ppm",
        ".pbm",
        ".pnm",
        ".pxm",
        ".sr",
        ".ras",
        ".jp2",
        ".exr",
        ".hdr",
        ".pic",
        ".gif",  # the formats below: OpenCV 4.11 and later (older builds report them as unreadable)
        ".avif",
        ".pfm",
    }
)


@dataclass(frozen=True)
class DecodedImage:
    """A decoded grayscale image and what had to be done to it (worth reporting once per data set)."""

    pixels: np.ndarray  # (H, W) uint8
    converted_from: str | None  # e.g. "colour", "16-bit", "alpha"; None if it already was 8-bit gray


def border_level(pixels: np.ndarray) -> float:
    """Median gray value of an image's outermost pixels: its background level (light ~255 in plankton images)."""
    frame = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return float(np.median(frame))


MIN_BACKGROUND = 32  # a lower border median is organism, not background


def background_level(image: np.ndarray) -> int:
    """An image's own background gray level: the median of its outermost pixels (as `pack` measures it), rounded;
    at least MIN_BACKGROUND, so that an image whose border is all organism cannot turn its ink inside out."""
    return max(MIN_BACKGROUND, int(round(border_level(image))))


def is_image_file(path: Path) -> bool:
    """True if the extension is one OpenCV decodes (case-insensitive)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def read_gray(path: str | Path) -> DecodedImage:
    """Decode `path` to 2-D uint8 grayscale, or raise `BadImageError` naming the file and the problem."""
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode copes with non-ASCII paths
    except OSError as err:
        raise BadImageError(f"{path}: cannot read file ({err.strerror}).") from err
    if raw.size == 0:
        raise BadImageError(f"{path}: empty file (0 bytes).")
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise BadImageError(
            f"{path}: not a readable image (corrupt, truncated, or a format OpenCV {cv2.__version__} cannot decode)."
        )
    if _truncated_jpeg(raw):
        raise BadImageError(f"{path}: truncated JPEG (no end-of-image marker; it decodes with a grey band).")
    orientation = exif_orientation(raw)
    decoded = to_gray_uint8(upright(image, orientation), path)
    if orientation == 1:
        return decoded
    turned = "EXIF-oriented"  # reported like a conversion: the pixels differ from the file's stored order
    return DecodedImage(decoded.pixels, f"{turned}, {decoded.converted_from}" if decoded.converted_from else turned)


EXIF_ORIENTATION = 0x0112  # the tag a camera or phone writes instead of turning the pixels


def exif_orientation(raw: np.ndarray) -> int:
    """The EXIF orientation (1-8) stored in a JPEG, PNG or WebP file, 1 when it has none.

    OpenCV applies it only when it converts colours, and `read_gray` decodes unchanged (to keep 16 bits and alpha),
    so a phone photo stored sideways with orientation 6 would be read sideways: harmless for plankton, which lie at
    any angle, wrong for data whose orientation matters (workflow/configs/upright.yaml). Pillow parses only the
    headers, and only of files that hold an EXIF block. TIFF is left out: OpenCV turns it by its Orientation tag
    itself, even unchanged (5.0), so applying the tag again would turn it twice."""
    if not _has_exif_block(raw):
        return 1
    try:
        with Image.open(io.BytesIO(raw.tobytes())) as image:
            value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a header Pillow cannot parse means no orientation we can trust
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _has_exif_block(raw: np.ndarray) -> bool:
    """Whether a JPEG, PNG or WebP file holds EXIF, read from where each format puts it: the check runs on every
    image, and searching all the bytes of a 400 px JPEG took a quarter of its decoding time (1.2 ms); this, 2 us."""
    head = raw[:32].tobytes()
    if head[:2] == b"\xff\xd8":  # walk the segments before the image data: EXIF is an APP1 segment among them
        pos = 2
        while pos + 10 <= raw.size and raw[pos] == 0xFF and raw[pos + 1] not in (0xDA, 0xD9):  # not SOS, EOI
            if raw[pos + 1] == 0xE1 and raw[pos + 4 : pos + 10].tobytes() == b"Exif\0\0":
                return True
            pos += 2 + int.from_bytes(raw[pos + 2 : pos + 4].tobytes(), "big")
        return False
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":  # extended WebP: its VP8X flags say whether EXIF follows
        return head[12:16] == b"VP8X" and len(head) > 20 and bool(head[20] & 0x08)
    if head[:8] == b"\x89PNG\r\n\x1a\n":  # walk the chunk headers (a few dozen), not the pixel data
        pos = 8
        while pos + 8 <= raw.size:
            kind = raw[pos + 4 : pos + 8].tobytes()
            if kind == b"eXIf":
                return True
            if kind == b"IEND":
                break
            pos += 12 + int.from_bytes(raw[pos : pos + 4].tobytes(), "big")
    return False


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels as a viewer shows them: EXIF orientation k undone (2-4 mirror or turn, 5-8 swap the axes)."""
    if orientation in (5, 6, 7, 8):
        image = image.swapaxes(0, 1)  # transposed: 5 as stored; 6, 7, 8 need one more mirror
    mirror_rows, mirror_cols = {
        2: (False, True),
        3: (True, True),
        4: (True, False),
        6: (False, True),
        7: (True, True),
        8: (True, False),
    }.get(orientation, (False, False))
    return np.ascontiguousarray(image[:: -1 if mirror_rows else 1, :: -1 if mirror_cols else 1])


def _truncated_jpeg(raw: np.ndarray) -> bool:
    """A JPEG whose data stops before its end-of-image marker (FF D9): libjpeg fills the rest with grey and
    only warns, so a cut-off download would otherwise train as a real image. Padding after the marker is allowed."""
    if raw.size < 4 or raw[0] != 0xFF or raw[1] != 0xD8:
        return False
    tail = raw[-64:].tobytes().rstrip(b"\x00")
    return not tail.endswith(b"\xff\xd9")


def to_gray_uint8(image: np.ndarray, path: str | Path = "<array>") -> DecodedImage:
    """Convert any OpenCV-decoded array (gray, BGR, BGRA; 8/16-bit or float) to 2-D uint8 gray."""
    notes: list[str] = []
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8:
        source = image.dtype
        image, bits = _scale_to_uint8(image)
        notes.append(f"{source}" if bits is None else f"{source} ({bits}-bit)")
    if image.ndim == 3:
        if image.shape[2] == 4:
            notes.append("alpha")
            alpha = image[:, :, 3:4].astype(np.float32) / 255.0
            white = np.full_like(image[:, :, :3], 255, dtype=np.float32)
            image = np.round(image[:, :, :3] * alpha + white * (1.0 - alpha)).astype(np.uint8)
        if image.shape[2] == 3:
            if not (np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 1], image[:, :, 2])):
                notes.append("colour")
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        else:
            raise BadImageError(f"{path}: unsupported channel count {image.shape[2]}.")
    if image.ndim != 2 or image.shape[0] == 0 or image.shape[1] == 0:
        raise BadImageError(f"{path}: image has no pixels (shape {image.shape}).")
    return DecodedImage(np.ascontiguousarray(image), ", ".join(notes) or None)


CAMERA_BIT_DEPTHS = (8, 10, 12, 14, 16)  # what scientific cameras store, often in a 16-bit container


def _scale_to_uint8(image: np.ndarray) -> tuple[np.ndarray, int | None]:
    """Map 16-bit (or float) pixels to 8 bits; returns (pixels, bit depth used, or None for the type's full range).

    Unsigned images are scaled by the bit depth their values use, rounded up to a camera's (8, 10, 12, 14, 16) but
    never past the type's own bits (int16 holds 15): 12-bit camera data in a 16-bit file (values 0-4095) scaled by
    65535 would turn the white background into near black, i.e. all ink. Plankton images have a light background, so
    an image's maximum shows its depth. Floats in [0, 1] are scaled by 255, larger floats (and signed integers with
    no negative value) like unsigned integers; negative floats become black, NaN and inf white (background)."""
    if np.issubdtype(image.dtype, np.signedinteger) and image.min(initial=0) < 0:  # truly signed data: its range
        info = np.iinfo(image.dtype)
        scaled = (image.astype(np.float64) - info.min) / (info.max - info.min) * 255.0
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8), None
    values = image.astype(np.float64)
    finite = np.isfinite(values)
    peak = float(values.max(initial=0.0, where=finite))
    values[~finite] = np.inf  # NaN (and inf) clip to white: background
    full_range = np.iinfo(image.dtype).max.bit_length() if image.dtype.kind in "ui" else None
    if image.dtype.kind == "f" and peak <= 1.0:
        scale, bits = 255.0, None
    else:
        used = max(8, int(np.ceil(peak)).bit_length())
        bits = next((b for b in CAMERA_BIT_DEPTHS if b >= used), used)
        if full_range is not None:  # int16 holds 15 bits: a camera depth past the type's range would halve brightness
            bits = min(bits, full_range)
        scale = 255.0 / (2**bits - 1)
        if bits == full_range:
            bits = None  # the type's whole range: nothing worth reporting beyond the type
    return np.clip(np.round(values * scale), 0, 255).astype(np.uint8), bits
