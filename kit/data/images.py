"""The one image loader: any readable file becomes an HxWx3 uint8 RGB array, oriented as displayed.

Every image in the kit (training, test, probes, reports) is read through :func:`load_image`, so
all of them get the same decoding, the same EXIF orientation (``PIL.ImageOps.exif_transpose``)
and the same conversion rules:

* the format is detected from the content, not the extension (a PNG named ``.jpg`` is fine);
* grayscale, palette, CMYK and other modes are converted to RGB by Pillow;
* 16-bit images (modes ``I;16*`` and 32-bit ``I``, as 16-bit PNGs open) are scaled to 8 bits by
  keeping the high byte (``value >> 8``; ``I`` values are first clipped to ``[0, 65535]``);
* alpha is DROPPED (the colour channels are kept as stored; nothing is composited), for
  ``RGBA``, ``LA``, ``PA`` and palette images with transparency alike.

Unreadable files raise :class:`UnreadableImageError` with a short reason; truncated files are
never half-loaded (``ImageFile.LOAD_TRUNCATED_IMAGES`` is left at its default, False).
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kit.core.errors import DeclarationError, InputError

__all__ = ["UnreadableImageError", "file_digest", "image_size", "load_image", "resize"]

_CHUNK_BYTES = 1 << 20
_ORIENTATION_TAG = 0x0112
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
# What Pillow raises on a broken file (UnidentifiedImageError is an OSError); the
# DecompressionBombError, a plain Exception, is caught beside these.
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, struct.error)


class UnreadableImageError(InputError):
    """An image file could not be read.

    Attributes:
        path: The file.
        reason: Short reason, e.g. ``"empty file"``, ``"no such file"``, ``"not an image"``,
            ``"truncated or corrupt: <pillow message>"``.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")

    def __reduce__(self) -> tuple[type[UnreadableImageError], tuple[Path, str]]:
        return (type(self), (self.path, self.reason))


def _check_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise DeclarationError(
            f"path must be a pathlib.Path; received path={path!r} of type {type(path).__name__}."
        )
    return Path(path)


def _check_size(name: str, size: object) -> tuple[int, int]:
    valid = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
        and all(v >= 1 for v in size)
    )
    if not valid:
        raise InputError(
            f"{name} must be a (width, height) pair of positive integers; received "
            f"{name}={size!r}. Pass e.g. {name}=(224, 224)."
        )
    return int(size[0]), int(size[1])  # type: ignore[index]


def _check_readable_file(path: Path) -> None:
    """Raises UnreadableImageError unless ``path`` is an existing, non-empty regular file."""
    try:
        if path.is_dir():
            raise UnreadableImageError(path, "is a directory")
        if path.stat().st_size == 0:
            raise UnreadableImageError(path, "empty file")
    except FileNotFoundError as error:
        raise UnreadableImageError(path, "no such file") from error
    except PermissionError as error:
        raise UnreadableImageError(path, "permission denied") from error
    except OSError as error:
        raise UnreadableImageError(path, f"cannot access file: {error.strerror}") from error


