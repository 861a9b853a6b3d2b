"""Drawing primitives for the synthetic demo images: shapes, colours, gradients and noise.

Images are RGB uint8 arrays drawn in place with OpenCV; colours are ``(r, g, b)`` tuples. Shapes
are given as float ``(n, 2)`` point arrays in pixel coordinates and drawn anti-aliased with
sub-pixel precision. Noise and gradients are computed at low resolution by the callers and
upscaled, which keeps a 1280x720 image to a few milliseconds.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "Color",
    "blend",
    "ellipse_points",
    "fill",
    "fill_ellipse",
    "hsv",
    "jitter",
    "linear_gradient",
    "polyline",
    "scale_color",
    "transform",
    "value_noise",
]

Color = tuple[int, int, int]

SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << SHIFT


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def fill(img: np.ndarray, points: np.ndarray, color: Sequence[float]) -> None:
    """Fills the polygon `points` ``(n, 2)`` (pixels, float) with `color`, anti-aliased."""
    cv2.fillPoly(img, [_fixed(points)], _cv_color(color), cv2.LINE_AA, SHIFT)


def polyline(
    img: np.ndarray, points: np.ndarray, color: Sequence[float], thickness: float, *,
    closed: bool = False,
) -> None:
    """Draws the open (or closed) polyline `points` with a width of `thickness` pixels."""
    cv2.polylines(
        img, [_fixed(points)], closed, _cv_color(color), max(1, round(thickness)), cv2.LINE_AA,
        SHIFT,
    )


def fill_ellipse(
    img: np.ndarray, center: Sequence[float], axes: Sequence[float], color: Sequence[float],
    angle: float = 0.0,
) -> None:
    """Fills an ellipse with semi-axes `axes` rotated by `angle` degrees."""
    fill(img, ellipse_points(center, axes, angle), color)


def ellipse_points(
    center: Sequence[float], axes: Sequence[float], angle: float = 0.0, n: int = 28,
) -> np.ndarray:
    """``(n, 2)`` points on an ellipse (semi-axes `axes`, rotated `angle` degrees)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    pts = np.stack([axes[0] * np.cos(t), axes[1] * np.sin(t)], axis=1)
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return pts @ rot.T + np.asarray(center, dtype=np.float64)


def transform(
    points: np.ndarray, *, scale: float | Sequence[float], angle: float,
    offset: Sequence[float],
) -> np.ndarray:
    """Scales (per axis if a pair), rotates by `angle` radians, then translates by `offset`."""
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (np.asarray(points, dtype=np.float64) * s) @ rot.T + np.asarray(offset, np.float64)


def linear_gradient(height: int, width: int, *, angle: float, strength: float) -> np.ndarray:
    """``(height, width, 1)`` float32 factor going from ``1 - strength/2`` to ``1 + strength/2``
    along direction `angle` (radians)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u = x / max(width - 1, 1) * np.cos(angle) + y / max(height - 1, 1) * np.sin(angle)
    u = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
    return (1.0 + strength * (u - 0.5))[..., None].astype(np.float32)


def value_noise(
    rng: np.random.Generator, height: int, width: int, cells: int,
) -> np.ndarray:
    """Smooth ``(height, width)`` float32 noise in about [-1, 1] with about `cells` blobs across."""
    cells = max(1, cells)
    gh = max(2, round(cells * height / max(width, 1)) + 1)
    grid = rng.uniform(-1.0, 1.0, size=(gh, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def hsv(h: float, s: float, v: float) -> Color:
    """An RGB colour from hue, saturation and value in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (round(r * 255), round(g * 255), round(b * 255))


def jitter(rng: np.random.Generator, color: Sequence[float], amount: float = 12.0) -> Color:
    """`color` with independent uniform noise of +-`amount` per channel, clipped to [0, 255]."""
    noise = rng.uniform(-amount, amount, size=3)
    return _clip([float(v) + float(d) for v, d in zip(color, noise, strict=True)])


def scale_color(color: Sequence[float], gain: Sequence[float] | float) -> Color:
    """`color` multiplied per channel by `gain`, clipped to [0, 255]."""
    return _clip(np.asarray(color, dtype=np.float64) * np.asarray(gain, dtype=np.float64))


def blend(a: Sequence[float], b: Sequence[float], t: float) -> Color:
    """The colour a fraction `t` of the way from `a` to `b`."""
    return _clip((1.0 - t) * np.asarray(a, np.float64) + t * np.asarray(b, np.float64))


def _clip(c: Sequence[float]) -> Color:
    r, g, b = (min(255, max(0, round(float(v)))) for v in c)
    return (r, g, b)


def _cv_color(color: Sequence[float]) -> tuple[int, int, int]:
    return _clip(color)
