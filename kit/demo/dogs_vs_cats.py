"""Synthetic demo data in the layout of Dogs vs. Cats Redux: Kernels Edition.

`generate` writes, under `out`::

    train/cat.N.jpg, train/dog.N.jpg     N from 0 per class
    test/N.jpg                           N from 1
    sample_submission.csv                id,label (id = N, label = 0.5)
    solution.csv                         id,label,Usage (label 1 = dog; about 30 % Public)
    demo_meta.csv                        hidden truth: path,split,label,width,height

Every image has its own random size, drawn independently of the class (width and height each
uniform in 150-500 px at scale 1), so, as in the real competition, size carries no label: a size
probe must find nothing. Cats have pointy ears, a round face and whiskers; dogs floppy ears (a few
erect), a longer snout and a big nose; fur colours overlap between the classes. Everything is a
pure function of ``(seed, preset)``: the same arguments give byte-identical files.

`corpus` draws a separate balanced, in-memory set from its own random stream for pretraining the
demo's small base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
import pandas as pd

from kit.demo import draw
from kit.demo.common import (
    Corpus,
    DemoSummary,
    balanced_corpus,
    check_preset,
    check_seed,
    child_rng,
    encode_jpeg,
    prepare_out,
    write_csv,
)

__all__ = [
    "CLASSES",
    "PRESETS",
    "PUBLIC_FRACTION",
    "SIZE_RANGE",
    "Corpus",
    "DemoPreset",
    "DemoSummary",
    "corpus",
    "generate",
]

CLASSES: tuple[str, ...] = ("cat", "dog")
#: Range of image width and height (each independent, uniform) at scale 1.
SIZE_RANGE: tuple[int, int] = (150, 500)
#: Share of test rows scored on the public leaderboard in ``solution.csv``.
PUBLIC_FRACTION = 0.3


@dataclass(frozen=True, kw_only=True)
class DemoPreset:
    """Size of a generated dataset.

    Attributes:
        n_train: Training images, half cats and half dogs (must be even).
        n_test: Test images, half dogs (rounded down) in random order.
        scale: Multiplies `SIZE_RANGE`.
    """

    n_train: int
    n_test: int
    scale: float


PRESETS = MappingProxyType({
    "full": DemoPreset(n_train=400, n_test=200, scale=1.0),
    "tiny": DemoPreset(n_train=24, n_test=12, scale=0.5),
})

# Keys that separate the random streams derived from one seed.
_TAG_PLAN, _TAG_IMAGE, _TAG_CORPUS = 21, 22, 23

_FUR: tuple[draw.Color, ...] = (
    (32, 30, 30),     # black
    (235, 233, 228),  # white
    (130, 130, 136),  # grey
    (210, 130, 60),   # ginger
    (120, 76, 42),    # brown
    (200, 160, 110),  # tan
    (230, 210, 172),  # cream
    (220, 170, 80),   # golden
)
# Probability of each fur colour per class: overlapping, but not the same.
_FUR_P = (
    (0.18, 0.12, 0.22, 0.20, 0.08, 0.08, 0.07, 0.05),  # cat
    (0.15, 0.10, 0.07, 0.06, 0.22, 0.18, 0.10, 0.12),  # dog
)
_IRIS: tuple[draw.Color, ...] = ((120, 170, 60), (210, 180, 50), (200, 130, 40), (110, 160, 210))
_BLACK: draw.Color = (0, 0, 0)
_WHITE: draw.Color = (255, 255, 255)
_PINK: draw.Color = (222, 140, 150)


def generate(out: Path, *, seed: int = 0, preset: str = "full") -> DemoSummary:
    """Writes a synthetic dogs-vs-cats dataset in the Kaggle layout (see the module docstring).

    Args:
        out: Folder to write into; created if missing, must be empty if it exists.
        seed: Non-negative int; the files are a pure function of ``(seed, preset)``.
        preset: A name in `PRESETS` ("full": 400 train, 200 test; "tiny": 24 train, 12 test at
            half size).

    Returns:
        A `DemoSummary` of what was written.

    Raises:
        ValueError: On an unknown preset, a negative seed, or an `out` that is a file or a
            non-empty folder.
    """
    config: DemoPreset = check_preset(preset, PRESETS)  # type: ignore[assignment]
    seed = check_seed(seed)
    out = prepare_out(out)
    plan = child_rng(seed, _TAG_PLAN)
    per_class = config.n_train // 2
    n_dogs = config.n_test // 2
    test_labels = plan.permutation(np.r_[np.zeros(config.n_test - n_dogs), np.ones(n_dogs)])
    public = np.zeros(config.n_test, dtype=bool)
    public[plan.permutation(config.n_test)[: round(PUBLIC_FRACTION * config.n_test)]] = True

    lo, hi = (max(16, math.floor(v * config.scale + 0.5)) for v in SIZE_RANGE)
    jobs = [("train", Path("train", f"{CLASSES[c]}.{i}.jpg"), c, (0, c, i))
            for c in range(len(CLASSES)) for i in range(per_class)]
    jobs += [("test", Path("test", f"{i + 1}.jpg"), int(test_labels[i]), (1, 0, i))
             for i in range(config.n_test)]
    (out / "train").mkdir()
    (out / "test").mkdir()
    rows = []
    for split, rel, cls, key in jobs:
        rng = child_rng(seed, _TAG_IMAGE, *key)
        size = (int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1)))
        (out / rel).write_bytes(encode_jpeg(_render(cls, size, rng)))
        rows.append({"path": rel.as_posix(), "split": split, "label": CLASSES[cls],
                     "width": size[0], "height": size[1]})

    ids = np.arange(1, config.n_test + 1)
    write_csv(pd.DataFrame({"id": ids, "label": 0.5}), out / "sample_submission.csv")
    write_csv(pd.DataFrame({"id": ids, "label": test_labels.astype(np.int64),
                       "Usage": np.where(public, "Public", "Private")}), out / "solution.csv")
    write_csv(pd.DataFrame(rows), out / "demo_meta.csv")
    return DemoSummary(
        root=out, classes=CLASSES, n_train=2 * per_class,
        n_test=MappingProxyType({"test": config.n_test}), solution=out / "solution.csv",
        meta=out / "demo_meta.csv",
    )


def corpus(n: int, *, seed: int, size: tuple[int, int]) -> Corpus:
    """A balanced in-memory pretraining set of cats and dogs from its own random stream.

    Scenes are drawn at a reduced random size (each side 96-256 px) and resized to `size` with
    ``cv2.INTER_AREA``.

    Args:
        n: Number of images; class counts differ by at most one.
        seed: Non-negative int.
        size: Output ``(width, height)``.

    Returns:
        A `Corpus` with ``images`` ``(n, height, width, 3)`` uint8 RGB and int64 ``labels``.

    Raises:
        ValueError: On a non-positive `n`, a bad `size` or a negative `seed`.
    """
    def draw(seed: int, label: int, i: int) -> np.ndarray:
        r = child_rng(seed, _TAG_CORPUS, i)
        return _render(label, (int(r.integers(96, 257)), int(r.integers(96, 257))), r)

    return balanced_corpus(n, seed=seed, size=size, tag=_TAG_CORPUS, classes=CLASSES,
                           draw=draw)


# ---------------------------------------------------------------------------------------------
# Rendering: a background, maybe a body, and a head in a local frame (unit = head radius).


def _render(cls: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    w, h = size
    img = _background(rng, w, h)
    fur = draw.jitter(rng, _FUR[int(rng.choice(len(_FUR), p=_FUR_P[cls]))], 18)
    second = draw.jitter(rng, _FUR[int(rng.integers(len(_FUR)))], 18)
    radius = rng.uniform(0.16, 0.33) * min(w, h)
    center = np.array([rng.uniform(0.5 * radius, w - 0.5 * radius),
                       rng.uniform(0.9 * radius, h - 0.5 * radius)])
    if rng.random() < 0.6:  # body behind the head
        body = center + radius * np.array([rng.uniform(-0.8, 0.8), rng.uniform(1.1, 1.9)])
        draw.fill_ellipse(img, body, radius * rng.uniform(0.9, 1.6, 2), fur,
                          rng.uniform(-40, 40))
    parts = _cat(rng, fur, second) if cls == 0 else _dog(rng, fur, second)
    scale = (radius * rng.uniform(0.9, 1.1), radius)
    angle = np.deg2rad(rng.uniform(-25, 25))
    for pts, color, width in parts:
        placed = draw.transform(pts, scale=scale, angle=angle, offset=center)
        if width == 0.0:
            draw.fill(img, placed, color)
        else:
            draw.polyline(img, placed, color, width * radius)
    return img


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Indoor (wall and floor), outdoor (sky and grass), a blanket or a plain gradient."""
    sw, sh = max(2, w // 3), max(2, h // 3)
    kind = int(rng.integers(4))
    a = np.asarray(draw.hsv(rng.uniform(0, 1), rng.uniform(0.05, 0.5), rng.uniform(0.35, 0.95)),
                   np.float32)
    b = np.asarray(draw.hsv(rng.uniform(0, 1), rng.uniform(0.05, 0.6), rng.uniform(0.2, 0.9)),
                   np.float32)
    y = np.linspace(0, 1, sh, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 1, sw, dtype=np.float32)[None, :, None]
    if kind == 0:  # wall above a floor
        horizon = rng.uniform(0.35, 0.8)
        img = np.where(y < horizon, a, b * (0.8 + 0.3 * y)) * np.ones_like(x)
    elif kind == 1:  # sky above grass
        sky = np.asarray(draw.hsv(rng.uniform(0.55, 0.62), rng.uniform(0.2, 0.6), 0.9),
                         np.float32)
        grass = np.asarray(draw.hsv(rng.uniform(0.2, 0.35), rng.uniform(0.4, 0.8),
                                    rng.uniform(0.3, 0.7)), np.float32)
        horizon = rng.uniform(0.1, 0.5)
        img = np.where(y < horizon, sky * (0.85 + 0.2 * y), grass) * np.ones_like(x)
        img = img * (1.0 + 0.25 * draw.value_noise(rng, sh, sw, 12)[..., None] * (y > horizon))
    elif kind == 2:  # blanket: stripes or checks
        period = rng.uniform(0.05, 0.2)
        u = np.floor(x / period) + (np.floor(y / period) if rng.random() < 0.5 else 0)
        img = np.where(u % 2 == 0, a, b)
    else:  # plain gradient
        t = np.clip(x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1) + 0.5, 0, 1)
        img = a * (1 - t) + b * t
    img = img * (1.0 + 0.1 * draw.value_noise(rng, sh, sw, int(rng.integers(3, 9)))[..., None])
    small = np.clip(img, 0, 255).astype(np.uint8)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    for _ in range(int(rng.integers(0, 3))):  # cushions, toys, furniture
        c = rng.uniform(0, 1, 2) * (w, h)
        half = rng.uniform(0.05, 0.2, 2) * min(w, h)
        corners = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)]) * half
        color = draw.hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.9))
        if rng.random() < 0.5:
            draw.fill(out, draw.transform(corners, scale=1.0, angle=rng.uniform(0, 1), offset=c),
                      color)
        else:
            draw.fill_ellipse(out, c, half, color)
    return out


