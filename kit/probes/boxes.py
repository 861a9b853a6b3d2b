"""Bounding boxes in the community annotation format, and the share of a map inside them.

Reading lives in :mod:`kit.data.annotations` (rect and head-tail point variants); this module keeps
the attention probe's view of it (`read_boxes`, every box per training image) and measures how
much of a map falls inside the boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from kit.core.errors import InputError
from kit.data.annotations import SUFFIX, Box, read_annotations

__all__ = ["SUFFIX", "Box", "box_mask", "mass_inside", "read_boxes"]

RASTER_SIDE = 256  # longest side of the raster on which mass inside boxes is measured


def read_boxes(folder: Path, classes: Sequence[str],
               train_paths: Sequence[str]) -> dict[str, tuple[Box, ...]]:
    """``{train path: boxes}`` from every ``*_labels.json`` in `folder`.

    A thin view of :func:`kit.data.annotations.read_annotations` (see there for matching, the point
    variant and what is skipped): every box of every matched training image.

    Raises:
        ValueError: If a box file is not a JSON list of records (the message names the file),
            or the folder mixes rect and point files.
    """
    return dict(read_annotations(Path(folder), classes, train_paths).boxes)


def _raster(image_size: tuple[int, int]) -> tuple[int, int, float]:
    width, height = image_size
    scale = min(1.0, RASTER_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale)), scale


def box_mask(boxes: Sequence[Box], image_size: tuple[int, int]) -> np.ndarray:
    """Boolean raster (longest side `RASTER_SIDE`) of the union of `boxes`, clipped to the image."""
    width, height, scale = _raster(image_size)
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        x0 = int(np.clip(np.floor(box.x * scale), 0, width))
        y0 = int(np.clip(np.floor(box.y * scale), 0, height))
        x1 = int(np.clip(np.ceil((box.x + box.width) * scale), 0, width))
        y1 = int(np.clip(np.ceil((box.y + box.height) * scale), 0, height))
        mask[y0:y1, x0:x1] = True
    return mask


def mass_inside(heatmap: np.ndarray, boxes: Sequence[Box],
                image_size: tuple[int, int]) -> tuple[float, float]:
    """Share of a non-negative map's mass inside the boxes, and the boxes' share of the area.

    The (h, w) map covers the whole image (as a conv feature map of the resized image does);
    it is upsampled bilinearly to the raster of :func:`box_mask`.

    Returns:
        ``(share, chance)``; `share` is NaN when the map has no mass.

    Raises:
        ValueError: If the map is not 2-D or has negative values.
    """
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise InputError(f"heatmap must be 2-D (h, w); received shape {heat.shape}.")
    if (heat < 0).any():
        raise InputError("heatmap must be non-negative (apply ReLU first).")
    mask = box_mask(boxes, image_size)
    up = np.clip(cv2.resize(heat, (mask.shape[1], mask.shape[0]),
                            interpolation=cv2.INTER_LINEAR), 0, None)
    total = float(up.sum())
    chance = float(mask.mean())
    if total <= 0:
        return float("nan"), chance
    return float(up[mask].sum()) / total, chance
