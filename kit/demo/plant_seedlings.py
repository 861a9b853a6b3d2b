"""Synthetic demo data in the layout of Plant Seedlings Classification (Kaggle, 2017-2018).

`generate` writes, under `out`::

    train/<Species>/<name>.png           one folder per species (names with spaces and hyphens)
    test/<name>.png                      names: 9 lowercase hex digits, like 0021e90e4.png
    sample_submission.csv                file,species (every row Sugar beet), sorted by file
    solution.csv                         file,species,Usage (half the rows Public)
    demo_meta.csv                        hidden truth: path,split,label,width,height,stage

Each image is one seedling seen from above on soil or gravel (stones, sometimes a plant marker or
the pot's dark rim), drawn at a random growth stage. The species differ by leaf shape, count and
arrangement, and the related ones look alike: the four grasses are thin blades (Black-grass dark
and narrow, Loose Silky-bent narrower, more and wavier, Common wheat broader and yellowish, Maize
broad with a pale midrib); Charlock has notched kidney-shaped cotyledons, Sugar beet long strap
ones and glossy oval leaves; Cleavers whorls of narrow leaves; Common Chickweed small paired
leaves on sprawling stems; Fat Hen mealy grey-green toothed diamonds; Scentless Mayweed finely
divided leaves; Shepherds Purse a rosette of toothed leaves; Small-flowered Cranesbill round
lobed leaves on long stalks. Training counts mirror the real imbalance, and so does the test.

Every image has its own random size (mostly square, side log-uniform in the preset's range),
drawn before and independently of the species, so the size carries no label. Everything is a
pure function of ``(seed, preset)``: the same arguments give byte-identical files.

`corpus` draws a separate balanced, in-memory set of the same species (other plants, other soil)
from its own random stream, for pretraining the demo's small base.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
import pandas as pd

from kit.core.errors import InputError
from kit.demo import draw
from kit.demo.common import (
    Corpus,
    DemoSummary,
    balanced_corpus,
    check_preset,
    check_seed,
    child_rng,
    largest_remainder,
    prepare_out,
    write_csv,
)

__all__ = [
    "CLASSES",
    "PRESETS",
    "PUBLIC_FRACTION",
    "TRAIN_COUNTS",
    "VERSION",
    "Corpus",
    "DemoPreset",
    "DemoSummary",
    "corpus",
    "encode_png",
    "generate",
]

CLASSES: tuple[str, ...] = (
    "Black-grass", "Charlock", "Cleavers", "Common Chickweed", "Common wheat", "Fat Hen",
    "Loose Silky-bent", "Maize", "Scentless Mayweed", "Shepherds Purse",
    "Small-flowered Cranesbill", "Sugar beet",
)
#: The real competition's training images per species (4750 in all).
TRAIN_COUNTS: tuple[int, ...] = (263, 390, 287, 611, 221, 475, 654, 221, 516, 231, 496, 385)
#: Share of test rows scored on the public leaderboard (the real split was 50 %).
PUBLIC_FRACTION = 0.5
#: Bumped whenever the generated files change (a cached demo from another version is rebuilt).
VERSION = 1
#: Hex digits in a file name (the real ones: ``0021e90e4.png``).
NAME_DIGITS = 9
PNG_COMPRESSION = 3


@dataclass(frozen=True, kw_only=True)
class DemoPreset:
    """Size of a generated dataset.

    Attributes:
        n_train: Training images, split over the species like `TRAIN_COUNTS`.
        n_test: Test images, split the same way, in random order.
        size_range: Smallest and largest image side in pixels (log-uniform).
    """

    n_train: int
    n_test: int
    size_range: tuple[int, int]


PRESETS = MappingProxyType({
    "full": DemoPreset(n_train=480, n_test=200, size_range=(80, 360)),
    "tiny": DemoPreset(n_train=108, n_test=24, size_range=(48, 112)),
})

# Keys that separate the random streams derived from one seed.
_TAG_PLAN, _TAG_IMAGE, _TAG_CORPUS = 41, 42, 43

_Part = tuple[np.ndarray, draw.Color, float]  # points (plant-radius units), colour, line width


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image (compression `PNG_COMPRESSION`); deterministic."""
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"rgb must be a (height, width, 3) uint8 array; received "
                         f"shape={rgb.shape} dtype={rgb.dtype}")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise RuntimeError(f"PNG encoding failed for an image of shape {rgb.shape}")
    return buf.tobytes()


