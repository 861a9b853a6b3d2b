"""Test-time augmentation: named image variants and averaging over them.

A variant is a pure function of a decoded uint8 image. Each variant's features are cached
separately (the variant name is part of the cache key); predictions are averaged over the first
`n` variants of `VARIANTS`, the plain pass first, so `--tta 1` is the plain pass alone.

Every variant is a flip and/or a crop of the whole image, so a box drawn on the image has a
known place in each variant's view: `map_boxes` moves box targets from the plain view into a
variant's (training the box heads on the cached features of every variant), `unmap_boxes`
brings a box predicted in a variant's view back to the plain view (box TTA).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kit.competition.options import TTA_VIEWS
from kit.core.errors import InputError

CROP_FRACTION = 0.9
VARIANTS: tuple[str, ...] = TTA_VIEWS  # declared with the recipe options


def variants(n: int) -> tuple[str, ...]:
    """The first `n` TTA variants (flips and shifted crops)."""
    if not isinstance(n, int | np.integer) or not 1 <= n <= len(VARIANTS):
        raise InputError(
            f"tta must be an integer from 1 to {len(VARIANTS)}; received tta={n!r}. "
            f"Variants in order: {', '.join(VARIANTS)}"
        )
    return VARIANTS[: int(n)]


def _window(height: int, width: int, corner: str) -> tuple[int, int, int, int]:
    """`top, left, crop height, crop width` of a crop at `corner` (`tl`, `br`, `cc`, ...)."""
    ch, cw = max(1, round(height * CROP_FRACTION)), max(1, round(width * CROP_FRACTION))
    top = {"t": 0, "b": height - ch, "c": (height - ch) // 2}[corner[0]]
    left = {"l": 0, "r": width - cw, "c": (width - cw) // 2}[corner[1]]
    return top, left, ch, cw


def _crop(image: np.ndarray, corner: str) -> np.ndarray:
    top, left, ch, cw = _window(*image.shape[:2], corner)
    return image[top : top + ch, left : left + cw]


def _parse(variant: str) -> tuple[bool, str | None]:
    """(flipped, crop corner or None) of a variant name."""
    if variant not in VARIANTS:
        raise InputError(f"unknown TTA variant {variant!r}; known: {', '.join(VARIANTS)}")
    flip = variant.startswith("hflip")
    name = variant.removeprefix("hflip").removeprefix("_")
    if not name.startswith("crop_"):
        return flip, None
    corner = name.removeprefix("crop_")
    return flip, "cc" if corner == "center" else corner


def _view_geometry(variant: str, sizes: np.ndarray, input_size: tuple[int, int]
                   ) -> tuple[bool, np.ndarray, np.ndarray]:
    """Per image: whether the view is flipped, the window's (left, top) and its (width, height),
    both in pixels of the plain view's input size."""
    flip, corner = _parse(variant)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if (sizes <= 0).any():
        raise InputError(f"image sizes must be positive (width, height); received {sizes.tolist()}")
    width, height = (float(v) for v in input_size)
    offset = np.zeros((len(sizes), 2))
    extent = np.tile([width, height], (len(sizes), 1))
    if corner is not None:
        for row, (w, h) in enumerate(sizes.astype(int)):
            top, left, ch, cw = _window(h, w, corner)
            scale = np.array([width / w, height / h])
            offset[row] = np.array([left, top]) * scale
            extent[row] = np.array([cw, ch]) * scale
    return flip, offset, extent


def _check_boxes(boxes: np.ndarray, sizes: object) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    n_sizes = len(np.asarray(sizes).reshape(-1, 2))
    if boxes.ndim != 2 or boxes.shape[1] not in (4, 5) or len(boxes) != n_sizes:
        raise InputError(f"boxes must be (n, 4) or (n, 5) rows x, y, w, h[, has_box] with one "
                         f"image size per row; received boxes of shape {boxes.shape} and "
                         f"{n_sizes} sizes")
    return boxes