def _decode_error(path: Path, error: Exception) -> UnreadableImageError:
    if isinstance(error, Image.DecompressionBombError):
        return UnreadableImageError(path, f"decompression bomb: {error}")
    if isinstance(error, UnidentifiedImageError):
        return UnreadableImageError(path, "not an image")
    if isinstance(error, FileNotFoundError):
        return UnreadableImageError(path, "no such file")
    return UnreadableImageError(path, f"truncated or corrupt: {error}")


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Converts a loaded Pillow image of any mode to a C-contiguous HxWx3 uint8 RGB array."""
    if img.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(img).astype(np.int64)
        gray = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if img.mode == "F":
        img = img.convert("L")  # 32-bit float: values clipped to [0, 255]
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # avoids Pillow's warning; alpha is dropped just below
    if img.mode != "RGB":
        img = img.convert("RGB")  # drops alpha from RGBA/LA/PA; converts L, P, CMYK, YCbCr...
    array = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(array)


def load_image(path: Path, *, draft: tuple[int, int] | None = None) -> np.ndarray:
    """Reads an image file as an HxWx3 uint8 RGB array, EXIF orientation applied.

    Args:
        path: The image file; its format is detected from the content.
        draft: Optional ``(width, height)`` the caller will resize to. For JPEGs, Pillow then
            decodes at a reduced DCT scale (1/2, 1/4 or 1/8) that still gives at least that
            size (as displayed), which is much faster for big photos. The result is NOT
            exactly ``draft``; resize it afterwards. Ignored for other formats.

    Returns:
        A C-contiguous uint8 array of shape (height, width, 3), RGB, as displayed.

    Raises:
        UnreadableImageError: For a missing file, a directory, an empty file, a file that is
            not an image, a truncated or corrupt one, or a decompression bomb.
        ValueError: If ``draft`` is not a pair of positive integers.

    Example:
        >>> image = load_image(Path("train/ALB/img_00003.jpg"), draft=(224, 224))  # doctest: +SKIP
        >>> small = resize(image, (224, 224))  # doctest: +SKIP
    """
    path = _check_path(path)
    requested = None if draft is None else _check_size("draft", draft)
    _check_readable_file(path)
    try:
        with Image.open(path) as img:
            if requested is not None and img.format == "JPEG":
                width, height = requested
                orientation = img.getexif().get(_ORIENTATION_TAG)
                if orientation in _TRANSPOSING_ORIENTATIONS:
                    width, height = height, width  # the stored image is rotated 90 degrees
                img.draft("RGB", (width, height))
            img.load()
            oriented = ImageOps.exif_transpose(img)
            return _to_rgb_array(oriented)
    except (Image.DecompressionBombError, *_DECODE_ERRORS) as error:
        raise _decode_error(path, error) from error


def image_size(path: Path) -> tuple[int, int]:
    """Returns ``(width, height)`` as displayed, i.e. after EXIF orientation.

    Reads the header only (plus the EXIF block): width and height are swapped for
    orientations 5-8, so the result always equals ``load_image(path).shape[1::-1]``. For a PNG
    without an EXIF chunk before the pixel data, Pillow decodes the file to look for one
    after it, so PNGs are slower than JPEGs here.

    Raises:
        UnreadableImageError: As :func:`load_image`.
    """
    path = _check_path(path)
    _check_readable_file(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = img.getexif().get(_ORIENTATION_TAG)
    except (Image.DecompressionBombError, *_DECODE_ERRORS) as error:
        raise _decode_error(path, error) from error
    if orientation in _TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes an HxW or HxWxC image to ``size = (width, height)``.

    Uses ``cv2.INTER_AREA`` when shrinking (target area smaller than the source area: area
    averaging avoids aliasing) and ``cv2.INTER_LINEAR`` when enlarging (or when one side grows
    as much as the other shrinks). Returns the input's dtype and channel count, C-contiguous;
    a same-size call returns a copy.

    Raises:
        TypeError: If ``image`` is not a numpy array.
        ValueError: If ``size`` is not a pair of positive integers, or ``image`` is not 2-D or
            3-D, or is empty.
    """
    if not isinstance(image, np.ndarray):
        raise DeclarationError(
            f"image must be a numpy array (H, W) or (H, W, C); received {type(image).__name__}."
        )
    width, height = _check_size("size", size)
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(
            f"image must be a non-empty (H, W) or (H, W, C) array; received shape {image.shape}."
        )
    src_height, src_width = image.shape[:2]
    if (src_width, src_height) == (width, height):
        return np.ascontiguousarray(image).copy()
    shrinking = width * height < src_width * src_height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)
    if image.ndim == 3 and resized.ndim == 2:  # cv2 drops a single channel axis
        resized = resized[:, :, None]
    return np.ascontiguousarray(resized)


def file_digest(path: Path) -> str:
    """Returns the sha1 hex digest of the file's bytes (the feature cache's content key).

    Raises:
        UnreadableImageError: If the file is missing or a directory.
    """
    path = _check_path(path)
    digest = hashlib.sha1()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                digest.update(chunk)
    except FileNotFoundError as error:
        raise UnreadableImageError(path, "no such file") from error
    except IsADirectoryError as error:
        raise UnreadableImageError(path, "is a directory") from error
    except PermissionError as error:
        raise UnreadableImageError(path, "permission denied") from error
    return digest.hexdigest()