def generate(out: Path, *, seed: int = 0, preset: str = "full") -> DemoSummary:
    """Writes a synthetic plant-seedlings dataset in the Kaggle layout (see the module docstring).

    Args:
        out: Folder to write into; created if missing, must be empty if it exists.
        seed: Non-negative int; the files are a pure function of ``(seed, preset)``.
        preset: A name in `PRESETS` ("full": 480 train, 200 test, sides 80-360 px; "tiny":
            108 train (at least 5 per species, so 5 folds work), 24 test, sides 48-112 px).

    Returns:
        A `DemoSummary` of what was written.

    Raises:
        InputError: On an unknown preset, a negative seed, or an `out` that is a file or a
            non-empty folder.
    """
    config: DemoPreset = check_preset(preset, PRESETS)  # type: ignore[assignment]
    seed = check_seed(seed)
    out = prepare_out(out)
    plan = child_rng(seed, _TAG_PLAN)
    train_counts = largest_remainder(config.n_train, TRAIN_COUNTS)
    test_counts = largest_remainder(config.n_test, TRAIN_COUNTS)
    names = _hex_names(plan, config.n_train + config.n_test)
    test_labels = plan.permutation(np.repeat(np.arange(len(CLASSES)), test_counts))
    public = np.zeros(config.n_test, dtype=bool)
    public[plan.permutation(config.n_test)[: round(PUBLIC_FRACTION * config.n_test)]] = True

    jobs = [("train", Path("train", CLASSES[c], names[sum(train_counts[:c]) + i]), c, (0, c, i))
            for c in range(len(CLASSES)) for i in range(train_counts[c])]
    jobs += [("test", Path("test", names[config.n_train + i]), int(test_labels[i]), (1, 0, i))
             for i in range(config.n_test)]
    for cls in CLASSES:
        (out / "train" / cls).mkdir(parents=True)
    (out / "test").mkdir()
    rows = [_write_image(out, rel, split, cls, child_rng(seed, _TAG_IMAGE, *key),
                         config.size_range) for split, rel, cls, key in jobs]
    _write_tables(out, rows, public)
    return DemoSummary(
        root=out, classes=CLASSES, n_train=config.n_train,
        n_test=MappingProxyType({"test": config.n_test}), solution=out / "solution.csv",
        meta=out / "demo_meta.csv",
    )


