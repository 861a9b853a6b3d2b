"""Records, argument checks and seeded helpers shared by the demo dataset generators."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kit.core.errors import InputError

__all__ = [
    "JPEG_QUALITY",
    "Corpus",
    "DemoSummary",
    "balanced_corpus",
    "check_corpus_args",
    "check_preset",
    "check_seed",
    "child_rng",
    "encode_jpeg",
    "largest_remainder",
    "prepare_out",
]

JPEG_QUALITY = 90


@dataclass(frozen=True, kw_only=True)
class DemoSummary:
    """What `generate` wrote.

    Attributes:
        root: The dataset folder, in the competition's Kaggle layout.
        classes: Class names in submission column order.
        n_train: Number of training images.
        n_test: Number of images per test split, e.g. ``{"test_stg1": 200, "test_stg2": 200}``
            (a read-only mapping).
        solution: The hidden ``solution.csv`` (truth plus a Public/Private ``Usage`` column).
        meta: ``demo_meta.csv``: the hidden truth per image (path, split, label, size, ...).
    """

    root: Path
    classes: tuple[str, ...]
    n_train: int
    n_test: Mapping[str, int]
    solution: Path
    meta: Path


@dataclass(frozen=True, kw_only=True, eq=False)
class Corpus:
    """An in-memory labelled image set for pretraining the demo base.

    Attributes:
        images: ``(n, height, width, 3)`` uint8 RGB.
        labels: ``(n,)`` int64 indexes into ``classes``.
        classes: Class names.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise InputError(
                "images must be a (n, height, width, 3) uint8 array; received "
                f"shape={self.images.shape} dtype={self.images.dtype}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise InputError(
                f"labels must have shape ({self.images.shape[0]},) to match images; "
                f"received labels.shape={self.labels.shape}"
            )


def check_preset(preset: object, presets: Mapping[str, object]) -> object:
    """The preset named `preset`, or a ValueError listing the valid names."""
    if not isinstance(preset, str) or preset not in presets:
        names = ", ".join(repr(name) for name in presets)
        raise InputError(
            f"preset must be one of {names}; received preset={preset!r}. Pass one of those names."
        )
    return presets[preset]


def check_seed(seed: object) -> int:
    """`seed` if it is a non-negative int, else a ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative int; received seed={seed!r}.")
    return int(seed)


def check_corpus_args(n: object, size: object) -> tuple[int, tuple[int, int]]:
    """Validated ``(n, (width, height))`` for a `corpus` call."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive int (number of images); received n={n!r}.")
    ok = (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in size
        )
    )
    if not ok:
        raise InputError(
            "size must be a (width, height) pair of positive ints, e.g. size=(64, 64); "
            f"received size={size!r}."
        )
    return int(n), (int(size[0]), int(size[1]))


def balanced_corpus(n: object, *, seed: object, size: object, tag: int,
                    classes: tuple[str, ...],
                    draw: Callable[[int, int, int], np.ndarray]) -> Corpus:
    """A balanced in-memory pretraining set: labels a seeded permutation of ``i % classes``
    (stream `tag` of `seed`), image ``i`` drawn by ``draw(seed, label, i)`` at any size and
    resized to `size` (``(width, height)``) with ``cv2.INTER_AREA``.

    Raises:
        InputError: On a non-positive `n`, a bad `size` or a negative `seed`.
    """
    n, size = check_corpus_args(n, size)
    seed = check_seed(seed)
    labels = child_rng(seed, tag).permutation(np.arange(n) % len(classes)).astype(np.int64)
    images = np.empty((n, size[1], size[0], 3), dtype=np.uint8)
    for i in range(n):
        images[i] = cv2.resize(draw(seed, int(labels[i]), i), size,
                               interpolation=cv2.INTER_AREA)
    return Corpus(images=images, labels=labels, classes=classes)


def prepare_out(out: object) -> Path:
    """Creates `out` if missing; a ValueError if it is a file or a non-empty folder."""
    if not isinstance(out, (str, Path)):
        raise InputError(f"out must be a pathlib.Path or str; received out={out!r}.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(
            f"out must be a folder that is empty or does not exist; received out='{out}', "
            "which is a file. Pass a new folder path."
        )
    if out.is_dir() and any(out.iterdir()):
        raise InputError(
            f"out must be a folder that is empty or does not exist; received out='{out}', "
            "which is not empty. Pass a new folder path or delete its contents first."
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def child_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator derived from `seed` and integer `keys` (no global state)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def largest_remainder(total: int, weights: Sequence[float]) -> tuple[int, ...]:
    """Splits `total` into integer parts proportional to `weights` (ties go to the lower index).

    The parts always sum to `total`.
    """
    w = np.asarray(weights, dtype=np.float64)
    quota = total * w / w.sum()
    parts = np.floor(quota).astype(np.int64)
    order = sorted(range(len(w)), key=lambda i: (-(quota[i] - parts[i]), i))
    for i in order[: total - int(parts.sum())]:
        parts[i] += 1
    return tuple(int(p) for p in parts)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a demo CSV (no index, ``\\n`` line ends, so files are byte-identical everywhere)."""
    frame.to_csv(path, index=False, lineterminator="\n")


def encode_jpeg(rgb: np.ndarray) -> bytes:
    """JPEG bytes (quality `JPEG_QUALITY`) of an RGB uint8 image; deterministic."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise RuntimeError(f"JPEG encoding failed for an image of shape {rgb.shape}")
    return buf.tobytes()