def map_boxes(boxes: np.ndarray, variant: str, sizes: object, input_size: tuple[int, int], *,
              min_visible: float = 0.7) -> np.ndarray:
    """Box targets of the plain view moved into `variant`'s view.

    Args:
        boxes: (n, 5) rows `x, y, w, h, has_box` in pixels of `input_size` (the plain view:
            the whole image resized to the input).
        variant: a name in `VARIANTS`.
        sizes: (n, 2) each image's stored (width, height): crops are cut from the image.
        input_size: the model input's (width, height).
        min_visible: a box keeps `has_box` only where at least this share of it lies inside the
            variant's crop (it is clipped to the crop).

    Returns:
        (n, 5) float32 boxes in pixels of `input_size` in the variant's view.

    Example:
        >>> map_boxes(np.array([[0, 0, 10, 10, 1]]), "hflip", [(100, 100)], (100, 100))
        array([[90.,  0., 10., 10.,  1.]], dtype=float32)
    """
    boxes = _check_boxes(boxes, sizes)
    flip, offset, extent = _view_geometry(variant, sizes, input_size)
    width = float(input_size[0])
    x0, y0 = boxes[:, 0].copy(), boxes[:, 1]
    w, h = np.maximum(boxes[:, 2], 0), np.maximum(boxes[:, 3], 0)
    if flip:
        x0 = width - x0 - w
    scale = np.array(input_size, dtype=np.float64) / extent  # (n, 2)
    lo = np.clip((np.stack([x0, y0], 1) - offset) * scale, 0, np.array(input_size, float))
    hi = np.clip((np.stack([x0 + w, y0 + h], 1) - offset) * scale, 0, np.array(input_size, float))
    size = hi - lo
    area = w * h * scale[:, 0] * scale[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        visible = np.where(area > 0, size[:, 0] * size[:, 1] / np.where(area > 0, area, 1), 0.0)
    has_box = boxes[:, 4] if boxes.shape[1] > 4 else np.ones(len(boxes))
    keep = (has_box > 0) & (visible >= min_visible)
    out = np.concatenate([lo, size, keep[:, None]], axis=1)
    out[~keep, :4] = 0.0
    return out.astype(np.float32)


def unmap_boxes(boxes: np.ndarray, variant: str, sizes: object,
                input_size: tuple[int, int]) -> np.ndarray:
    """Boxes predicted in `variant`'s view brought back to the plain view (the inverse of
    `map_boxes` for boxes inside the crop), so box predictions can be averaged over TTA views.

    Args:
        boxes: (n, 4) `x, y, w, h` in pixels of `input_size` in the variant's view.
        variant: a name in `VARIANTS`.
        sizes: (n, 2) each image's stored (width, height).
        input_size: the model input's (width, height).

    Returns:
        (n, 4) float64 boxes in pixels of `input_size` in the plain view.
    """
    boxes = _check_boxes(boxes, sizes)[:, :4]
    flip, offset, extent = _view_geometry(variant, sizes, input_size)
    scale = extent / np.array(input_size, dtype=np.float64)
    xy = boxes[:, :2] * scale + offset
    wh = boxes[:, 2:4] * scale
    if flip:
        xy[:, 0] = float(input_size[0]) - xy[:, 0] - wh[:, 0]
    return np.concatenate([xy, wh], axis=1)


def apply_variant(image: np.ndarray, variant: str) -> np.ndarray:
    """Apply a named variant to an HxWx3 image (before resizing to the input size)."""
    flip, corner = _parse(variant)
    out = image[:, ::-1] if flip else image
    if corner is not None:
        out = _crop(out, corner)
    return np.ascontiguousarray(out)


def average(predictions: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of equally shaped prediction arrays, in float64."""
    if not predictions:
        raise InputError("average needs at least one prediction array; received none")
    shapes = {p.shape for p in predictions}
    if len(shapes) != 1:
        raise InputError(f"predictions to average must share one shape; received {sorted(shapes)}")
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in predictions]), axis=0)
