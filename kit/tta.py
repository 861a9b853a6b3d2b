"""Test-time augmentation: named image variants and averaging over them.

A variant is a pure function of a decoded uint8 image. Each variant's features are cached
separately (the variant name is part of the cache key); predictions are averaged over the first
`n` variants of `VARIANTS`, the plain pass first, so `--tta 1` is the plain pass alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CROP_FRACTION = 0.9
VARIANTS: tuple[str, ...] = (
    "plain",
    "hflip",
    "crop_tl",
    "crop_br",
    "hflip_crop_tr",
    "hflip_crop_bl",
    "crop_center",
    "hflip_crop_center",
)


def variants(n: int) -> tuple[str, ...]:
    """The first `n` TTA variants (flips and shifted crops)."""
    if not isinstance(n, int | np.integer) or not 1 <= n <= len(VARIANTS):
        raise ValueError(
            f"tta must be an integer from 1 to {len(VARIANTS)}; received tta={n!r}. "
            f"Variants in order: {', '.join(VARIANTS)}"
        )
    return VARIANTS[: int(n)]


def _crop(image: np.ndarray, corner: str) -> np.ndarray:
    height, width = image.shape[:2]
    ch, cw = max(1, round(height * CROP_FRACTION)), max(1, round(width * CROP_FRACTION))
    top = {"t": 0, "b": height - ch, "c": (height - ch) // 2}[corner[0]]
    left = {"l": 0, "r": width - cw, "c": (width - cw) // 2}[corner[1]]
    return image[top : top + ch, left : left + cw]


def apply_variant(image: np.ndarray, variant: str) -> np.ndarray:
    """Apply a named variant to an HxWx3 image (before resizing to the input size)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown TTA variant {variant!r}; known: {', '.join(VARIANTS)}")
    out = image
    name = variant
    if name.startswith("hflip"):
        out = out[:, ::-1]
        name = name.removeprefix("hflip").removeprefix("_")
    if name.startswith("crop_"):
        corner = name.removeprefix("crop_")
        out = _crop(out, "cc" if corner == "center" else corner)
    return np.ascontiguousarray(out)


def average(predictions: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of equally shaped prediction arrays, in float64."""
    if not predictions:
        raise ValueError("average needs at least one prediction array; received none")
    shapes = {p.shape for p in predictions}
    if len(shapes) != 1:
        raise ValueError(f"predictions to average must share one shape; received {sorted(shapes)}")
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in predictions]), axis=0)
