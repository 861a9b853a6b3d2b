"""Bounding boxes in the community annotation format, and the share of a map inside them.

A box file is ``<annotations>/<class>_labels.json`` (e.g. ``alb_labels.json``): a JSON list of
``{"filename": ..., "annotations": [{"class": "rect", "x", "y", "width", "height"}]}``, in
pixels of the image as stored. The class is the file name's prefix (case-insensitive).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["Box", "box_mask", "mass_inside", "read_boxes"]

SUFFIX = "_labels.json"
RASTER_SIDE = 256  # longest side of the raster on which mass inside boxes is measured


@dataclass(frozen=True, kw_only=True)
class Box:
    """An axis-aligned rectangle in image pixels."""

    x: float
    y: float
    width: float
    height: float


def read_boxes(folder: Path, classes: Sequence[str],
               train_paths: Sequence[str]) -> dict[str, tuple[Box, ...]]:
    """``{train path: boxes}`` from every ``*_labels.json`` in `folder`.

    A record is matched to the training image ``train/<CLASS>/<filename>`` when that path is in
    `train_paths`, else to the one training path ending in ``/<filename>``. Records that match
    nothing, and non-``rect`` annotations, are skipped.

    Raises:
        ValueError: If a box file is not a JSON list of records (the message names the file).
    """
    folder = Path(folder)
    by_class = {c.lower(): c for c in classes}
    known = set(train_paths)
    by_name: dict[str, list[str]] = {}
    for path in train_paths:
        by_name.setdefault(path.rsplit("/", 1)[-1], []).append(path)
    out: dict[str, list[Box]] = {}
    for file in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        label = by_class.get(file.name[: -len(SUFFIX)].lower())
        try:
            records = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"box file {file} is not valid JSON: {error}") from error
        if not isinstance(records, list):
            raise ValueError(f"box file {file} must hold a JSON list of records; found "
                             f"{type(records).__name__}")
        for record in records:
            if not isinstance(record, dict) or "filename" not in record:
                continue
            name = Path(str(record["filename"])).name
            path = f"train/{label}/{name}" if label else None
            if path not in known:
                candidates = by_name.get(name, [])
                path = candidates[0] if len(candidates) == 1 else None
            if path is None:
                continue
            for item in record.get("annotations", []):
                if isinstance(item, dict) and item.get("class") == "rect":
                    try:
                        box = Box(x=float(item["x"]), y=float(item["y"]),
                                  width=float(item["width"]), height=float(item["height"]))
                    except (KeyError, TypeError, ValueError):
                        continue
                    if box.width > 0 and box.height > 0:
                        out.setdefault(path, []).append(box)
    return {path: tuple(boxes) for path, boxes in out.items()}


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
        raise ValueError(f"heatmap must be 2-D (h, w); received shape {heat.shape}.")
    if (heat < 0).any():
        raise ValueError("heatmap must be non-negative (apply ReLU first).")
    mask = box_mask(boxes, image_size)
    up = np.clip(cv2.resize(heat, (mask.shape[1], mask.shape[0]),
                            interpolation=cv2.INTER_LINEAR), 0, None)
    total = float(up.sum())
    chance = float(mask.mean())
    if total <= 0:
        return float("nan"), chance
    return float(up[mask].sum()) / total, chance
