"""A Dogs vs. Cats Redux-sized synthetic dataset for `scale.py`, fast to write, cached.

The layout is the competition's own (`competitions/dogs-vs-cats-redux`, as Kaggle ships it)::

    train/cat.N.jpg, train/dog.N.jpg     N from 0 per class
    test/N.jpg                           N from 1
    sample_submission.csv                id,label (label 0.5)
    solution.csv                         id,label,Usage: the hidden truth (label 1 = dog, about
                                         30 % Public), so `kit run` also scores the submission

Each image's size is drawn like the real photos': the longer side uniform in
`Size.long_side` (300-500 px at full size: the real images are at most about 500x500), the
shorter side 0.55-1.0 of it, landscape 70 % of the time. What it shows is cheap to draw: a
smooth background (a small random grid resized), film grain (a window of one noise tile, so
the JPEGs cost about what a photo costs to decode), and an animal: a body and a head ellipse,
pointy triangle ears for a cat, hanging ellipse ears and a snout for a dog, fur colours drawn
from overlapping per-class palettes. Every image is a pure function of (seed, split, index):
the same arguments give byte-identical files, and a smaller dataset of the same seed holds the
same images as the first part of a larger one.

About 1-2 ms per image to draw and encode on one core (see `benchmarks/README.md`).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

VERSION = 1  # bump when the drawing changes: cached datasets of another version are rebuilt
JPEG_QUALITY = 90
PUBLIC_FRACTION = 0.3
COMPLETE = ".complete"
_MAX_SIDE = 500  # the real images are at most about 500x500
_TILE = 640  # side of the film-grain tile: a window of any image's size always fits
_TRAIN, _TEST, _PLAN, _GRAIN = 0, 1, 2, 3  # keys of the random streams derived from the seed

# Fur colours (BGR) and each class's probabilities over them: overlapping, not the same.
_FUR = np.array([(30, 30, 32), (228, 233, 235), (136, 130, 130), (60, 130, 210),
                 (42, 76, 120), (110, 160, 200), (172, 210, 230), (80, 170, 220)], np.float64)
_FUR_P = ((0.18, 0.12, 0.22, 0.20, 0.08, 0.08, 0.07, 0.05),  # cat
          (0.15, 0.10, 0.07, 0.06, 0.22, 0.18, 0.10, 0.12))  # dog


@dataclass(frozen=True, kw_only=True)
class Size:
    """How many images, and how large."""

    n_train: int  # half cats, half dogs (must be even)
    n_test: int
    long_side: tuple[int, int]  # range of the longer side, px

    def __post_init__(self) -> None:
        lo, hi = self.long_side
        if not 16 <= lo <= hi <= _MAX_SIDE:
            raise ValueError(f"long_side must be (lo, hi) with 16 <= lo <= hi <= {_MAX_SIDE}; "
                             f"received {self.long_side}")
        if self.n_train < 2 or self.n_train % 2 or self.n_test < 1:
            raise ValueError("n_train must be even and >= 2 (half cats, half dogs) and n_test "
                             f">= 1; received n_train={self.n_train}, n_test={self.n_test}")

    def name(self, seed: int) -> str:
        lo, hi = self.long_side
        return f"dvc-{self.n_train}-{self.n_test}-{lo}-{hi}-seed{seed}-v{VERSION}"

    def divided(self, divisor: int) -> Size:
        """This size with `divisor` times fewer images (at least 2 train, 1 test)."""
        n_train = max(2, 2 * round(self.n_train / divisor / 2))
        return Size(n_train=n_train, n_test=max(1, round(self.n_test / divisor)),
                    long_side=self.long_side)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _colour(rng: np.random.Generator, cls: int) -> tuple[int, ...]:
    base = _FUR[int(rng.choice(len(_FUR), p=_FUR_P[cls]))]
    return tuple(int(v) for v in np.clip(base + rng.normal(0, 14, 3), 0, 255))


def _image_size(rng: np.random.Generator, long_side: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of one image."""
    long = int(rng.integers(long_side[0], long_side[1] + 1))
    short = max(16, int(long * rng.uniform(0.55, 1.0)))
    return (long, short) if rng.random() < 0.7 else (short, long)


def _background(rng: np.random.Generator, size: tuple[int, int], tile: np.ndarray) -> np.ndarray:
    width, height = size
    grid = rng.integers(20, 236, (int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3), np.uint8)
    image = cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)
    y, x = (int(v) for v in rng.integers(0, _TILE - _MAX_SIDE, 2))
    grain = tile[y:y + height, x:x + width]
    return cv2.add(image, grain, dtype=cv2.CV_8U) if rng.random() < 0.5 else \
        cv2.subtract(image, grain, dtype=cv2.CV_8U)


