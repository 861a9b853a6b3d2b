"""Crop features: a predicted box cut from the full-resolution image, resized and cached.

Crop features are cached like any other (a `FeatureStore` whose variant is `crop`), addressed by
the image's content digest and the crop rectangle (`crop_key`), so a re-run, another fold that
predicts the same rectangle, or another seed reuses them. Each image file is decoded once for all
the rectangles asked of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit.data.images import UnreadableImageError, load_image, resize
from kit.features.cache import SHARD_ROWS, FeatureStore

MARGIN = 0.25  # widen each side of a predicted box by this fraction of its width/height
MIN_SIDE = 0.1  # a crop side is at least this fraction of the image side

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels


def crop_rect(box: Sequence[float], size: tuple[int, int], *, margin: float = MARGIN,
              min_side: float = MIN_SIDE) -> Rect:
    """The crop rectangle of one predicted box `x, y, w, h` (image pixels) in an image of
    `size` (width, height): widened by `margin`, at least `min_side` of the image, clipped.

    Example:
        >>> crop_rect((100, 100, 40, 20), (400, 300))
        (90, 95, 150, 125)
    """
    width, height = size
    x, y, w, h = (float(v) for v in box)
    w, h = max(w, 0.0), max(h, 0.0)
    cx, cy = x + w / 2, y + h / 2
    half_w = max(w * (1 + 2 * margin), min_side * width) / 2
    half_h = max(h * (1 + 2 * margin), min_side * height) / 2
    x0 = int(np.clip(np.floor(cx - half_w), 0, width - 1))
    y0 = int(np.clip(np.floor(cy - half_h), 0, height - 1))
    x1 = int(np.clip(np.ceil(cx + half_w), x0 + 1, width))
    y1 = int(np.clip(np.ceil(cy + half_h), y0 + 1, height))
    return x0, y0, x1, y1


def crop_key(digest: str, rect: Rect) -> str:
    """The cache address of one crop: the image's content digest and the rectangle."""
    return hashlib.sha1(f"{digest}:{','.join(map(str, rect))}".encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class CropRequest:
    key: str
    file: str
    rect: Rect


def _decode_crops(file: str, rects: Sequence[Rect], size: tuple[int, int]
                  ) -> list[np.ndarray] | UnreadableImageError:
    try:
        image = load_image(Path(file))
    except UnreadableImageError as error:
        return error
    out = []
    for x0, y0, x1, y1 in rects:
        out.append(resize(np.ascontiguousarray(image[y0:y1, x0:x1]), size))
    return out


def extract_crops(store: FeatureStore, requests: Sequence[CropRequest], *,
                  forward: Callable[[np.ndarray], Any], batch_size: int = 32,
                  progress: Callable[[int], None] | None = None, workers: int = 2
                  ) -> dict[str, str]:
    """Compute and cache the features of every requested crop not yet in `store`.

    Files are decoded once each, in a thread pool, with all their rectangles cut together.
    Returns `{file: reason}` for unreadable files (their crops are left out).
    """
    missing = set(store.missing([r.key for r in requests]))
    by_file: dict[str, dict[str, Rect]] = {}
    for request in requests:
        if request.key in missing:
            by_file.setdefault(request.file, {})[request.key] = request.rect
    unreadable: dict[str, str] = {}
    keys: list[str] = []
    rows: list[np.ndarray] = []
    pending: list[tuple[str, np.ndarray]] = []
    size = store.key.input_size

    def flush(final: bool) -> None:
        nonlocal pending
        while len(pending) >= batch_size or (final and pending):
            batch, pending = pending[:batch_size], pending[batch_size:]
            features = np.asarray(forward(np.stack([img for _, img in batch])))
            keys.extend(k for k, _ in batch)
            rows.append(features)
        if sum(len(r) for r in rows) >= SHARD_ROWS or (final and rows):
            store.append(list(keys), np.concatenate(rows))
            keys.clear()
            rows.clear()

    files = list(by_file)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kit-crop") as pool:
        decoded = pool.map(lambda f: _decode_crops(f, list(by_file[f].values()), size), files)
        for file, crops in zip(files, decoded, strict=True):
            if isinstance(crops, UnreadableImageError):
                unreadable[file] = crops.reason
            else:
                pending.extend(zip(by_file[file], crops, strict=True))
                flush(final=False)
            if progress is not None:
                progress(1)
    flush(final=True)
    return unreadable


__all__ = ["CropRequest", "Rect", "crop_key", "crop_rect", "extract_crops"]