_Part = tuple[np.ndarray, draw.Color, float]  # points (head-radius units), colour, line width


def _tri(*pts: tuple[float, float]) -> np.ndarray:
    return np.array(pts, dtype=np.float64)


def _mirror(pts: np.ndarray) -> np.ndarray:
    return pts * (-1.0, 1.0)


def _shrink(pts: np.ndarray, k: float) -> np.ndarray:
    c = pts.mean(0)
    return c + (pts - c) * k


def _cat(rng: np.random.Generator, fur: draw.Color, second: draw.Color) -> list[_Part]:
    parts: list[_Part] = []
    dark = draw.blend(fur, _BLACK, 0.45)
    if rng.random() < 0.1:  # folded ears
        ear = _tri((-0.8, -0.45), (-0.62, -0.95), (-0.3, -0.8))
    else:
        ear = _tri((-0.92, -0.25), (rng.uniform(-0.85, -0.65), rng.uniform(-1.4, -1.1)),
                   (-0.2, -0.82))
    for e in (ear, _mirror(ear)):
        parts += [(e, fur, 0.0), (_shrink(e, 0.55) + (0, 0.06), _PINK, 0.0)]
    parts.append((draw.ellipse_points((0, 0), (1.0, rng.uniform(0.82, 0.92))), fur, 0.0))
    if rng.random() < 0.35:  # white muzzle and chest
        parts.append((draw.ellipse_points((0, 0.42), (0.42, 0.3)), (235, 232, 226), 0.0))
    elif rng.random() < 0.3:  # a patch
        parts.append((draw.ellipse_points((rng.uniform(-0.5, 0.5), -0.3), (0.4, 0.35)),
                      second, 0.0))
    if rng.random() < 0.4:  # tabby stripes
        for x in (-0.2, 0.0, 0.2):
            parts.append((_tri((x, -0.82), (x + 0.02, -0.45)), dark, 0.06))
        for s in (-1, 1):
            for dy in (0.0, 0.14):
                parts.append((_tri((s * 0.95, 0.05 + dy), (s * 0.65, 0.1 + dy)), dark, 0.05))
    parts += [(draw.ellipse_points((s * 0.18, 0.38), (0.22, 0.15)),
               draw.blend(fur, _WHITE, 0.25), 0.0) for s in (-1, 1)]
    iris = draw.jitter(rng, _IRIS[int(rng.integers(len(_IRIS)))], 15)
    for s in (-1, 1):
        c = (s * 0.38, -0.12)
        parts += [(draw.ellipse_points(c, (0.2, 0.13), -s * 10), iris, 0.0),
                  (draw.ellipse_points(c, (0.035, rng.uniform(0.07, 0.12))), (10, 10, 10), 0.0)]
    parts.append((_tri((-0.09, 0.2), (0.09, 0.2), (0.0, 0.3)), _PINK, 0.0))
    mouth = draw.blend(fur, _BLACK, 0.6)
    parts.append((_tri((-0.12, 0.43), (0.0, 0.38), (0.12, 0.43)), mouth, 0.025))
    whisker = (240, 240, 240) if sum(fur) < 450 else (60, 60, 60)
    for s in (-1, 1):
        for k in range(3):
            parts.append((_tri((s * 0.25, 0.33 + 0.05 * k), (s * 1.3, 0.12 + 0.16 * k)),
                          whisker, 0.018))
    return parts