def _animal(image: np.ndarray, rng: np.random.Generator, cls: int) -> None:
    """Draw a cat (cls 0) or a dog (cls 1) into `image`, in place."""
    height, width = image.shape[:2]
    r = int(min(width, height) * rng.uniform(0.15, 0.3))
    cx, cy = int(rng.integers(r, width - r + 1)), int(rng.integers(r, height - r + 1))
    fur, dark = _colour(rng, cls), _colour(rng, cls)
    body = (cx + int(rng.integers(-r, r + 1)), cy + int(1.4 * r))
    cv2.ellipse(image, body, (int(1.3 * r), r), float(rng.uniform(-30, 30)), 0, 360, fur, -1)
    if cls == 0:  # pointy ears
        for side in (-1, 1):
            ear = np.array([(cx + side * int(0.9 * r), cy - int(0.2 * r)),
                            (cx + side * int(0.7 * r), cy - int(1.4 * r)),
                            (cx + side * int(0.2 * r), cy - int(0.8 * r))], np.int32)
            cv2.fillConvexPoly(image, ear, dark)
    cv2.ellipse(image, (cx, cy), (r, int(0.9 * r)), 0.0, 0, 360, fur, -1)
    if cls == 1:  # hanging ears and a snout with a big nose
        for side in (-1, 1):
            cv2.ellipse(image, (cx + side * int(0.9 * r), cy + int(0.1 * r)),
                        (int(0.28 * r), int(0.7 * r)), side * 15.0, 0, 360, dark, -1)
        cv2.ellipse(image, (cx, cy + int(0.45 * r)), (int(0.45 * r), int(0.35 * r)), 0.0, 0, 360,
                    dark, -1)
        cv2.circle(image, (cx, cy + int(0.3 * r)), max(2, int(0.15 * r)), (20, 20, 25), -1)
    for side in (-1, 1):  # eyes
        cv2.circle(image, (cx + side * int(0.38 * r), cy - int(0.15 * r)), max(2, r // 8),
                   (15, 15, 15), -1)


def draw(seed: int, key: tuple[int, int], cls: int, size: Size, tile: np.ndarray) -> bytes:
    """The JPEG bytes of one image: a pure function of its arguments."""
    rng = _rng(seed, *key)
    image = _background(rng, _image_size(rng, size.long_side), tile)
    _animal(image, rng, cls)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"cv2.imencode failed for an image of shape {image.shape}")
    return buffer.tobytes()


def grain_tile(seed: int) -> np.ndarray:
    """The film-grain tile every image takes a window of (uint8, 0-24)."""
    noise = _rng(seed, _GRAIN).normal(0.0, 8.0, (_TILE, _TILE, 3))
    return np.clip(np.abs(noise), 0, 24).astype(np.uint8)


def _test_plan(seed: int, index: int) -> tuple[int, bool]:
    """(class, public) of test image `index`: per image, so a smaller dataset's test set is the
    first part of a larger one's."""
    rng = _rng(seed, _PLAN, index)
    return int(rng.integers(2)), bool(rng.random() < PUBLIC_FRACTION)


def write(out: Path, size: Size, *, seed: int) -> None:
    """Write the dataset of `size` into the new folder `out` (see the module docstring)."""
    tile = grain_tile(seed)
    (out / "train").mkdir(parents=True)
    (out / "test").mkdir()
    for i in range(size.n_train // 2):
        for cls, name in enumerate(("cat", "dog")):
            (out / "train" / f"{name}.{i}.jpg").write_bytes(draw(seed, (_TRAIN, 2 * i + cls),
                                                                 cls, size, tile))
    plan = [_test_plan(seed, i) for i in range(size.n_test)]
    for i, (cls, _) in enumerate(plan):
        (out / "test" / f"{i + 1}.jpg").write_bytes(draw(seed, (_TEST, i), cls, size, tile))
    ids = np.arange(1, size.n_test + 1)
    pd.DataFrame({"id": ids, "label": 0.5}).to_csv(out / "sample_submission.csv", index=False)
    pd.DataFrame({"id": ids, "label": [cls for cls, _ in plan],
                  "Usage": ["Public" if public else "Private" for _, public in plan]}).to_csv(
        out / "solution.csv", index=False)


def ensure(root: Path, size: Size, *, seed: int) -> tuple[Path, bool]:
    """The dataset of `size` under `root`, written first (into a temporary folder, renamed when
    complete) unless a complete one is cached there; (its folder, whether it was written now)."""
    target = root / size.name(seed)
    if (target / COMPLETE).is_file():
        return target, False
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        write(staging / "data", size, seed=seed)
        (staging / "data" / COMPLETE).write_text(f"version {VERSION}\n")
        if target.exists():
            shutil.rmtree(target)
        (staging / "data").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, True
