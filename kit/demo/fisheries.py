"""Synthetic demo data in the layout of The Nature Conservancy Fisheries Monitoring.

`generate` writes, under `out`::

    train/<CLASS>/img_XXXXX.jpg          numbers unique across train and test_stg1
    test_stg1/img_XXXXX.jpg              same boats as train
    test_stg2/image_XXXXX.jpg            new boats, numbered from 00001
    sample_submission_stg1.csv           image,ALB,...,YFT (train class prior)
    sample_submission_stg2.csv           stage-1 rows, then test_stg2/image_XXXXX.jpg rows
    solution.csv                         one-hot truth + Usage (Public: stage 1, Private: stage 2)
    annotations/<cls>_labels.json        community (Sloth) boxes for ALB BET DOL LAG SHARK YFT
    demo_meta.csv                        hidden truth: path,split,label,boat,width,height,box_*

Each boat has one camera size (the real competition's) and its own deck look, and the class mix
differs by boat, so image size leaks the class in train and stage 1; stage-2 boats are new, with
new sizes and mixes, so a model exploiting the leak wins public and loses private. Everything is
a pure function of ``(seed, preset)``: the same arguments give byte-identical files.

`corpus` draws a separate balanced, in-memory set with the same fish on other boats, for
pretraining the demo's small base without touching the images it is scored on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
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
    check_corpus_args,
    check_preset,
    check_seed,
    child_rng,
    encode_jpeg,
    largest_remainder,
    prepare_out,
    write_csv,
)

__all__ = [
    "BOX_FILES",
    "CLASSES",
    "CORPUS_BOATS",
    "PRESETS",
    "STAGE2_BOATS",
    "TRAIN_BOATS",
    "Corpus",
    "DemoPreset",
    "DemoSummary",
    "corpus",
    "generate",
]

CLASSES: tuple[str, ...] = ("ALB", "BET", "DOL", "LAG", "NoF", "OTHER", "SHARK", "YFT")

#: Community bounding-box files, one per fish class (none for NoF and OTHER).
BOX_FILES = MappingProxyType({
    "ALB": "alb_labels.json",
    "BET": "bet_labels.json",
    "DOL": "dol_labels.json",
    "LAG": "lag_labels.json",
    "SHARK": "shark_labels.json",
    "YFT": "yft_labels.json",
})


@dataclass(frozen=True, kw_only=True)
class DemoPreset:
    """Size of a generated dataset.

    Attributes:
        n_train: Training images.
        n_test_stg1: Stage-1 test images (boats seen in train).
        n_test_stg2: Stage-2 test images (new boats).
        scale: Multiplies the camera sizes (1.0 = the real 1280x720 etc.).
        class_mix: Relative class frequencies, in `CLASSES` order, for every split.
    """

    n_train: int
    n_test_stg1: int
    n_test_stg2: int
    scale: float
    class_mix: tuple[float, ...]


PRESETS = MappingProxyType({
    # The real imbalance (ALB 1719 ... LAG 67) flattened so every class has enough examples.
    "full": DemoPreset(
        n_train=480, n_test_stg1=200, n_test_stg2=200, scale=1.0,
        class_mix=(150, 40, 30, 25, 70, 45, 35, 85),
    ),
    "tiny": DemoPreset(
        n_train=48, n_test_stg1=16, n_test_stg2=16, scale=0.125, class_mix=(1,) * 8,
    ),
})

#: Generator version: bump it when the generated data changes, so cached demos are rebuilt.
#: 2: boat_7 (stage 2) carries boat_1's camera size.
VERSION = 2

#: (boat, camera width x height) for the boats of train and stage 1 (real competition sizes).
TRAIN_BOATS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("boat_1", (1280, 720)),
    ("boat_2", (1280, 974)),
    ("boat_3", (1192, 670)),
    ("boat_4", (1276, 718)),
    ("boat_5", (1280, 750)),
    ("boat_6", (1518, 854)),
)
#: New boats that appear only in stage 2. boat_7 carries the same camera as boat_1 (1280x720,
#: the most common size in the real data, fitted on many boats): there the size names the wrong
#: boat, which is how a size-exploiting model fails on new boats even when the size is familiar.
STAGE2_BOATS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("boat_7", (1280, 720)),
    ("boat_8", (1244, 700)),
    ("boat_9", (1334, 750)),
)

# Share of each class's images per boat (rows: CLASSES order; columns: boats in order).
# Train/stage 1: boat_1 mostly ALB, boat_2 mostly YFT, boat_3 much NoF, boat_4 the sharks,
# boat_5 BET and DOL, boat_6 LAG and OTHER.
_STG1_SHARES = (
    (0.60, 0.10, 0.10, 0.05, 0.10, 0.05),  # ALB
    (0.10, 0.15, 0.05, 0.10, 0.50, 0.10),  # BET
    (0.05, 0.10, 0.10, 0.05, 0.60, 0.10),  # DOL
    (0.05, 0.05, 0.05, 0.05, 0.05, 0.75),  # LAG
    (0.10, 0.10, 0.55, 0.10, 0.05, 0.10),  # NoF
    (0.10, 0.10, 0.10, 0.10, 0.10, 0.50),  # OTHER
    (0.05, 0.05, 0.10, 0.70, 0.05, 0.05),  # SHARK
    (0.10, 0.60, 0.10, 0.05, 0.10, 0.05),  # YFT
)
# Stage 2: boat_7 tunas (YFT, BET), boat_8 ALB and sharks, boat_9 NoF, DOL, LAG and OTHER.
_STG2_SHARES = (
    (0.25, 0.55, 0.20),  # ALB
    (0.60, 0.20, 0.20),  # BET
    (0.20, 0.20, 0.60),  # DOL
    (0.20, 0.20, 0.60),  # LAG
    (0.15, 0.25, 0.60),  # NoF
    (0.25, 0.25, 0.50),  # OTHER
    (0.20, 0.60, 0.20),  # SHARK
    (0.60, 0.20, 0.20),  # YFT
)

#: Number of boats `corpus` draws on (many, so that a base pretrained on it generalises to decks
#: it has never seen, such as the demo boats).
CORPUS_BOATS = 48

_NOF = CLASSES.index("NoF")
_SPLITS = ("train", "test_stg1", "test_stg2")

# Keys that separate the random streams derived from one seed.
_TAG_PLAN, _TAG_LOOK, _TAG_IMAGE, _TAG_CORPUS = 11, 12, 13, 14

_TEXTURE_WIDTH = 320  # decks are drawn at most this wide, then upscaled
_DECK_COLOURS: tuple[draw.Color, ...] = (
    (200, 200, 195),  # white fibreglass
    (120, 135, 150),  # blue-grey steel
    (150, 110, 75),   # wood
    (95, 122, 95),    # green paint
    (165, 82, 62),    # red-brown steel
    (75, 88, 112),    # navy
    (185, 170, 130),  # sand
    (100, 98, 94),    # dark grey
    (62, 112, 140),   # teal
    (170, 165, 175),  # light grey
)
_TEXTURES = ("planks", "grating", "plain", "tread", "mat")
_GEAR: tuple[draw.Color, ...] = (
    (235, 190, 40), (235, 110, 30), (40, 80, 170), (60, 130, 70), (200, 50, 40),
    (230, 230, 230), (40, 40, 45),
)
_SKIN: tuple[draw.Color, ...] = ((225, 180, 150), (180, 130, 95), (120, 85, 60), (60, 60, 65))
_BLACK: draw.Color = (0, 0, 0)


def generate(out: Path, *, seed: int = 0, preset: str = "full") -> DemoSummary:
    """Writes a synthetic fisheries dataset in the Kaggle layout (see the module docstring).

    Args:
        out: Folder to write into; created if missing, must be empty if it exists.
        seed: Non-negative int; the files are a pure function of ``(seed, preset)``.
        preset: A name in `PRESETS` ("full": 480/200/200 images at real camera sizes, about
            20 s; "tiny": 48/16/16 images at 1/8 size, under a second).

    Returns:
        A `DemoSummary` of what was written.

    Raises:
        ValueError: On an unknown preset, a negative seed, or an `out` that is a file or a
            non-empty folder.
    """
    config: DemoPreset = check_preset(preset, PRESETS)  # type: ignore[assignment]
    seed = check_seed(seed)
    out = prepare_out(out)

    boats = TRAIN_BOATS + STAGE2_BOATS
    sizes = _camera_sizes(config.scale)
    decks = [_demo_deck(seed, i, size) for i, size in enumerate(sizes)]
    plan = _plan(seed, config)

    rows = []
    for split_index, split in enumerate(_SPLITS):
        for k, (name, cls, boat) in enumerate(plan[split]):
            rel = Path(split, CLASSES[cls], name) if split == "train" else Path(split, name)
            img, box = _render(decks[boat], cls, child_rng(seed, _TAG_IMAGE, split_index, k))
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_jpeg(img))
            width, height = sizes[boat]
            bx = by = bw = bh = math.nan
            if box is not None:
                bx, by, bw, bh = (round(v, 2) for v in box)
            rows.append({
                "path": rel.as_posix(), "split": split, "label": CLASSES[cls],
                "boat": boats[boat][0], "width": width, "height": height,
                "box_x": bx, "box_y": by, "box_w": bw, "box_h": bh,
            })
    meta = pd.DataFrame(rows)
    meta["_order"] = meta["split"].map(_SPLITS.index)
    meta["_name"] = meta["path"].map(lambda p: p.rsplit("/", 1)[-1])
    meta = meta.sort_values(["_order", "_name"], kind="stable").drop(columns=["_order", "_name"])
    meta = meta.reset_index(drop=True)

    _write_submissions(out, meta)
    _write_annotations(out, meta)
    write_csv(meta, out / "demo_meta.csv")
    n_test = {s: int((meta["split"] == s).sum()) for s in _SPLITS[1:]}
    return DemoSummary(
        root=out, classes=CLASSES, n_train=int((meta["split"] == "train").sum()),
        n_test=MappingProxyType(n_test), solution=out / "solution.csv",
        meta=out / "demo_meta.csv",
    )


def corpus(n: int, *, seed: int, size: tuple[int, int]) -> Corpus:
    """A balanced in-memory pretraining set: the same fish, on boats never used by `generate`.

    `CORPUS_BOATS` boats get their own deck looks and camera sizes (never a demo size) from
    `seed`; scenes are drawn at 10-20 % of camera size and resized to `size` with
    ``cv2.INTER_AREA``.
    Each boat shows every class equally often, so size and deck carry no label here.

    Args:
        n: Number of images; class counts differ by at most one.
        seed: Non-negative int.
        size: Output ``(width, height)``.

    Returns:
        A `Corpus` with ``images`` ``(n, height, width, 3)`` uint8 RGB and int64 ``labels``.

    Raises:
        ValueError: On a non-positive `n`, a bad `size` or a negative `seed`.
    """
    n, size = check_corpus_args(n, size)
    seed = check_seed(seed)
    rng = child_rng(seed, _TAG_CORPUS)
    demo_sizes = {s for _, s in TRAIN_BOATS + STAGE2_BOATS}
    decks = []
    for b in range(CORPUS_BOATS):
        while True:
            w = int(rng.integers(1000, 1900))
            cam = (w, int(round(w * rng.uniform(0.52, 0.78))))
            if cam not in demo_sizes:
                break
        r = rng.uniform(0.1, 0.2)
        render = (max(32, round(cam[0] * r)), max(24, round(cam[1] * r)))
        look = child_rng(seed, _TAG_CORPUS, 1, b)
        decks.append(_make_deck(
            look, render, base=_DECK_COLOURS[int(look.integers(len(_DECK_COLOURS)))],
            texture=_TEXTURES[int(look.integers(len(_TEXTURES)))],
        ))
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    boat_of = rng.integers(0, len(decks), size=n)
    images = np.empty((n, size[1], size[0], 3), dtype=np.uint8)
    for i in range(n):
        img, _ = _render(decks[boat_of[i]], int(labels[i]), child_rng(seed, _TAG_CORPUS, 2, i))
        images[i] = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return Corpus(images=images, labels=labels, classes=CLASSES)


# ---------------------------------------------------------------------------------------------
# Plan: which image is which class on which boat, and its file name.


def _camera_sizes(scale: float) -> tuple[tuple[int, int], ...]:
    """Scaled camera sizes of all boats. Boats declared with the same camera share its scaled
    size; different cameras that scaling makes collide are kept distinct (bump the height)."""
    seen: dict[tuple[int, int], tuple[int, int]] = {}  # scaled size -> declared size
    scaled: dict[tuple[int, int], tuple[int, int]] = {}  # declared size -> scaled size
    sizes = []
    for _, declared in TRAIN_BOATS + STAGE2_BOATS:
        if declared not in scaled:
            w, h = declared
            size = (max(16, math.floor(w * scale + 0.5)), max(16, math.floor(h * scale + 0.5)))
            while size in seen:
                size = (size[0], size[1] + 1)
            seen[size] = declared
            scaled[declared] = size
        sizes.append(scaled[declared])
    return tuple(sizes)


def _assign(
    counts: Sequence[int], shares: Sequence[Sequence[float]], first_boat: int,
) -> list[tuple[int, int]]:
    items = []
    for cls, count in enumerate(counts):
        for b, k in enumerate(largest_remainder(count, shares[cls])):
            items += [(cls, first_boat + b)] * k
    return items


def _plan(seed: int, config: DemoPreset) -> dict[str, list[tuple[str, int, int]]]:
    """``split -> [(file name, class index, boat index)]`` in rendering order."""
    rng = child_rng(seed, _TAG_PLAN)
    train = _assign(largest_remainder(config.n_train, config.class_mix), _STG1_SHARES, 0)
    stg1 = _assign(largest_remainder(config.n_test_stg1, config.class_mix), _STG1_SHARES, 0)
    stg2 = _assign(
        largest_remainder(config.n_test_stg2, config.class_mix), _STG2_SHARES, len(TRAIN_BOATS)
    )
    train, stg1, stg2 = ([items[i] for i in rng.permutation(len(items))]
                         for items in (train, stg1, stg2))
    total = len(train) + len(stg1)
    numbers = rng.choice(np.arange(1, 2 * total + 1), size=total, replace=False)
    return {
        "train": [(f"img_{n:05d}.jpg", c, b) for n, (c, b) in zip(numbers[: len(train)], train, strict=True)],
        "test_stg1": [
            (f"img_{n:05d}.jpg", c, b) for n, (c, b) in zip(numbers[len(train):], stg1, strict=True)
        ],
        "test_stg2": [(f"image_{i + 1:05d}.jpg", c, b) for i, (c, b) in enumerate(stg2)],
    }


# ---------------------------------------------------------------------------------------------
# Files.


def _write_submissions(out: Path, meta: pd.DataFrame) -> None:
    train = meta[meta["split"] == "train"]
    prior = [round(float((train["label"] == c).mean()), 6) for c in CLASSES]
    stg1 = meta[meta["split"] == "test_stg1"]
    stg2 = meta[meta["split"] == "test_stg2"]
    ids1 = [p.rsplit("/", 1)[-1] for p in stg1["path"]]
    ids = ids1 + list(stg2["path"])

    def frame(image_ids: list[str]) -> pd.DataFrame:
        f = pd.DataFrame({"image": image_ids})
        for c, p in zip(CLASSES, prior, strict=True):
            f[c] = p
        return f

    write_csv(frame(ids1), out / "sample_submission_stg1.csv")
    write_csv(frame(ids), out / "sample_submission_stg2.csv")
    labels = list(stg1["label"]) + list(stg2["label"])
    solution = pd.DataFrame({"image": ids})
    for c in CLASSES:
        solution[c] = [int(label == c) for label in labels]
    solution["Usage"] = ["Public"] * len(stg1) + ["Private"] * len(stg2)
    write_csv(solution, out / "solution.csv")


def _write_annotations(out: Path, meta: pd.DataFrame) -> None:
    folder = out / "annotations"
    folder.mkdir()
    train = meta[meta["split"] == "train"]
    for cls, file_name in BOX_FILES.items():
        records = [
            {
                "annotations": [{
                    "class": "rect", "height": float(r.box_h), "width": float(r.box_w),
                    "x": float(r.box_x), "y": float(r.box_y),
                }],
                "class": "image",
                "filename": r.path.rsplit("/", 1)[-1],
            }
            for r in train[train["label"] == cls].itertuples()
        ]
        (folder / file_name).write_text(json.dumps(records, indent=4) + "\n")


# ---------------------------------------------------------------------------------------------
# Boats: a deck texture per boat (drawn small, upscaled per image) and its lighting.


@dataclass(frozen=True, kw_only=True, eq=False)
class _Deck:
    size: tuple[int, int]  # rendered (width, height)
    texture: np.ndarray  # (th, tw, 3) float32, th/tw <= size
    light: np.ndarray  # (3,) per-channel gain of this camera


def _demo_deck(seed: int, index: int, size: tuple[int, int]) -> _Deck:
    """Demo boat `index`: a distinct palette colour and texture per boat, the rest from `seed`."""
    order = child_rng(seed, _TAG_LOOK).permutation(len(_DECK_COLOURS))
    rng = child_rng(seed, _TAG_LOOK, index)
    return _make_deck(
        rng, size, base=_DECK_COLOURS[order[index]],
        texture=_TEXTURES[(index + int(order[0])) % len(_TEXTURES)],
    )


def _make_deck(
    rng: np.random.Generator, size: tuple[int, int], *, base: draw.Color, texture: str,
) -> _Deck:
    w, h = size
    tw = min(w, _TEXTURE_WIDTH)
    th = max(2, round(h * tw / w))
    y, x = np.mgrid[0:th, 0:tw].astype(np.float32)
    a = float(rng.choice([0.0, np.pi / 2]) + rng.uniform(-0.3, 0.3))
    s = tw * rng.uniform(0.035, 0.08)
    u = (x * np.cos(a) + y * np.sin(a)) / s
    v = (-x * np.sin(a) + y * np.cos(a)) / s
    lum = np.ones((th, tw), np.float32)
    if texture == "planks":
        idx = np.floor(u).astype(np.int64)
        shades = 1.0 + rng.normal(0.0, 0.08, size=int(idx.max() - idx.min()) + 1)
        lum *= shades[idx - idx.min()].astype(np.float32)
        lum *= np.where(u % 1.0 < 0.08, 0.55, 1.0).astype(np.float32)
        lum *= 1.0 + 0.05 * np.sin(v * rng.uniform(3, 6) + 3 * draw.value_noise(rng, th, tw, 8))
    elif texture == "grating":
        lum *= np.where((u % 1.0 < 0.12) | ((v * 1.5) % 1.0 < 0.12), 0.5, 1.0).astype(np.float32)
    elif texture == "tread":
        bumps = np.sin(u * 2 * np.pi * 2.5) * np.sin(v * 2 * np.pi * 2.5)
        lum *= np.where(bumps > 0.6, 1.15, 1.0).astype(np.float32)
    elif texture == "mat":
        lum *= 1.0 + 0.07 * (2 * ((np.floor(u * 2) + np.floor(v * 2)) % 2) - 1)
    lum *= 1.0 + 0.12 * draw.value_noise(rng, th, tw, int(rng.integers(3, 8)))  # stains
    img = np.asarray(draw.jitter(rng, base, 14), np.float32) * lum[..., None]
    img *= draw.linear_gradient(th, tw, angle=rng.uniform(0, 2 * np.pi),
                                strength=rng.uniform(0.1, 0.4))
    r2 = ((x / tw - 0.5) ** 2 + (y / th - 0.5) ** 2) * 2
    img *= (1.0 - rng.uniform(0.1, 0.4) * r2)[..., None]
    deck = np.clip(img, 0, 255).astype(np.uint8)
    _draw_fixtures(deck, rng)
    light = (1.0 + rng.normal(0.0, 0.05, size=3)) * rng.uniform(0.8, 1.1)
    if rng.random() < 0.15:  # a night camera: dark and green
        light = np.array([0.5, 0.62, 0.5]) * rng.uniform(0.8, 1.1)
    return _Deck(size=size, texture=deck.astype(np.float32), light=light.astype(np.float32))


def _draw_fixtures(deck: np.ndarray, rng: np.random.Generator) -> None:
    """Fixed parts of a boat: sea at an edge, rails, a hatch, a rope coil."""
    th, tw = deck.shape[:2]
    if rng.random() < 0.5:
        side, depth = int(rng.integers(4)), rng.uniform(0.08, 0.25)
        water = draw.hsv(rng.uniform(0.5, 0.6), rng.uniform(0.4, 0.7), rng.uniform(0.3, 0.55))
        x0, x1 = (0, depth * tw) if side == 0 else ((1 - depth) * tw, tw) if side == 1 else (0, tw)
        y0, y1 = (0, th) if side < 2 else (0, depth * th) if side == 2 else ((1 - depth) * th, th)
        draw.fill(deck, np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]), water)
    for _ in range(int(rng.integers(1, 4))):
        rail = draw.jitter(rng, _DECK_COLOURS[int(rng.integers(len(_DECK_COLOURS)))], 30)
        p0 = rng.uniform(0, 1, 2) * (tw, th)
        p1 = p0 + rng.normal(0, 1, 2) * max(tw, th)
        draw.polyline(deck, np.array([p0, p1]), rail, rng.uniform(0.012, 0.04) * tw)
    if rng.random() < 0.6:
        c = rng.uniform(0.15, 0.85, 2) * (tw, th)
        half = rng.uniform(0.06, 0.16, 2) * tw
        corners = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)]) * half
        pts = draw.transform(corners, scale=1.0, angle=rng.uniform(-0.3, 0.3), offset=c)
        hatch = draw.jitter(rng, _DECK_COLOURS[int(rng.integers(len(_DECK_COLOURS)))], 20)
        draw.fill(deck, pts, hatch)
        draw.polyline(deck, pts, draw.blend(hatch, _BLACK, 0.5), 0.01 * tw, closed=True)
    if rng.random() < 0.5:
        c = rng.uniform(0.1, 0.9, 2) * (tw, th)
        rope = draw.jitter(rng, _GEAR[int(rng.integers(len(_GEAR)))], 20)
        for r in np.linspace(0.02, 0.06, 4) * tw:
            draw.polyline(deck, draw.ellipse_points(c, (r, r * 0.8)), rope, 0.008 * tw,
                          closed=True)


# ---------------------------------------------------------------------------------------------
# One scene: deck under this image's light, clutter, at most one fish, maybe an occluder.


def _render(
    deck: _Deck, cls: int, rng: np.random.Generator,
) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    w, h = deck.size
    th, tw = deck.texture.shape[:2]
    gain = deck.light * rng.uniform(0.82, 1.15) * (1.0 + rng.normal(0.0, 0.04, size=3))
    shade = draw.linear_gradient(th, tw, angle=rng.uniform(0, 2 * np.pi),
                                 strength=rng.uniform(0.0, 0.35))
    noise = draw.value_noise(rng, th, tw, int(rng.integers(4, 12))) * rng.uniform(3, 10)
    small = np.clip(deck.texture * gain.astype(np.float32) * shade + noise[..., None], 0, 255)
    small = small.astype(np.uint8)
    img = small if (tw, th) == (w, h) else cv2.resize(small, (w, h),
                                                       interpolation=cv2.INTER_LINEAR)
    _draw_clutter(img, rng, gain)
    box = None
    if cls != _NOF:
        box = _draw_fish(img, cls, rng, gain)
        if rng.random() < 0.25:
            _draw_occluder(img, rng, gain, box)
    return img, box


def _draw_clutter(img: np.ndarray, rng: np.random.Generator, gain: np.ndarray) -> None:
    """Buckets, crew, crates, hoses and gloves: on every boat, for every class alike."""
    h, w = img.shape[:2]
    for _ in range(min(int(rng.poisson(1.2)), 4)):
        kind = int(rng.integers(5))
        c = rng.uniform(0, 1, 2) * (w, h)
        u = w * rng.uniform(0.7, 1.3)
        col = draw.scale_color(draw.jitter(rng, _GEAR[int(rng.integers(len(_GEAR)))], 15), gain)
        a = rng.uniform(0, 2 * np.pi)
        if kind == 0:  # bucket seen from above
            r = 0.05 * u
            draw.fill_ellipse(img, c, (r, r), col)
            draw.fill_ellipse(img, c, (0.8 * r, 0.8 * r), draw.blend(col, _BLACK, 0.35))
        elif kind == 1:  # crew member seen from above
            sh = draw.transform(np.array([(-0.07, 0.0), (0.07, 0.0)]), scale=u, angle=a, offset=c)
            hands = draw.transform(np.array([(-0.1, 0.09), (0.1, 0.09)]), scale=u,
                                   angle=a + rng.uniform(-0.4, 0.4), offset=c)
            for s, hd in zip(sh, hands, strict=True):
                draw.polyline(img, np.array([s, hd]), col, 0.03 * u)
            draw.fill_ellipse(img, c, (0.08 * u, 0.05 * u), col, np.rad2deg(a))
            skin = draw.scale_color(_SKIN[int(rng.integers(len(_SKIN)))], gain)
            head = skin if rng.random() < 0.5 else draw.scale_color(
                draw.jitter(rng, _GEAR[int(rng.integers(len(_GEAR)))]), gain)
            draw.fill_ellipse(img, c, (0.032 * u, 0.036 * u), head, np.rad2deg(a))
        elif kind == 2:  # crate
            corners = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)]) * (0.07, 0.045)
            pts = draw.transform(corners, scale=u, angle=a, offset=c)
            draw.fill(img, pts, col)
            draw.polyline(img, pts, draw.blend(col, _BLACK, 0.4), 0.006 * u, closed=True)
        elif kind == 3:  # hose or rope
            steps = rng.normal(0, 1, (8, 2))
            pts = c + np.cumsum(steps / np.linalg.norm(steps, axis=1, keepdims=True), 0) * 0.05 * u
            draw.polyline(img, pts, col, 0.01 * u)
        else:  # glove
            draw.fill_ellipse(img, c, (0.025 * u, 0.04 * u), col, np.rad2deg(a))


def _draw_occluder(
    img: np.ndarray, rng: np.random.Generator, gain: np.ndarray,
    box: tuple[float, float, float, float],
) -> None:
    """A rope across the fish or a gloved arm reaching for it."""
    h, w = img.shape[:2]
    x, y, bw, bh = box
    p = np.array([x + rng.uniform(0.2, 0.8) * bw, y + rng.uniform(0.2, 0.8) * bh])
    col = draw.scale_color(draw.jitter(rng, _GEAR[int(rng.integers(len(_GEAR)))], 15), gain)
    if rng.random() < 0.5:
        a = rng.uniform(0, np.pi)
        d = np.array([np.cos(a), np.sin(a)]) * 0.25 * w
        draw.polyline(img, np.array([p - d, p + d]), col, 0.012 * w)
    else:
        edges = np.array([(p[0], 0), (p[0], h), (0, p[1]), (w, p[1])])
        start = edges[int(np.argmin(np.linalg.norm(edges - p, axis=1)))]
        draw.polyline(img, np.array([start, p]), col, 0.035 * w)
        glove = draw.scale_color(draw.jitter(rng, _GEAR[int(rng.integers(2))], 15), gain)
        draw.fill_ellipse(img, p, (0.025 * w, 0.025 * w), glove)


# ---------------------------------------------------------------------------------------------
# Fish: class-specific parts in a local frame (x from tail 0 to snout 1, y down, unit = length).

_Part = tuple[np.ndarray, draw.Color, float]  # points, colour, line width (0 = filled)


class _Body:
    """A fish body outline: `half(x)` is its half depth at x, tail at `x0`, snout at `x1`."""

    def __init__(self, x0: float, x1: float, depth: float, *, peak: float = 0.55,
                 tail_q: float = 0.8, head_q: float = 0.8, n: int = 32) -> None:
        t = np.linspace(0.0, 1.0, n)
        tp = t ** (np.log(0.5) / np.log(peak))
        f = np.clip(np.sin(np.pi * tp), 0.0, 1.0)
        f = np.where(tp < 0.5, f**tail_q, f**head_q)
        self.x0 = x0
        self.xs = x0 + t * (x1 - x0)
        self.halfs = depth / 2 * (0.86 * f + 0.14 * (1.0 - t))

    def half(self, x: float | np.ndarray) -> np.ndarray:
        return np.interp(x, self.xs, self.halfs)

    def outline(self) -> np.ndarray:
        top = np.stack([self.xs, -self.halfs], 1)
        bottom = np.stack([self.xs, self.halfs], 1)[::-1]
        return np.concatenate([top, bottom])

    def band(self, lo: float, hi: float, x_from: float | None = None,
             x_to: float | None = None) -> np.ndarray:
        """The strip between fractions `lo` and `hi` of the half depth (-1 top, +1 belly)."""
        xs = np.linspace(self.xs[0] if x_from is None else x_from,
                         self.xs[-1] if x_to is None else x_to, 20)
        hs = self.half(xs)
        return np.concatenate([np.stack([xs, lo * hs], 1), np.stack([xs, hi * hs], 1)[::-1]])

    def top_fin(self, xa: float, xb: float, tip: tuple[float, float]) -> np.ndarray:
        """A fin on the back with base from `xa` to `xb` and tip at ``(x, height)``."""
        return np.array([(xa, -0.8 * self.half(xa)), (tip[0], -self.half(tip[0]) - tip[1]),
                         (xb, -0.8 * self.half(xb))])

    def bottom_fin(self, xa: float, xb: float, tip: tuple[float, float]) -> np.ndarray:
        return self.top_fin(xa, xb, tip) * (1, -1)

    def tail(self, spread: float, length: float, notch: float = 0.45) -> np.ndarray:
        x0, h0 = self.x0, self.half(self.x0 + 0.03)
        return np.array([(x0 + 0.04, -h0), (x0 - length, -spread), (x0 - length * notch, 0.0),
                         (x0 - length, spread), (x0 + 0.04, h0)])

    def eye(self, x: float, r: float, ring: draw.Color) -> list[_Part]:
        c = (x, -0.25 * float(self.half(x)))
        return [(draw.ellipse_points(c, (r, r), n=16), ring, 0.0),
                (draw.ellipse_points(c, (0.6 * r, 0.6 * r), n=12), (15, 15, 15), 0.0)]

    def spots(self, rng: np.random.Generator, k: int, r: tuple[float, float],
              color: draw.Color, y: tuple[float, float] = (-0.8, 0.8)) -> list[_Part]:
        parts = []
        for _ in range(k):
            x = rng.uniform(self.xs[0] + 0.1 * (self.xs[-1] - self.xs[0]), self.xs[-1] - 0.08)
            yy = rng.uniform(*y) * float(self.half(x))
            rr = rng.uniform(*r)
            parts.append((draw.ellipse_points((x, yy), (rr, rr), n=10), color, 0.0))
        return parts


def _tuna(
    rng: np.random.Generator, *, depth: float, back: draw.Color, belly: draw.Color,
    fin: draw.Color, fin2: draw.Color, finlet: draw.Color, fin2_height: float,
    pect_len: float, eye_r: float, stripe: tuple[draw.Color, float, float] | None,
) -> list[_Part]:
    b = _Body(0.2, 1.0, depth, peak=0.52, tail_q=0.75, head_q=0.75)
    parts: list[_Part] = [(b.tail(depth * 0.75, 0.17), fin, 0.0)]
    parts.append((b.top_fin(0.5, 0.38, (0.36, fin2_height)), fin2, 0.0))
    parts.append((b.bottom_fin(0.48, 0.37, (0.35, fin2_height * 0.9)), fin2, 0.0))
    parts.append((b.top_fin(0.78, 0.6, (0.7, depth * 0.35)), fin, 0.0))
    for x in np.linspace(0.24, 0.34, 5):
        d = 0.016
        parts.append((b.top_fin(x + d, x - d, (x - 1.5 * d, 0.02)), finlet, 0.0))
        parts.append((b.bottom_fin(x + d, x - d, (x - 1.5 * d, 0.02)), finlet, 0.0))
    parts.append((b.outline(), belly, 0.0))
    parts.append((b.band(-1.0, 0.05), back, 0.0))
    if stripe is not None:
        parts.append((b.band(stripe[1], stripe[2], 0.3, 0.86), stripe[0], 0.0))
    xs = np.linspace(0.85, 0.72, 6)
    parts.append((np.stack([0.84 + 0.3 * (xs - 0.85), np.linspace(-0.6, 0.6, 6) *
                            b.half(0.84)], 1), draw.blend(back, _BLACK, 0.3), 0.006))
    parts.append((np.array([(0.77, -0.01), (0.77 - 0.5 * pect_len, 0.02 + 0.1 * depth),
                            (0.77 - pect_len, 0.03 + 0.15 * depth),
                            (0.74, 0.025 + 0.1 * depth)]), fin, 0.0))
    parts += b.eye(0.93, eye_r, (200, 195, 170))
    return parts


def _alb(rng: np.random.Generator) -> list[_Part]:
    return _tuna(rng, depth=rng.uniform(0.19, 0.23), back=(40, 52, 78), belly=(180, 186, 198),
                 fin=(45, 50, 68), fin2=(62, 64, 74), finlet=(75, 80, 92), fin2_height=0.05,
                 pect_len=rng.uniform(0.42, 0.5), eye_r=0.022, stripe=None)


def _bet(rng: np.random.Generator) -> list[_Part]:
    return _tuna(rng, depth=rng.uniform(0.3, 0.34), back=(28, 40, 100), belly=(195, 200, 215),
                 fin=(38, 44, 80), fin2=(150, 140, 70), finlet=(215, 190, 40),
                 fin2_height=0.07, pect_len=rng.uniform(0.26, 0.32),
                 eye_r=rng.uniform(0.045, 0.055), stripe=((70, 105, 190), -0.4, -0.15))


def _yft(rng: np.random.Generator) -> list[_Part]:
    return _tuna(rng, depth=rng.uniform(0.23, 0.27), back=(20, 24, 50), belly=(205, 205, 212),
                 fin=(30, 34, 60), fin2=(235, 195, 30), finlet=(235, 200, 40),
                 fin2_height=rng.uniform(0.16, 0.24), pect_len=rng.uniform(0.25, 0.3),
                 eye_r=0.022, stripe=((230, 195, 45), -0.14, 0.02))


def _dol(rng: np.random.Generator) -> list[_Part]:
    b = _Body(0.15, 1.0, rng.uniform(0.26, 0.3), peak=0.78, tail_q=0.9, head_q=0.3)
    fin, tail = (30, 100, 140), (205, 195, 60)
    xs = np.linspace(0.95, 0.22, 16)
    top = -b.half(xs)
    dorsal = np.concatenate([np.stack([xs, top - 0.07 * (0.4 + 0.6 * (xs - 0.15))], 1),
                             np.stack([xs, top + 0.02], 1)[::-1]])
    parts: list[_Part] = [(b.tail(0.2, 0.2, 0.5), tail, 0.0), (dorsal, fin, 0.0),
                          (b.bottom_fin(0.55, 0.22, (0.3, 0.05)), tail, 0.0),
                          (b.outline(), (225, 205, 45), 0.0), (b.band(-1.0, 0.1), (40, 150, 85), 0.0)]
    parts += b.spots(rng, int(rng.integers(8, 16)), (0.007, 0.013), (45, 85, 185), (-0.9, 0.3))
    parts.append((np.array([(0.8, 0.0), (0.66, 0.05), (0.78, 0.04)]), (200, 190, 80), 0.0))
    parts += b.eye(0.93, 0.024, (60, 60, 40))
    return parts


def _lag(rng: np.random.Generator) -> list[_Part]:
    b = _Body(0.2, 0.96, rng.uniform(0.58, 0.66), peak=0.55, tail_q=0.55, head_q=0.75)
    red = (215, 35, 40)
    top6 = float(b.half(0.62))
    parts: list[_Part] = [
        (b.tail(0.28, 0.14, 0.35), red, 0.0),
        (np.array([(0.75, -0.8 * float(b.half(0.75))), (0.47, -top6 - rng.uniform(0.2, 0.28)),
                   (0.56, -0.8 * float(b.half(0.56)))]), red, 0.0),
        (b.bottom_fin(0.55, 0.3, (0.33, 0.06)), red, 0.0),
        (b.outline(), (205, 105, 120), 0.0),
        (b.band(-1.0, -0.25), (120, 75, 130), 0.0),
    ]
    parts += b.spots(rng, int(rng.integers(12, 26)), (0.012, 0.028), (235, 235, 230))
    parts.append((np.array([(0.72, -0.02), (0.5, 0.0), (0.52, 0.04), (0.72, 0.03)]), red, 0.0))
    parts.append((b.bottom_fin(0.66, 0.58, (0.6, 0.1)), red, 0.0))
    parts += b.eye(0.88, 0.045, (220, 170, 60))
    return parts


def _shark(rng: np.random.Generator) -> list[_Part]:
    b = _Body(0.25, 1.0, rng.uniform(0.14, 0.17), peak=0.5, tail_q=0.9, head_q=1.6)
    grey = (112, 118, 128)
    x0, h0 = 0.25, float(b.half(0.28))
    parts: list[_Part] = [
        (np.array([(x0 + 0.03, -h0), (x0 - 0.22, -0.16), (x0 - 0.05, 0.0), (x0 - 0.09, 0.07),
                   (x0 + 0.03, h0)]), grey, 0.0),
        (b.top_fin(0.66, 0.5, (0.53, rng.uniform(0.13, 0.19))), grey, 0.0),
        (b.top_fin(0.37, 0.31, (0.3, 0.04)), grey, 0.0),
        (b.outline(), (215, 215, 212), 0.0),
        (b.band(-1.0, 0.25), grey, 0.0),
        (np.array([(0.74, 0.6 * float(b.half(0.74))), (0.55, float(b.half(0.6)) + 0.17),
                   (0.64, 0.6 * float(b.half(0.64)))]), draw.blend(grey, _BLACK, 0.1), 0.0),
    ]
    for x in (0.8, 0.815, 0.83, 0.845):
        hx = float(b.half(x))
        parts.append((np.array([(x, -0.45 * hx), (x - 0.005, 0.35 * hx)]), (70, 72, 80), 0.004))
    parts += b.eye(0.92, 0.012, (40, 40, 40))
    return parts


def _other(rng: np.random.Generator) -> list[_Part]:
    """One of a few other species, with random colours."""
    kind = int(rng.integers(5))
    hue = rng.uniform(0, 1)
    if kind == 0:  # ray
        body = draw.hsv(rng.uniform(0.05, 0.14), rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6))
        diamond = draw.ellipse_points((0.58, 0.0), (0.38, 0.45), n=4)
        parts: list[_Part] = [(np.array([(0.25, 0.0), (-0.2, 0.02)]), body, 0.012),
                              (diamond, body, 0.0)]
        return parts + [(draw.ellipse_points((0.82, s * 0.07), (0.015, 0.015), n=8),
                         (20, 20, 20), 0.0) for s in (-1, 1)]
    if kind == 1:  # wahoo: long, barred
        b = _Body(0.12, 1.0, rng.uniform(0.09, 0.11), tail_q=0.9, head_q=1.3)
        back = draw.hsv(rng.uniform(0.5, 0.62), rng.uniform(0.3, 0.6), rng.uniform(0.35, 0.6))
        parts = [(b.tail(0.08, 0.1), back, 0.0), (b.outline(), (200, 202, 205), 0.0),
                 (b.band(-1.0, 0.2), back, 0.0)]
        for x in np.linspace(0.25, 0.85, int(rng.integers(9, 14))):
            parts.append((b.band(-1.0, 0.2, x, x + 0.015), draw.blend(back, _BLACK, 0.5), 0.0))
        return parts + b.eye(0.95, 0.015, (200, 200, 200))
    if kind == 2:  # snapper / grouper: deep, spiny back, round tail
        b = _Body(0.22, 0.98, rng.uniform(0.34, 0.42), tail_q=0.7, head_q=0.9)
        body = draw.hsv(rng.uniform(-0.04, 0.12), rng.uniform(0.4, 0.8), rng.uniform(0.45, 0.9))
        xs = np.linspace(0.75, 0.35, 9)
        spiny = np.concatenate([np.stack([xs, -b.half(xs) - np.tile([0.0, 0.06], 5)[:9]], 1),
                                np.stack([xs, -0.8 * b.half(xs)], 1)[::-1]])
        parts = [(draw.ellipse_points((0.17, 0.0), (0.09, 0.12)), body, 0.0),
                 (spiny, draw.blend(body, _BLACK, 0.25), 0.0), (b.outline(), body, 0.0)]
        if rng.random() < 0.5:
            parts += b.spots(rng, 15, (0.01, 0.02), draw.blend(body, _BLACK, 0.4))
        return parts + b.eye(0.9, 0.03, (220, 180, 60))
    if kind == 3:  # billfish: bill and sail
        b = _Body(0.2, 0.85, rng.uniform(0.14, 0.18), tail_q=0.8, head_q=1.0)
        back = draw.hsv(rng.uniform(0.6, 0.7), rng.uniform(0.5, 0.8), rng.uniform(0.3, 0.5))
        xs = np.linspace(0.78, 0.35, 12)
        sail = np.concatenate([np.stack([xs, -b.half(xs) - rng.uniform(0.12, 0.22) *
                                         np.sin(np.linspace(0.3, 2.8, 12))], 1),
                               np.stack([xs, -0.8 * b.half(xs)], 1)[::-1]])
        return [(b.tail(0.2, 0.16, 0.3), back, 0.0), (sail, back, 0.0),
                (np.array([(0.83, -0.012), (1.05, 0.0), (0.83, 0.012)]), back, 0.0),
                (b.outline(), (195, 200, 210), 0.0), (b.band(-1.0, 0.0), back, 0.0),
                *b.eye(0.8, 0.02, (200, 200, 200))]
    b = _Body(0.2, 1.0, rng.uniform(0.15, 0.4), tail_q=0.8, head_q=rng.uniform(0.5, 1.2))
    body = draw.hsv(hue, rng.uniform(0.2, 0.9), rng.uniform(0.3, 0.95))
    fin = draw.hsv(hue + rng.uniform(-0.3, 0.3), rng.uniform(0.2, 0.9), rng.uniform(0.3, 0.9))
    tail = b.tail(0.18, 0.15) if rng.random() < 0.5 else draw.ellipse_points(
        (0.15, 0.0), (0.08, 0.1))
    return [(tail, fin, 0.0), (b.top_fin(0.7, 0.4, (0.5, 0.08)), fin, 0.0),
            (b.outline(), body, 0.0), (b.band(-1.0, 0.0), draw.blend(body, _BLACK, 0.3), 0.0),
            *b.eye(0.9, 0.025, (210, 210, 200))]


# Class index -> part builder (NoF, index 4, has no fish).
_FISH = MappingProxyType({0: _alb, 1: _bet, 2: _dol, 3: _lag, 5: _other, 6: _shark, 7: _yft})


def _draw_fish(
    img: np.ndarray, cls: int, rng: np.random.Generator, gain: np.ndarray,
) -> tuple[float, float, float, float]:
    """Draws one fish of class `cls` fully inside `img`; returns its box (x, y, w, h)."""
    h, w = img.shape[:2]
    parts = _FISH[cls](rng)
    length = w * rng.uniform(0.12, 0.35)
    flip = 1.0 if rng.random() < 0.5 else -1.0
    scale = (length, length * flip * rng.uniform(0.9, 1.1))
    angle = rng.uniform(0, 2 * np.pi)
    tint = gain * rng.uniform(0.85, 1.15) * rng.uniform(0.94, 1.06, size=3)
    placed = [(draw.transform(p - (0.5, 0.0), scale=scale, angle=angle, offset=(0, 0)), c, t)
              for p, c, t in parts]
    filled = np.concatenate([p for p, _, t in placed if t == 0.0])
    lo, hi = filled.min(0), filled.max(0)
    offset = np.empty(2)
    for i, extent in enumerate((w, h)):
        a, b = 1.0 - lo[i], extent - 1.0 - hi[i]
        offset[i] = rng.uniform(a, b) if a < b else (extent - lo[i] - hi[i]) / 2
    for pts, color, width in placed:
        col = draw.scale_color(draw.jitter(rng, color, 10), tint)
        if width == 0.0:
            draw.fill(img, pts + offset, col)
        else:
            draw.polyline(img, pts + offset, col, width * length)
    x0, y0 = np.clip(lo + offset, 0, (w, h))
    x1, y1 = np.clip(hi + offset, 0, (w, h))
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)
