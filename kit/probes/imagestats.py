"""Cheap image statistics, decoded once per image and shared by the probes.

Every image is decoded once through :func:`kit.data.images.load_image` at a reduced JPEG draft scale
(at least `DRAFT` pixels a side), in a thread pool. From that one decode come:

* ``phash``: the 64-bit perceptual hash (``imagehash.phash``), for near-duplicate candidates;
* ``gray``: a `THUMB_SIDE` x `THUMB_SIDE` grayscale thumbnail, blurred (Gaussian, `THUMB_BLUR`
  pixels) so that resampling and JPEG artefacts fade while the scene stays, and standardised to
  zero mean and unit variance (so brightness and contrast changes cancel), for verifying
  near-duplicates;
* ``grid``: on a `GRID` x `GRID` grid of cells, each cell's ``log(R/G)``, ``log(B/G)`` and log
  luminance relative to the whole image: the background (deck) colour and layout, unchanged
  when the light gets brighter or darker (a gain on all channels), for inferring groups;
* ``histogram``: a joint HSV colour histogram (square-rooted, so it compares like the Hellinger
  distance), for the adversarial and CV-comparison models.

Unreadable files are listed with their reason, never fatal.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import imagehash
import numpy as np
from PIL import Image

from kit.core.errors import InputError
from kit.data.images import UnreadableImageError, load_image

__all__ = [
    "DRAFT",
    "GRID",
    "HSV_BINS",
    "THUMB_BLUR",
    "THUMB_SIDE",
    "ImageDescriptor",
    "ImageStats",
    "Unreadable",
    "describe",
    "gray_thumbnail",
    "perceptual_hash",
    "read_image_stats",
]

DRAFT: tuple[int, int] = (64, 64)
THUMB_SIDE = 32
THUMB_BLUR = 1.0
GRID = 4
HSV_BINS: tuple[int, int, int] = (8, 4, 4)
_FLAT = 1e-6  # standard deviation below which a thumbnail is a flat image


@dataclass(frozen=True, kw_only=True)
class Unreadable:
    """An image that could not be read: its path (relative to the data root) and why."""

    path: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True, eq=False)
class ImageDescriptor:
    """The statistics of one decoded image (see the module docstring)."""

    phash: np.uint64
    gray: np.ndarray
    grid: np.ndarray
    histogram: np.ndarray


@dataclass(frozen=True, kw_only=True, eq=False)
class ImageStats:
    """Statistics of many images; arrays hold the readable ones, in input order.

    Attributes:
        readable: Boolean mask over the input files.
        phash: (n_readable,) uint64 perceptual hashes.
        gray: (n_readable, THUMB_SIDE**2) float32 standardised grayscale thumbnails.
        grid: (n_readable, GRID*GRID*3) float32 log colour ratios and relative luminance.
        histogram: (n_readable, prod(HSV_BINS)) float32 square-rooted HSV histograms.
        unreadable: The files that could not be decoded.
    """

    readable: np.ndarray
    phash: np.ndarray
    gray: np.ndarray
    grid: np.ndarray
    histogram: np.ndarray
    unreadable: tuple[Unreadable, ...]


def perceptual_hash(image: np.ndarray) -> np.uint64:
    """The 64-bit DCT perceptual hash of an HxWx3 uint8 RGB image, packed into a uint64."""
    bits = imagehash.phash(Image.fromarray(image)).hash.ravel()
    return np.packbits(bits).view(np.uint64)[0]


def gray_thumbnail(image: np.ndarray) -> np.ndarray:
    """A blurred, standardised `THUMB_SIDE`-square grayscale thumbnail, flattened (float32).

    A flat image gives all zeros, so two flat images are identical whatever their brightness.
    """
    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    thumb = cv2.resize(gray, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
    thumb = cv2.GaussianBlur(thumb, (0, 0), THUMB_BLUR).ravel()
    std = float(thumb.std())
    if std < _FLAT:
        return np.zeros(THUMB_SIDE * THUMB_SIDE, np.float32)
    return ((thumb - thumb.mean()) / std).astype(np.float32)


def _grid_colour(image: np.ndarray) -> np.ndarray:
    """Per cell: log(R/G), log(B/G), log(luminance / image luminance); gain-invariant."""
    small = cv2.resize(np.ascontiguousarray(image).astype(np.float32), (GRID, GRID),
                       interpolation=cv2.INTER_AREA) + 1.0  # +1: no log of zero
    r, g, b = small[..., 0], small[..., 1], small[..., 2]
    luminance = small.mean(axis=2)
    features = np.stack([np.log(r / g), np.log(b / g),
                         np.log(luminance / luminance.mean())], axis=-1)
    return features.astype(np.float32).ravel()


def _histogram(image: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HSV_BINS), [0, 180, 0, 256, 0, 256])
    hist = hist.ravel().astype(np.float64)
    return np.sqrt(hist / max(hist.sum(), 1.0)).astype(np.float32)


def describe(image: np.ndarray) -> ImageDescriptor:
    """All statistics of one HxWx3 uint8 RGB image (pure)."""
    return ImageDescriptor(phash=perceptual_hash(image), gray=gray_thumbnail(image),
                           grid=_grid_colour(image), histogram=_histogram(image))


def _describe_file(file: Path) -> ImageDescriptor | UnreadableImageError:
    try:
        return describe(load_image(file, draft=DRAFT))
    except UnreadableImageError as error:
        return error


def read_image_stats(files: Sequence[Path], paths: Sequence[str], *,
                     workers: int = 2) -> ImageStats:
    """Decode every file once (draft scale, `workers` threads) and describe it.

    Args:
        files: Image files.
        paths: Their paths relative to the data root (used to name unreadable files).
        workers: Decoding threads (Pillow and OpenCV release the GIL).

    Raises:
        ValueError: If `files` and `paths` differ in length or `workers` < 1.
    """
    if len(files) != len(paths):
        raise InputError(f"files and paths must match; received {len(files)} and {len(paths)}.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer; received workers={workers!r}.")
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kit-probe") as pool:
        results = list(pool.map(_describe_file, [Path(f) for f in files]))
    readable = np.array([isinstance(r, ImageDescriptor) for r in results], dtype=bool)
    good = [r for r in results if isinstance(r, ImageDescriptor)]
    unreadable = tuple(Unreadable(path=p, reason=r.reason)
                       for p, r in zip(paths, results, strict=True)
                       if isinstance(r, UnreadableImageError))
    n_grid, n_hist = GRID * GRID * 3, int(np.prod(HSV_BINS))
    return ImageStats(
        readable=readable,
        phash=np.array([d.phash for d in good], dtype=np.uint64),
        gray=(np.stack([d.gray for d in good]) if good
              else np.zeros((0, THUMB_SIDE * THUMB_SIDE), np.float32)),
        grid=np.stack([d.grid for d in good]) if good else np.zeros((0, n_grid), np.float32),
        histogram=(np.stack([d.histogram for d in good]) if good
                   else np.zeros((0, n_hist), np.float32)),
        unreadable=unreadable,
    )