def _hex_names(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct file names of `NAME_DIGITS` random lowercase hex digits."""
    names: dict[str, None] = {}
    while len(names) < n:
        for value in rng.integers(0, 16 ** NAME_DIGITS, size=n, dtype=np.int64):
            names.setdefault(f"{int(value):0{NAME_DIGITS}x}.png")
    return list(names)[:n]


def _write_image(out: Path, rel: Path, split: str, cls: int, rng: np.random.Generator,
                 size_range: tuple[int, int]) -> dict:
    """Draws one image (its size first, independently of the species) and writes it."""
    size = _draw_size(rng, size_range)
    stage = float(rng.uniform(0.0, 1.0))
    (out / rel).write_bytes(encode_png(_render(cls, size, stage, rng)))
    return {"path": rel.as_posix(), "split": split, "label": CLASSES[cls],
            "width": size[0], "height": size[1], "stage": round(stage, 3)}


def _write_tables(out: Path, rows: list[dict], public: np.ndarray) -> None:
    """`sample_submission.csv`, `solution.csv` (both sorted by file) and `demo_meta.csv`."""
    meta = pd.DataFrame(rows)
    test = meta[meta["split"] == "test"].reset_index(drop=True)
    files = test["path"].str.slice(len("test/"))
    order = np.argsort(files.to_numpy(), kind="stable")
    write_csv(pd.DataFrame({"file": files.to_numpy()[order], "species": CLASSES[-1]}),
              out / "sample_submission.csv")
    write_csv(pd.DataFrame({"file": files.to_numpy()[order],
                            "species": test["label"].to_numpy()[order],
                            "Usage": np.where(public, "Public", "Private")[order]}),
              out / "solution.csv")
    write_csv(meta, out / "demo_meta.csv")


def _draw_size(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    """``(width, height)``: side log-uniform in `size_range`; one in seven slightly oblong."""
    lo, hi = size_range
    side = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    other = side * rng.uniform(0.85, 1.15) if rng.random() < 1 / 7 else side
    return (max(16, round(side)), max(16, round(other)))


def corpus(n: int, *, seed: int, size: tuple[int, int]) -> Corpus:
    """A balanced in-memory pretraining set of the 12 species from its own random stream.

    Scenes are drawn at a random size (each side 72-200 px, growth stage uniform) and resized
    to `size` with ``cv2.INTER_AREA``, as the kit's loader shrinks images.

    Args:
        n: Number of images; class counts differ by at most one.
        seed: Non-negative int.
        size: Output ``(width, height)``.

    Returns:
        A `Corpus` with ``images`` ``(n, height, width, 3)`` uint8 RGB and int64 ``labels``.

    Raises:
        InputError: On a non-positive `n`, a bad `size` or a negative `seed`.
    """
    def draw(seed: int, label: int, i: int) -> np.ndarray:
        r = child_rng(seed, _TAG_CORPUS, i)
        render = _draw_size(r, (72, 200))
        return _render(label, render, float(r.uniform(0.0, 1.0)), r)

    return balanced_corpus(n, seed=seed, size=size, tag=_TAG_CORPUS, classes=CLASSES,
                           draw=draw)


# ---------------------------------------------------------------------------------------------
# The scene: soil, then the plant in a local frame (unit = the plant's radius), then the camera.


def _render(cls: int, size: tuple[int, int], stage: float,
            rng: np.random.Generator) -> np.ndarray:
    """One seedling of species `cls` at growth `stage` (0-1) on soil, ``(h, w, 3)`` uint8."""
    w, h = size
    img = _soil(rng, w, h)  # drawn before the species matters: its randomness is shared
    radius = min(w, h) * rng.uniform(0.3, 0.47)
    center = np.array([w, h]) / 2 + rng.uniform(-0.12, 0.12, 2) * min(w, h)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    parts = _SPECIES[cls](rng, stage)
    shade = draw.scale_color(img.reshape(-1, 3).mean(axis=0), 0.55)  # the soil, darker
    drop = radius * rng.uniform(0.02, 0.05) * np.array([1.0, 1.0])
    _draw_parts(img, [(pts, shade, width) for pts, _, width in parts], radius, angle,
                center + drop)
    _draw_parts(img, parts, radius, angle, center)
    return _camera(img, rng)


def _draw_parts(img: np.ndarray, parts: list[_Part], radius: float, angle: float,
                center: np.ndarray) -> None:
    """Draws `parts` (plant-radius units) scaled by `radius`, turned by `angle`, at `center`."""
    for pts, color, width in parts:
        placed = draw.transform(pts, scale=radius, angle=angle, offset=center)
        if width == 0.0:
            draw.fill(img, placed, color)
        else:
            draw.polyline(img, placed, color, width * radius)


def _camera(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, colour balance and a slight blur."""
    gain = rng.uniform(0.85, 1.15) * rng.uniform(0.94, 1.06, 3)
    sigma = rng.uniform(0.3, 0.9) * max(1.0, min(img.shape[:2]) / 160)
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.clip(img.astype(np.float32) * gain.astype(np.float32), 0, 255).astype(np.uint8)


def _soil(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Brown soil or grey gravel with grain and stones; sometimes a pot rim or a marker."""
    gravel = rng.random() < 0.25
    base = np.asarray(draw.hsv(rng.uniform(0.05, 0.11), rng.uniform(0.05, 0.2) if gravel
                               else rng.uniform(0.3, 0.6), rng.uniform(0.28, 0.55)), np.float32)
    sw, sh = max(2, w // 2), max(2, h // 2)
    coarse = draw.value_noise(rng, sh, sw, int(rng.integers(3, 8)))
    grain = rng.normal(0.0, 1.0, size=(sh, sw)).astype(np.float32)
    img = base * (1.0 + 0.15 * coarse + rng.uniform(0.05, 0.12) * grain)[..., None]
    out = cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (w, h),
                     interpolation=cv2.INTER_LINEAR)
    side = min(w, h)
    for _ in range(int(rng.integers(4, 14) * (3 if gravel else 1))):
        stone = draw.hsv(rng.uniform(0.05, 0.15), rng.uniform(0.0, 0.25), rng.uniform(0.45, 0.85))
        draw.fill_ellipse(out, rng.uniform(0, 1, 2) * (w, h),
                          rng.uniform(0.008, 0.035, 2) * side, stone, rng.uniform(0, 180))
    if rng.random() < 0.2:  # the pot's dark rim across a corner
        corner = np.array([rng.integers(2), rng.integers(2)], np.float64) * (w, h)
        draw.fill_ellipse(out, corner, (0.35 * side, 0.35 * side),
                          draw.hsv(0.0, 0.0, rng.uniform(0.08, 0.25)))
    if rng.random() < 0.15:  # a white or yellow plant label poking in from an edge
        c = rng.uniform(0, 1, 2)
        c[int(rng.integers(2))] = rng.integers(2)
        bar = np.array([(-1, -0.15), (1, -0.15), (1, 0.15), (-1, 0.15)]) * 0.25 * side
        draw.fill(out, draw.transform(bar, scale=1.0, angle=rng.uniform(0, np.pi),
                                      offset=c * (w, h)),
                  draw.hsv(0.15, rng.uniform(0, 0.7), rng.uniform(0.8, 1)))
    return out


# ---------------------------------------------------------------------------------------------
# Leaf shapes: the base at the origin, pointing along +x.


def _leaf(length: float, width: float, *, shape: str = "oval", teeth: int = 0,
          depth: float = 0.0, curve: float = 0.0, wave: float = 0.0, n: int = 24) -> np.ndarray:
    """A leaf outline: `shape` sets the half-width profile along the midrib.

    `oval`, `lance` (narrow, pointed), `blade` (grass: full width at the base, tapering),
    `strap` (long, rounded tip), `spoon` (widest near the tip), `diamond`. `teeth` saw teeth of
    relative `depth` point to the tip; `curve` bends and `wave` undulates the midrib.
    """
    t = np.linspace(0.0, 1.0, n)
    profiles = {
        "oval": np.sin(np.pi * t) ** 0.7,
        "lance": np.sin(np.pi * t ** 0.7) ** 1.2,
        "blade": np.minimum(1.0, 8 * t) * (1.0 - t) ** 0.6,
        "strap": np.sqrt(np.clip(1.0 - t ** 6, 0, 1)) * np.minimum(1.0, 5 * t) ** 0.5,
        "spoon": np.sin(np.pi * t ** 1.6) ** 0.7,
        "diamond": np.where(t < 0.45, t / 0.45, (1.0 - t) / 0.55) ** 0.9,
    }
    if shape not in profiles:
        raise InputError(f"shape must be one of {', '.join(profiles)}; received shape={shape!r}")
    half = profiles[shape] * width / 2
    if teeth:
        half = half * (1.0 - depth * ((teeth * t) % 1.0))
    y = curve * t ** 2 * length + wave * length * np.sin(2.5 * np.pi * t) * t
    left = np.stack([t * length, y + half], axis=1)
    right = np.stack([t * length, y - half], axis=1)[::-1]
    return np.vstack([left, right])


def _midline(length: float, *, curve: float = 0.0, wave: float = 0.0, n: int = 12) -> np.ndarray:
    """The midrib of `_leaf` with the same `curve` and `wave`."""
    t = np.linspace(0.0, 1.0, n)
    y = curve * t ** 2 * length + wave * length * np.sin(2.5 * np.pi * t) * t
    return np.stack([t * length, y], axis=1)


def _kidney(length: float, width: float, notch: float, n: int = 32) -> np.ndarray:
    """A cotyledon wider than long with a notch at the tip (Charlock, Cranesbill)."""
    pts = draw.ellipse_points((length / 2, 0.0), (length / 2, width / 2), n=n)
    dent = notch * length * np.exp(-((pts[:, 1] / (0.22 * width)) ** 2))
    pts[:, 0] -= np.where(pts[:, 0] > length / 2, dent, 0.0)
    return pts


def _lobed(radius: float, lobes: int, depth: float, n: int = 60) -> np.ndarray:
    """A round palmately lobed leaf centred on the origin (Cranesbill)."""
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = radius * (1.0 - depth * (1.0 - np.abs(np.sin(lobes * theta / 2))) ** 2)
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


def _at(pts: np.ndarray, angle: float, base: tuple[float, float] | np.ndarray = (0.0, 0.0),
        ) -> np.ndarray:
    """`pts` rotated by `angle` radians about the origin, then moved to `base`."""
    return draw.transform(pts, scale=1.0, angle=angle, offset=base)


def _polar(r: float, angle: float) -> np.ndarray:
    """The point at distance `r` in direction `angle` (radians)."""
    return np.array([r * math.cos(angle), r * math.sin(angle)])


def _green(rng: np.random.Generator, hue: tuple[float, float], sat: tuple[float, float],
           val: tuple[float, float]) -> draw.Color:
    """A leaf colour with hue, saturation and value drawn from the given ranges."""
    return draw.hsv(rng.uniform(*hue), rng.uniform(*sat), rng.uniform(*val))


def _count(rng: np.random.Generator, stage: float, lo: int, hi: int) -> int:
    """A leaf count growing with `stage` from `lo` to `hi`, give or take one."""
    return int(np.clip(round(lo + stage * (hi - lo) + rng.uniform(-0.7, 0.7)), lo, hi))


def _angles(rng: np.random.Generator, k: int, jitter: float = 0.35) -> np.ndarray:
    """`k` directions spread round the plant, each jittered by up to `jitter` of its share."""
    base = np.arange(k) * 2 * np.pi / max(k, 1)
    return base + rng.uniform(-jitter, jitter, k) * 2 * np.pi / max(k, 1)


# ---------------------------------------------------------------------------------------------
# Species. Each returns its parts in drawing order (oldest leaves first).


@dataclass(frozen=True, kw_only=True)
class _Grass:
    """A grass seedling's look: blade width, count, bend and colour ranges."""

    width: tuple[float, float]
    count: tuple[int, int]
    curve: float
    wave: float
    hue: tuple[float, float]
    sat: tuple[float, float]
    val: tuple[float, float]
    midrib: bool = False
    base: draw.Color | None = None  # the stem base colour (Black-grass's purple), if any


_GRASSES = {
    "Black-grass": _Grass(width=(0.045, 0.075), count=(1, 4), curve=0.25, wave=0.03,
                          hue=(0.30, 0.38), sat=(0.45, 0.75), val=(0.28, 0.48),
                          base=(110, 60, 90)),
    "Loose Silky-bent": _Grass(width=(0.03, 0.06), count=(2, 7), curve=0.4, wave=0.08,
                               hue=(0.26, 0.34), sat=(0.4, 0.7), val=(0.36, 0.58)),
    "Common wheat": _Grass(width=(0.07, 0.11), count=(1, 3), curve=0.15, wave=0.0,
                           hue=(0.20, 0.28), sat=(0.4, 0.65), val=(0.45, 0.7)),
    "Maize": _Grass(width=(0.14, 0.22), count=(2, 4), curve=0.2, wave=0.0,
                    hue=(0.24, 0.31), sat=(0.5, 0.85), val=(0.45, 0.7), midrib=True),
}


def _grass(look: _Grass) -> Callable[[np.random.Generator, float], list[_Part]]:
    """The drawing function of a grass with the look `look`: blades from the centre."""
    def parts_of(rng: np.random.Generator, stage: float) -> list[_Part]:
        """The blades (and midribs, base) of one plant at growth `stage`."""
        parts: list[_Part] = []
        color = _green(rng, look.hue, look.sat, look.val)
        k = _count(rng, stage, *look.count)
        for angle in _angles(rng, k, 0.45):
            length = rng.uniform(0.65, 1.0)
            curve = rng.uniform(-look.curve, look.curve)
            wave = rng.uniform(-look.wave, look.wave)
            blade = _leaf(length, rng.uniform(*look.width), shape="blade", curve=curve,
                          wave=wave)
            start = _polar(rng.uniform(0.0, 0.06), angle)
            parts.append((_at(blade, angle, start), draw.jitter(rng, color, 10), 0.0))
            if look.midrib:
                rib = _midline(0.85 * length, curve=curve, wave=wave)
                parts.append((_at(rib, angle, start), draw.blend(color, (235, 245, 200), 0.45),
                              0.025))
        if look.base is not None:
            parts.append((draw.ellipse_points((0, 0), (0.05, 0.05)), look.base, 0.0))
        return parts

    return parts_of


def _cotyledons(rng: np.random.Generator, color: draw.Color, shape: np.ndarray,
                stem: float = 0.05) -> list[_Part]:
    """Two opposite seed leaves of outline `shape`, each on a short stalk."""
    a = rng.uniform(0.0, 2 * np.pi)
    parts: list[_Part] = []
    for angle in (a, a + np.pi + rng.uniform(-0.25, 0.25)):
        parts.append((_at(shape, angle, _polar(stem, angle)), draw.jitter(rng, color, 8), 0.0))
    return parts


def _charlock(rng: np.random.Generator, stage: float) -> list[_Part]:
    """Notched kidney-shaped cotyledons, then large wavy-toothed leaves."""
    color = _green(rng, (0.25, 0.31), (0.5, 0.75), (0.4, 0.6))
    size = rng.uniform(0.35, 0.5)
    parts = _cotyledons(rng, color, _kidney(size, size * rng.uniform(1.2, 1.5),
                                            rng.uniform(0.15, 0.28)))
    for angle in _angles(rng, _count(rng, stage, 0, 3), 0.5):
        length = rng.uniform(0.6, 0.95)
        leaf = _leaf(length, length * rng.uniform(0.5, 0.65), shape="oval",
                     teeth=int(rng.integers(4, 8)), depth=rng.uniform(0.12, 0.3))
        parts.append((_at(leaf, angle), draw.jitter(rng, color, 10), 0.0))
        parts.append((_at(_midline(0.8 * length), angle), draw.blend(color, (0, 0, 0), 0.25),
                      0.02))
    return parts


def _sugar_beet(rng: np.random.Generator, stage: float) -> list[_Part]:
    """Long strap cotyledons, then glossy oval leaves on red stalks; a red centre."""
    color = _green(rng, (0.27, 0.35), (0.55, 0.85), (0.32, 0.52))
    red = draw.hsv(rng.uniform(0.95, 1.0), rng.uniform(0.5, 0.8), rng.uniform(0.4, 0.6))
    length = rng.uniform(0.55, 0.85)
    strap = _leaf(length, rng.uniform(0.16, 0.24), shape="strap")
    parts = _cotyledons(rng, color, strap)
    for angle in _angles(rng, _count(rng, stage, 0, 3), 0.5):
        leaf_len = rng.uniform(0.45, 0.75)
        stalk = rng.uniform(0.12, 0.25)
        parts.append((_at(np.array([(0, 0), (stalk, 0)]), angle), red, 0.04))
        leaf = _leaf(leaf_len, leaf_len * rng.uniform(0.5, 0.7), shape="oval")
        parts.append((_at(leaf, angle, _polar(stalk, angle)), draw.jitter(rng, color, 8), 0.0))
        gloss = _at(_midline(0.6 * leaf_len) + (0.1 * leaf_len, 0.06 * leaf_len), angle,
                    _polar(stalk, angle))
        parts.append((gloss, draw.blend(color, (255, 255, 255), 0.35), 0.03))
    parts.append((draw.ellipse_points((0, 0), (0.06, 0.06)), red, 0.0))
    return parts


def _cleavers(rng: np.random.Generator, stage: float) -> list[_Part]:
    """Oval cotyledons under whorls of 6-8 narrow leaves, smaller going up."""
    color = _green(rng, (0.26, 0.33), (0.45, 0.7), (0.35, 0.55))
    size = rng.uniform(0.35, 0.5)
    parts = _cotyledons(rng, color, _leaf(size, size * rng.uniform(0.6, 0.8), shape="oval"))
    for whorl in range(_count(rng, stage, 1, 3)):
        k = int(rng.integers(6, 9))
        scale = (1.0 - 0.25 * whorl) * rng.uniform(0.35, 0.55)
        spin = rng.uniform(0, 2 * np.pi)
        for angle in spin + _angles(rng, k, 0.15):
            leaf = _leaf(scale, scale * rng.uniform(0.18, 0.28), shape="lance")
            parts.append((_at(leaf, angle), draw.jitter(rng, color, 10), 0.0))
    parts.append((draw.ellipse_points((0, 0), (0.04, 0.04)), draw.blend(color, (0, 0, 0), 0.3),
                  0.0))
    return parts


def _chickweed(rng: np.random.Generator, stage: float) -> list[_Part]:
    """Small pale paired leaves along sprawling stems."""
    color = _green(rng, (0.23, 0.30), (0.5, 0.8), (0.55, 0.8))
    parts = _cotyledons(rng, color, _leaf(0.2, 0.09, shape="lance"), stem=0.02)
    for angle in _angles(rng, _count(rng, stage, 2, 5), 0.4):
        bend = rng.uniform(-0.3, 0.3)
        stem = _at(_midline(rng.uniform(0.55, 0.9), curve=bend, n=8), angle)
        parts.append((stem, draw.blend(color, (255, 255, 255), 0.2), 0.02))
        for j in range(1, int(rng.integers(2, 5))):
            node = stem[min(len(stem) - 1, round(j * (len(stem) - 1) / 3.5))]
            size = rng.uniform(0.15, 0.26)
            leaf = _leaf(size, size * rng.uniform(0.45, 0.6), shape="oval")
            for side in (-1, 1):
                parts.append((_at(leaf, angle + side * rng.uniform(1.1, 1.6), node),
                              draw.jitter(rng, color, 8), 0.0))
    return parts


def _fat_hen(rng: np.random.Generator, stage: float) -> list[_Part]:
    """Mealy grey-green toothed diamonds in opposite pairs, white meal, a pinkish centre."""
    color = _green(rng, (0.22, 0.32), (0.14, 0.34), (0.45, 0.65))
    meal = draw.blend(color, (245, 240, 245), 0.55)
    size = rng.uniform(0.35, 0.5)
    parts = _cotyledons(rng, color, _leaf(size, size * 0.32, shape="oval"))
    pairs = _count(rng, stage, 1, 3)
    a = rng.uniform(0, 2 * np.pi)
    for p in range(pairs):
        length = rng.uniform(0.55, 0.85) * (1.0 - 0.22 * p)
        for side in (0.0, np.pi):
            angle = a + side + p * np.pi / 2 + rng.uniform(-0.25, 0.25)
            leaf = _leaf(length, length * rng.uniform(0.6, 0.8), shape="diamond",
                         teeth=int(rng.integers(3, 6)), depth=rng.uniform(0.1, 0.2))
            parts.append((_at(leaf, angle), draw.jitter(rng, color, 8), 0.0))
            for _ in range(3):
                dot = _polar(length * rng.uniform(0.1, 0.5), angle + rng.uniform(-0.3, 0.3))
                parts.append((draw.ellipse_points(dot, (0.04, 0.04), n=8), meal, 0.0))
    parts.append((draw.ellipse_points((0, 0), (0.1, 0.1), n=12),
                  draw.blend(meal, (230, 160, 200), 0.3), 0.0))
    return parts


def _mayweed(rng: np.random.Generator, stage: float) -> list[_Part]:
    """Finely divided leaves: a midrib with forked side segments, drawn as thin lines."""
    color = _green(rng, (0.28, 0.36), (0.5, 0.75), (0.35, 0.55))
    parts = _cotyledons(rng, color, _leaf(0.25, 0.1, shape="oval"), stem=0.02)
    line = rng.uniform(0.022, 0.034)
    for angle in _angles(rng, _count(rng, stage, 2, 7), 0.4):
        length = rng.uniform(0.5, 0.95)
        curve = rng.uniform(-0.2, 0.2)
        rib = _midline(length, curve=curve, n=10)
        leaf_color = draw.jitter(rng, color, 8)
        parts.append((_at(rib, angle), leaf_color, line))
        for j in range(2, len(rib)):
            seg = 0.35 * length * (1.0 - j / len(rib)) + 0.04
            for side in (-1, 1):
                tip = rib[j] + _polar(seg, side * rng.uniform(0.6, 1.0))
                fork = rib[j] + _polar(0.6 * seg, side * 0.4) + _polar(0.3 * seg, side * 1.4)
                parts.append((_at(np.array([rib[j], tip]), angle), leaf_color, line))
                parts.append((_at(np.array([rib[j] + _polar(0.5 * seg, side * 0.8), fork]),
                                  angle), leaf_color, 0.8 * line))
    return parts


def _shepherds_purse(rng: np.random.Generator, stage: float) -> list[_Part]:
    """A rosette of deeply toothed spoon-shaped leaves, the newer ones smaller."""
    color = _green(rng, (0.24, 0.31), (0.4, 0.65), (0.38, 0.58))
    parts = _cotyledons(rng, color, _leaf(0.2, 0.14, shape="oval"), stem=0.02)
    k = _count(rng, stage, 3, 11)
    for i, angle in enumerate(_angles(rng, k, 0.3)):
        length = rng.uniform(0.6, 1.0) * (1.0 - 0.4 * i / k)
        leaf = _leaf(length, length * rng.uniform(0.3, 0.42), shape="spoon",
                     teeth=int(rng.integers(3, 7)), depth=rng.uniform(0.3, 0.55))
        parts.append((_at(leaf, angle), draw.jitter(rng, color, 10), 0.0))
    return parts


def _cranesbill(rng: np.random.Generator, stage: float) -> list[_Part]:
    """Round cotyledons, then round palmately lobed leaves on long stalks."""
    color = _green(rng, (0.24, 0.31), (0.45, 0.7), (0.4, 0.6))
    size = rng.uniform(0.25, 0.35)
    parts = _cotyledons(rng, color, _kidney(size, size * rng.uniform(1.0, 1.25),
                                            rng.uniform(0.05, 0.15)))
    stalk_color = draw.blend(color, (150, 60, 60), rng.uniform(0.0, 0.6))
    for angle in _angles(rng, _count(rng, stage, 1, 5), 0.4):
        stalk = rng.uniform(0.3, 0.6)
        r = rng.uniform(0.2, 0.35)
        parts.append((_at(np.array([(0.0, 0.0), (stalk, 0.0)]), angle), stalk_color, 0.025))
        leaf = _lobed(r, int(rng.integers(5, 8)), rng.uniform(0.3, 0.5))
        parts.append((_at(leaf, angle + rng.uniform(0, 1), _polar(stalk + 0.6 * r, angle)),
                      draw.jitter(rng, color, 10), 0.0))
    return parts


_SPECIES: tuple[Callable[[np.random.Generator, float], list[_Part]], ...] = (
    _grass(_GRASSES["Black-grass"]), _charlock, _cleavers, _chickweed,
    _grass(_GRASSES["Common wheat"]), _fat_hen, _grass(_GRASSES["Loose Silky-bent"]),
    _grass(_GRASSES["Maize"]), _mayweed, _shepherds_purse, _cranesbill, _sugar_beet,
)