def _dog(rng: np.random.Generator, fur: draw.Color, second: draw.Color) -> list[_Part]:
    parts: list[_Part] = []
    ear_color = second if rng.random() < 0.4 else draw.blend(fur, _BLACK, 0.35)
    erect = rng.random() < 0.15
    if erect:
        ear = _tri((-0.88, -0.3), (rng.uniform(-0.8, -0.6), rng.uniform(-1.5, -1.2)),
                   (-0.25, -0.8))
        parts += [(e, ear_color, 0.0) for e in (ear, _mirror(ear))]
    parts.append((draw.ellipse_points((0, -0.1), (rng.uniform(0.8, 0.9), 0.85)), fur, 0.0))
    if rng.random() < 0.3:  # a patch over one eye
        parts.append((draw.ellipse_points((rng.choice([-0.35, 0.35]), -0.2), (0.33, 0.3)),
                      second, 0.0))
    if rng.random() < 0.25:  # brows
        parts += [(draw.ellipse_points((s * 0.3, -0.38), (0.1, 0.06)), (200, 150, 90), 0.0)
                  for s in (-1, 1)]
    snout = rng.uniform(0.32, 0.42)
    muzzle = draw.blend(fur, _WHITE, rng.uniform(0.15, 0.5))
    parts.append((draw.ellipse_points((0, 0.5), (rng.uniform(0.38, 0.48), snout)), muzzle, 0.0))
    for s in (-1, 1):
        c = (s * 0.36, -0.15)
        parts += [(draw.ellipse_points(c, (0.11, 0.11)), (60, 35, 20), 0.0),
                  (draw.ellipse_points((c[0] + 0.03, c[1] - 0.03), (0.03, 0.03)), _WHITE, 0.0)]
    parts.append((draw.ellipse_points((0, 0.33), (rng.uniform(0.15, 0.2), 0.11)),
                  (25, 20, 20), 0.0))
    mouth = draw.blend(muzzle, _BLACK, 0.6)
    parts.append((_tri((0, 0.42), (0, 0.6)), mouth, 0.025))
    parts.append((_tri((-0.25, 0.58), (0, 0.63), (0.25, 0.58)), mouth, 0.025))
    if rng.random() < 0.35:
        parts.append((draw.ellipse_points((0, 0.5 + snout), (0.12, 0.16)), (230, 110, 130), 0.0))
    if not erect:  # floppy ears hang beside the face
        tilt = rng.uniform(5, 25)
        length = rng.uniform(0.5, 0.75)
        parts += [(draw.ellipse_points((s * 0.85, 0.05), (0.27, length), s * tilt), ear_color, 0.0)
                  for s in (-1, 1)]
    return parts
