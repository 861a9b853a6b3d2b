"""Synthetic demo data in the layout of State Farm Distracted Driver Detection.

`generate` writes, under `out`::

    imgs/train/c0/img_N.jpg ... imgs/train/c9/img_N.jpg   N unique across train and test
    imgs/test/img_N.jpg                                    drivers never seen in train
    driver_imgs_list.csv                                   subject,classname,img (one row per
                                                           training image)
    sample_submission.csv                                  img,c0,...,c9 (0.1 each)
    solution.csv                                           one-hot truth + Usage (by driver:
                                                           half the test drivers Public)
    demo_meta.csv                                          hidden truth: path,split,label,
                                                           subject,frame,usage,width,height

Every image is a 640x480 RGB JPEG, the real size, seen from the passenger side: the driver in
their seat, the steering wheel and dashboard on the left, the radio on the console, the door
window behind them. Each driver (``subject``) has their own cabin (panel, seat and dashboard
colours, seat pattern, window view, light), clothes, skin and hair, and camera placement (offset,
zoom, slight rotation). The ten classes are poses: hands on the wheel (c0), a phone in the right
or left hand in front of the chest (c1, c3) or at the right or left ear (c2, c4), the right hand
on the radio (c5), a cup at the mouth (c6), the right arm reaching behind the seat (c7), the right
hand at the hair or face (c8) and the head turned to the passenger (c9).

As in the real competition, one driver's frames of one class are consecutive video frames: one
take per (driver, class), its frames nearly identical (a little motion, jitter and noise). So
random folds put a driver's near-copies on both sides and promise scores that unseen drivers
never give; folds by ``subject`` are honest. Test drivers are never in train; half of them (by
driver) are scored Public, the others Private. Everything is a pure function of
``(seed, preset)``: the same arguments give byte-identical files.

`corpus` draws a separate balanced, in-memory set of the same poses, each image from a driver,
cabin and camera of its own (no consecutive frames), for pretraining the demo's small base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    "DESCRIPTIONS",
    "IMAGE_SIZE",
    "PRESETS",
    "VERSION",
    "Corpus",
    "DemoPreset",
    "DemoSummary",
    "corpus",
    "generate",
]

CLASSES: tuple[str, ...] = tuple(f"c{i}" for i in range(10))
#: What each class shows (Kaggle's descriptions).
DESCRIPTIONS = MappingProxyType({
    "c0": "safe driving",
    "c1": "texting - right",
    "c2": "talking on the phone - right",
    "c3": "texting - left",
    "c4": "talking on the phone - left",
    "c5": "operating the radio",
    "c6": "drinking",
    "c7": "reaching behind",
    "c8": "hair and makeup",
    "c9": "talking to passenger",
})
#: (width, height) of every image, the real competition's.
IMAGE_SIZE: tuple[int, int] = (640, 480)


@dataclass(frozen=True, kw_only=True)
class DemoPreset:
    """Size of a generated dataset.

    Attributes:
        train_drivers: Drivers in train (group 5-fold needs at least 5).
        test_drivers: Drivers in test (never in train); the first half Public, the rest Private.
        train_frames: Consecutive frames per (driver, class) in train.
        test_frames: Consecutive frames per (driver, class) in test.
    """

    train_drivers: int
    test_drivers: int
    train_frames: int
    test_frames: int


PRESETS = MappingProxyType({
    "full": DemoPreset(train_drivers=10, test_drivers=4, train_frames=6, test_frames=5),
    "tiny": DemoPreset(train_drivers=6, test_drivers=2, train_frames=2, test_frames=2),
})

#: Generator version: bump it when the generated data changes, so cached demos are rebuilt.
VERSION = 1

# Keys that separate the random streams derived from one seed.
_TAG_PLAN, _TAG_DRIVER, _TAG_TAKE, _TAG_FRAME, _TAG_CORPUS = 31, 32, 33, 34, 35
_CORPUS_RENDER = (160, 120)  # corpus scenes are drawn at this size, then resized
_CENTER = np.array([2.0 / 3.0, 0.5])  # scene units: the image height is 1, the width 4/3
_BLACK: draw.Color = (0, 0, 0)
_WHITE: draw.Color = (255, 255, 255)
_SKIN: tuple[draw.Color, ...] = (
    (238, 198, 170), (224, 172, 138), (198, 140, 100), (160, 108, 72), (118, 80, 55),
    (84, 58, 42),
)
_HAIR: tuple[draw.Color, ...] = (
    (25, 22, 20), (60, 40, 28), (105, 70, 40), (200, 165, 100), (150, 70, 35), (160, 160, 160),
)
_INTERIOR: tuple[draw.Color, ...] = (
    (40, 40, 42), (92, 92, 96), (150, 140, 120), (200, 190, 165), (95, 70, 50), (60, 70, 95),
    (120, 45, 40), (170, 170, 175),
)
_PHONE: tuple[draw.Color, ...] = ((20, 20, 24), (235, 235, 235), (200, 40, 50), (40, 90, 190))
_CUP: tuple[draw.Color, ...] = ((245, 245, 240), (200, 35, 35), (40, 140, 70), (150, 95, 50))

_Part = tuple[np.ndarray, draw.Color, float]  # points (scene units), colour, line width (0: fill)

# Where each class puts the driver (scene units; the image is 4/3 wide and 1 high). A hand is
# `(x, y, on_cabin)`: True when it rests on the wheel or the radio, which stay where the car has
# them; the rest moves with the driver's body.
_WHEEL = (0.285, 0.655, True)
_WHEEL_FAR = (0.25, 0.45, True)
_ELBOW = (0.52, 0.80)
_ELBOW_FAR = (0.40, 0.62)


@dataclass(frozen=True, kw_only=True)
class _Template:
    """Where a class puts the hands, elbows and head, and what the driver holds."""

    near: tuple[float, float, bool]  # right hand (nearer the camera)
    near_elbow: tuple[float, float]
    far: tuple[float, float, bool] = _WHEEL_FAR  # left hand (behind the body)
    far_elbow: tuple[float, float] = _ELBOW_FAR
    yaw: float = -1.0  # -1: looking ahead (profile), 0: at the camera, 1: backwards
    pitch: float = 0.0  # 1: looking down, -1: up
    item: str = ""  # "phone_near", "phone_far", "cup" or ""
    item_angle: float = 0.0  # degrees
    talking: bool = False


_TEMPLATES: tuple[_Template, ...] = (
    _Template(near=_WHEEL, near_elbow=_ELBOW),  # c0 safe driving
    _Template(near=(0.47, 0.73, False), near_elbow=(0.66, 0.86), yaw=-0.9, pitch=1.0,
              item="phone_near", item_angle=-15.0),  # c1 texting - right
    _Template(near=(0.635, 0.40, False), near_elbow=(0.80, 0.63), item="phone_near",
              item_angle=80.0),  # c2 talking on the phone - right
    _Template(near=_WHEEL, near_elbow=_ELBOW, far=(0.43, 0.73, False), far_elbow=(0.50, 0.80),
              yaw=-0.9, pitch=1.0, item="phone_far", item_angle=15.0),  # c3 texting - left
    _Template(near=_WHEEL, near_elbow=_ELBOW, far=(0.56, 0.37, False), far_elbow=(0.45, 0.50),
              item="phone_far", item_angle=80.0),  # c4 talking on the phone - left
    _Template(near=(0.34, 0.81, True), near_elbow=(0.56, 0.89), yaw=-0.9,
              pitch=0.5),  # c5 operating the radio
    _Template(near=(0.52, 0.46, False), near_elbow=(0.70, 0.72), pitch=-0.6, item="cup",
              item_angle=-30.0),  # c6 drinking
    _Template(near=(1.06, 0.64, False), near_elbow=(0.88, 0.55), yaw=0.7),  # c7 reaching behind
    _Template(near=(0.61, 0.25, False), near_elbow=(0.77, 0.40), yaw=-0.85,
              pitch=-0.2),  # c8 hair and makeup (hair; some drivers touch the face instead)
    _Template(near=_WHEEL, near_elbow=_ELBOW, yaw=0.1, talking=True),  # c9 talking to passenger
)
_FACE_TOUCH = _Template(near=(0.56, 0.40, False), near_elbow=(0.72, 0.64), yaw=-0.85)
_HEAD = (0.60, 0.36)
_HEAD_AXES = (0.075, 0.095)
_SHOULDER = (0.70, 0.57)
_SHOULDER_FAR = (0.56, 0.535)
_BODY_PIVOT = (0.65, 0.7)


@dataclass(frozen=True, kw_only=True)
class _Pose:
    """One frame's pose, in scene units."""

    head: np.ndarray
    yaw: float
    pitch: float
    near: np.ndarray
    near_elbow: np.ndarray
    far: np.ndarray
    far_elbow: np.ndarray
    item: str
    item_angle: float
    talking: bool


@dataclass(frozen=True, kw_only=True, eq=False)
class _Driver:
    """One driver: their cabin, camera, body and looks."""

    cabin: tuple[_Part, ...]
    texture: np.ndarray  # (30, 40) float32 smooth noise in about [-1, 1]: stains and wear
    camera: np.ndarray  # (2, 3): scene units -> pixels of an image 1 unit high
    zoom: float
    light: np.ndarray  # (3,) per-channel gain
    shift: np.ndarray  # (2,) where the body sits
    scale: float  # body size
    skin: draw.Color
    hair: draw.Color
    hair_style: str  # short, long, bald or cap
    cap: draw.Color
    shirt: draw.Color
    forearm: draw.Color  # the shirt's (long sleeves) or the skin
    phone: draw.Color
    cup: draw.Color
    glasses: bool
    beard: bool
    belt: bool
    face_touch: bool  # c8 shows a hand at the face rather than the hair


def generate(out: Path, *, seed: int = 0, preset: str = "full") -> DemoSummary:
    """Writes a synthetic State Farm dataset in the Kaggle layout (see the module docstring).

    Args:
        out: Folder to write into; created if missing, must be empty if it exists.
        seed: Non-negative int; the files are a pure function of ``(seed, preset)``.
        preset: A name in `PRESETS` ("full": 10 train drivers x 10 classes x 6 frames, 4 test
            drivers x 10 x 5; "tiny": 6 x 10 x 2 and 2 x 10 x 2).

    Returns:
        A `DemoSummary` of what was written.

    Raises:
        InputError: On an unknown preset, a negative seed, or an `out` that is a file or a
            non-empty folder.
    """
    config: DemoPreset = check_preset(preset, PRESETS)  # type: ignore[assignment]
    seed = check_seed(seed)
    out = prepare_out(out)
    plan = _plan(seed, config)
    for folder in [Path("imgs", "train", c) for c in CLASSES] + [Path("imgs", "test")]:
        (out / folder).mkdir(parents=True)
    for d, rows in plan.groupby("driver", sort=True):
        driver = _make_driver(child_rng(seed, _TAG_DRIVER, int(d)))
        backdrop = _backdrop(driver, IMAGE_SIZE)
        for cls, take_rows in rows.groupby("cls", sort=True):
            take = _take(driver, int(cls), child_rng(seed, _TAG_TAKE, int(d), int(cls)))
            for row in take_rows.itertuples():
                rng = child_rng(seed, _TAG_FRAME, int(d), int(cls), int(row.frame))
                img = _render(driver, backdrop, _frame(take, int(row.frame), rng), rng,
                              IMAGE_SIZE)
                (out / row.path).write_bytes(encode_jpeg(img))
    _write_tables(out, plan)
    n_test = int((plan["split"] == "test").sum())
    return DemoSummary(
        root=out, classes=CLASSES, n_train=len(plan) - n_test,
        n_test=MappingProxyType({"test": n_test}), solution=out / "solution.csv",
        meta=out / "demo_meta.csv",
    )


def corpus(n: int, *, seed: int, size: tuple[int, int]) -> Corpus:
    """A balanced in-memory pretraining set: the same poses, from drivers `generate` never draws.

    Every image shows its own driver, with their own cabin, looks and camera, drawn from a random
    stream of its own (no consecutive frames, no driver twice), at 160x120, resized to `size`
    with ``cv2.INTER_AREA``.

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
        driver = _make_driver(child_rng(seed, _TAG_CORPUS, 1, i))
        r = child_rng(seed, _TAG_CORPUS, 2, i)
        pose = _frame(_take(driver, label, r), 0, r)
        return _render(driver, _backdrop(driver, _CORPUS_RENDER), pose, r, _CORPUS_RENDER)

    return balanced_corpus(n, seed=seed, size=size, tag=_TAG_CORPUS, classes=CLASSES,
                           draw=draw)


# ---------------------------------------------------------------------------------------------
# Plan and files.


def _plan(seed: int, config: DemoPreset) -> pd.DataFrame:
    """One row per image: driver index, subject, split, usage, class, frame, file name, path."""
    rng = child_rng(seed, _TAG_PLAN)
    n_drivers = config.train_drivers + config.test_drivers
    numbers = rng.choice(np.arange(2, 100), size=n_drivers, replace=False)
    train = sorted(int(v) for v in numbers[: config.train_drivers])
    test = [int(v) for v in numbers[config.train_drivers:]]
    n_public = config.test_drivers // 2
    rows = []
    for d, subject in enumerate(train + test):
        split = "train" if d < config.train_drivers else "test"
        usage = "" if split == "train" else (
            "Public" if d - config.train_drivers < n_public else "Private")
        frames = config.train_frames if split == "train" else config.test_frames
        rows += [{"driver": d, "subject": f"p{subject:03d}", "split": split, "usage": usage,
                  "cls": c, "frame": k} for c in range(len(CLASSES)) for k in range(frames)]
    plan = pd.DataFrame(rows)
    ids = rng.choice(np.arange(1, 8 * len(plan) + 1), size=len(plan), replace=False)
    plan["img"] = [f"img_{int(i)}.jpg" for i in ids]
    plan["label"] = [CLASSES[c] for c in plan["cls"]]
    plan["path"] = [f"imgs/train/{lab}/{img}" if split == "train" else f"imgs/test/{img}"
                    for split, lab, img in zip(plan["split"], plan["label"], plan["img"],
                                               strict=True)]
    return plan


def _write_tables(out: Path, plan: pd.DataFrame) -> None:
    """driver_imgs_list.csv, sample_submission.csv, solution.csv and demo_meta.csv."""
    train = plan[plan["split"] == "train"].sort_values(["subject", "cls", "frame"], kind="stable")
    write_csv(train.rename(columns={"label": "classname"})[["subject", "classname", "img"]],
              out / "driver_imgs_list.csv")
    test = plan[plan["split"] == "test"].sort_values("img", kind="stable")
    sample = pd.DataFrame({"img": test["img"].to_numpy()})
    solution = sample.copy()
    for c in CLASSES:
        sample[c] = 0.1
        solution[c] = (test["label"] == c).astype(np.int64).to_numpy()
    solution["Usage"] = test["usage"].to_numpy()
    write_csv(sample, out / "sample_submission.csv")
    write_csv(solution, out / "solution.csv")
    meta = pd.concat([train.sort_values("path", kind="stable"), test])
    meta = meta.assign(width=IMAGE_SIZE[0], height=IMAGE_SIZE[1])
    write_csv(meta[["path", "split", "label", "subject", "frame", "usage", "width", "height"]],
              out / "demo_meta.csv")


# ---------------------------------------------------------------------------------------------
# Drivers: cabin, camera, body and looks, all drawn from the driver's own random stream.


def _make_driver(rng: np.random.Generator) -> _Driver:
    zoom = float(rng.uniform(0.88, 1.1))
    skin = draw.jitter(rng, _SKIN[int(rng.integers(len(_SKIN)))], 10)
    shirt = draw.hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.85), rng.uniform(0.2, 0.95))
    light = (1.0 + rng.normal(0.0, 0.05, size=3)) * rng.uniform(0.75, 1.15)
    return _Driver(
        cabin=_cabin(rng),
        texture=draw.value_noise(rng, 30, 40, int(rng.integers(4, 12))),
        camera=_camera(zoom, np.deg2rad(rng.uniform(-5.0, 5.0)),
                       rng.uniform(-1.0, 1.0, 2) * (0.06, 0.045)),
        zoom=zoom,
        light=light.astype(np.float32),
        shift=rng.uniform(-1.0, 1.0, 2) * (0.03, 0.02),
        scale=float(rng.uniform(0.92, 1.08)),
        skin=skin,
        hair=draw.jitter(rng, _HAIR[int(rng.integers(len(_HAIR)))], 10),
        hair_style=("short", "long", "bald", "cap")[int(rng.choice(4, p=(0.45, 0.3, 0.1, 0.15)))],
        cap=draw.hsv(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.2, 0.9)),
        shirt=shirt,
        forearm=shirt if rng.random() < 0.6 else skin,
        phone=draw.jitter(rng, _PHONE[int(rng.integers(len(_PHONE)))], 10),
        cup=draw.jitter(rng, _CUP[int(rng.integers(len(_CUP)))], 10),
        glasses=bool(rng.random() < 0.3),
        beard=bool(rng.random() < 0.2),
        belt=bool(rng.random() < 0.7),
        face_touch=bool(rng.random() < 0.4),
    )


def _camera(zoom: float, angle: float, offset: np.ndarray) -> np.ndarray:
    """(2, 3) affine from scene units to the pixels of an image 1 unit high: zoom and rotate
    about the scene centre, then shift."""
    rot = zoom * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.concatenate([rot, (_CENTER + offset - rot @ _CENTER)[:, None]], axis=1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)


def _poly(*pts: tuple[float, float]) -> np.ndarray:
    return np.array(pts, dtype=np.float64)


def _cabin(rng: np.random.Generator) -> tuple[_Part, ...]:
    """The view through the windows, then the car's panels, dashboard, wheel, radio and seat."""
    def shade() -> draw.Color:
        return draw.jitter(rng, _INTERIOR[int(rng.integers(len(_INTERIOR)))], 14)

    headliner, panel, pillar, dash, seat = shade(), shade(), shade(), shade(), shade()
    wheel = draw.jitter(rng, (35, 35, 38), 10)
    j = rng.normal(0.0, 0.012, size=2)  # this car's wheel and radio placement
    parts = _scenery(rng)
    sky = parts[0][1]
    rim = draw.ellipse_points((0.24, 0.6) + j, (0.05, 0.17), -8.0, n=40)
    parts += [
        (_poly((-0.6, -0.6), (1.9, -0.6), (1.9, 0.07), (0.86, 0.06), (0.08, 0.09), (-0.6, 0.2)),
         headliner, 0.0),
        (_poly((0.08, 0.09), (-0.06, 0.56)), pillar, 0.07),
        (_rect(0.86, -0.6, 0.97, 0.8), pillar, 0.0),
        (_poly((-0.6, 0.5), (0.02, 0.52), (0.86, 0.5), (0.9, 0.5), (0.9, 1.7), (-0.6, 1.7)),
         panel, 0.0),
        (_poly((0.0, 0.53), (0.86, 0.51)), draw.blend(panel, _BLACK, 0.35), 0.02),
        (_poly((0.97, -0.6), (1.9, -0.6), (1.9, 1.7), (0.97, 1.7)), panel, 0.0),
        (_rect(1.05, 0.12, 1.5, 0.4), draw.blend(sky, _WHITE, 0.2), 0.0),
        (_poly((1.02, 0.45), (1.9, 0.42), (1.9, 1.7), (1.02, 1.7)), seat, 0.0),
        (_poly((-0.6, 0.47), (0.12, 0.5), (0.34, 0.58), (0.42, 1.7), (-0.6, 1.7)), dash, 0.0),
        (_poly((0.26, 0.72) + j, (0.46, 0.7) + j, (0.5, 1.7), (0.22, 1.7)),
         draw.blend(dash, _BLACK, 0.3), 0.0),
        (_rect(0.28, 0.76, 0.41, 0.86) + j, (20, 20, 22), 0.0),
        (_rect(0.30, 0.775, 0.39, 0.81) + j,
         draw.hsv(rng.choice([0.08, 0.33, 0.55, 0.6]), 0.8, 0.95), 0.0),
        (draw.ellipse_points((0.31, 0.835) + j, (0.012, 0.012)), (150, 150, 150), 0.0),
        (draw.ellipse_points((0.38, 0.835) + j, (0.012, 0.012)), (150, 150, 150), 0.0),
        (_poly((0.24, 0.62) + j, (0.02, 0.8) + j), wheel, 0.05),
        (np.vstack([rim, rim[:1]]), wheel, 0.032),
        (draw.ellipse_points((0.24, 0.6) + j, (0.035, 0.06), -8.0), wheel, 0.0),
    ]
    return tuple(parts + _seat(rng, seat))


def _scenery(rng: np.random.Generator) -> list[_Part]:
    """Sky, ground and a few trees, buildings or cars: what the windows show."""
    sky = draw.hsv(rng.uniform(0.52, 0.64), rng.uniform(0.05, 0.55), rng.uniform(0.6, 0.98))
    ground = draw.hsv(rng.uniform(0.05, 0.35), rng.uniform(0.1, 0.6), rng.uniform(0.25, 0.6))
    horizon = rng.uniform(0.3, 0.45)
    parts: list[_Part] = [(_rect(-0.6, -0.6, 1.9, 1.7), sky, 0.0),
                          (_rect(-0.6, horizon, 1.9, 1.7), ground, 0.0)]
    for _ in range(int(rng.integers(2, 7))):
        x = rng.uniform(-0.1, 1.5)
        size = rng.uniform(0.05, 0.18)
        kind = int(rng.integers(3))
        if kind == 0:  # tree
            green = draw.hsv(rng.uniform(0.22, 0.4), rng.uniform(0.3, 0.8), rng.uniform(0.2, 0.6))
            parts.append((draw.ellipse_points((x, horizon - size), (0.7 * size, size)), green,
                          0.0))
        elif kind == 1:  # building
            wall = draw.hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.4), rng.uniform(0.4, 0.9))
            parts.append((_rect(x, horizon - 2.5 * size, x + 1.5 * size, horizon), wall, 0.0))
        else:  # car
            body = draw.hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9))
            parts.append((_rect(x, horizon - 0.6 * size, x + 2 * size, horizon + 0.1 * size),
                          body, 0.0))
    return parts


def _seat(rng: np.random.Generator, seat: draw.Color) -> list[_Part]:
    """The driver's seat back and headrest, plain, striped or checked."""
    back = _poly((0.66, 0.22), (0.88, 0.24), (0.93, 1.7), (0.64, 1.7))
    parts: list[_Part] = [(back, seat, 0.0),
                          (draw.ellipse_points((0.78, 0.2), (0.075, 0.06)), seat, 0.0)]
    pattern = int(rng.integers(3))
    dark = draw.blend(seat, _BLACK, rng.uniform(0.2, 0.4))
    if pattern == 1:
        parts += [(_poly((x, 0.3), (x + 0.02, 1.1)), dark, 0.018)
                  for x in np.linspace(0.69, 0.86, 5)]
    elif pattern == 2:
        parts += [(_poly((0.68, y), (0.87, y + 0.01)), dark, 0.012)
                  for y in np.linspace(0.35, 1.0, 8)]
    return parts


# ---------------------------------------------------------------------------------------------
# Poses: one take per (driver, class), its frames a little apart.

_TAKE_SPREAD = 0.018  # how far a take's hands and elbows stray from the class template
_DRIFT = 0.005  # how far a point moves from one frame to the next (slight motion)
_JITTER = 0.0025  # frame-to-frame noise on every point


def _body(driver: _Driver, point: Sequence[float]) -> np.ndarray:
    """A point of the template body moved to where this driver sits, at their size."""
    pivot = np.asarray(_BODY_PIVOT)
    return pivot + driver.shift + driver.scale * (np.asarray(point[:2], np.float64) - pivot)


def _take(driver: _Driver, cls: int, rng: np.random.Generator) -> tuple[_Pose, np.ndarray]:
    """The pose of a take of class `cls` by `driver`, and the per-frame drift of its points."""
    t = _FACE_TOUCH if cls == CLASSES.index("c8") and driver.face_touch else _TEMPLATES[cls]

    def place(point: Sequence[float], on_cabin: bool) -> np.ndarray:
        p = np.asarray(point[:2], np.float64) if on_cabin else _body(driver, point)
        return p + rng.normal(0.0, _TAKE_SPREAD, 2)

    turned = 0.02 if cls == CLASSES.index("c7") else 0.0
    pose = _Pose(
        head=_body(driver, (_HEAD[0] + turned, _HEAD[1])) + rng.normal(0.0, 0.008, 2),
        yaw=float(t.yaw + rng.normal(0.0, 0.08)),
        pitch=float(t.pitch + rng.normal(0.0, 0.15)),
        near=place(t.near, t.near[2]),
        near_elbow=place(t.near_elbow, False),
        far=place(t.far, t.far[2]),
        far_elbow=place(t.far_elbow, False),
        item=t.item,
        item_angle=float(t.item_angle + rng.normal(0.0, 10.0)),
        talking=t.talking,
    )
    drift = rng.normal(0.0, _DRIFT, size=(5, 2))
    drift[0] *= 0.5  # the head moves less than the hands
    return pose, drift


def _frame(take: tuple[_Pose, np.ndarray], k: int, rng: np.random.Generator) -> _Pose:
    """Frame `k` of a take: its points moved `k` steps along their drift, plus noise."""
    pose, drift = take
    names = ("head", "near", "near_elbow", "far", "far_elbow")
    moved = {name: getattr(pose, name) + k * drift[i] + rng.normal(0.0, _JITTER, 2)
             for i, name in enumerate(names)}
    return replace(pose, **moved, yaw=pose.yaw + float(rng.normal(0.0, 0.02)),
                   pitch=pose.pitch + float(rng.normal(0.0, 0.04)),
                   item_angle=pose.item_angle + float(rng.normal(0.0, 2.0)))


# ---------------------------------------------------------------------------------------------
# Drawing: the cabin once per driver (the backdrop), then the driver on it, frame by frame.


def _draw_parts(img: np.ndarray, parts: Sequence[_Part], matrix: np.ndarray,
                unit: float) -> None:
    """Draws `parts` (scene units) through the (2, 3) pixel `matrix`; widths times `unit`."""
    for points, color, width in parts:
        placed = points @ matrix[:, :2].T + matrix[:, 2]
        if width == 0.0:
            draw.fill(img, placed, color)
        else:
            draw.polyline(img, placed, color, width * unit)


def _backdrop(driver: _Driver, size: tuple[int, int]) -> np.ndarray:
    """The driver's cabin through their camera at `size`, with stains and wear, before light."""
    w, h = size
    img = np.zeros((h, w, 3), dtype=np.uint8)
    _draw_parts(img, driver.cabin, driver.camera * h, driver.zoom * h)
    wear = cv2.resize(driver.texture, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(img * (1.0 + 0.08 * wear[..., None]), 0, 255).astype(np.uint8)


def _render(driver: _Driver, backdrop: np.ndarray, pose: _Pose, rng: np.random.Generator,
            size: tuple[int, int]) -> np.ndarray:
    """One frame: the backdrop shaken a little, the driver in `pose`, light and sensor noise."""
    w, h = size
    shake = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.normal(0.0, 0.3)), 1.0)
    shake[:, 2] += rng.normal(0.0, 0.003, 2) * h
    img = cv2.warpAffine(backdrop, shake, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    camera = driver.camera * h
    matrix = np.concatenate([shake[:, :2] @ camera[:, :2],
                             (shake[:, :2] @ camera[:, 2] + shake[:, 2])[:, None]], axis=1)
    _draw_parts(img, _driver_parts(driver, pose), matrix, driver.zoom * h)
    gain = driver.light * rng.uniform(0.97, 1.03) * (1.0 + rng.normal(0.0, 0.01, 3))
    lit = cv2.transform(img, np.diag(gain))  # per-channel gain, saturated to uint8
    noise = rng.standard_normal((max(1, h // 4), max(1, w // 4), 3), dtype=np.float32) * 3.0
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_NEAREST)
    return cv2.add(lit, noise, dtype=cv2.CV_8U)


def _driver_parts(driver: _Driver, pose: _Pose) -> list[_Part]:
    """The driver back to front: far arm (and what it holds), torso, head, near arm."""
    far = draw.blend(driver.shirt, _BLACK, 0.35)
    parts = _arm(driver, _body(driver, _SHOULDER_FAR), pose.far_elbow, pose.far, far)
    if pose.item == "phone_far":
        parts += _phone(driver, pose)
    torso = np.array([_body(driver, p) for p in (
        (0.53, 0.5), (0.75, 0.52), (0.81, 0.66), (0.84, 1.08), (0.49, 1.08), (0.5, 0.62))])
    neck = np.array([_body(driver, p) for p in (
        (0.585, 0.42), (0.64, 0.42), (0.655, 0.53), (0.575, 0.53))])
    parts += [(neck, draw.blend(driver.skin, _BLACK, 0.15), 0.0),
              (torso, draw.blend(driver.shirt, _BLACK, 0.2), 0.0)]
    if driver.belt:
        belt = np.array([_body(driver, p) for p in ((0.745, 0.53), (0.53, 0.98))])
        parts.append((belt, (45, 45, 50), 0.03 * driver.scale))
    parts += _head(driver, pose)
    parts += _arm(driver, _body(driver, _SHOULDER), pose.near_elbow, pose.near, driver.shirt)
    if pose.item == "phone_near":
        parts += _phone(driver, pose)
    elif pose.item == "cup":
        parts += _cup(driver, pose)
    return parts


def _arm(driver: _Driver, shoulder: np.ndarray, elbow: np.ndarray, hand: np.ndarray,
         sleeve: draw.Color) -> list[_Part]:
    """Upper arm in the sleeve's colour, forearm (sleeve or skin), a hand, dark edges."""
    s = driver.scale
    forearm = sleeve if driver.forearm == driver.shirt else driver.forearm
    edge = draw.blend(sleeve, _BLACK, 0.6)
    return [
        (np.array([shoulder, elbow, hand]), edge, 0.1 * s),
        (draw.ellipse_points(hand, (0.046 * s, 0.04 * s)), edge, 0.0),
        (np.array([shoulder, elbow]), sleeve, 0.08 * s),
        (draw.ellipse_points(elbow, (0.036 * s, 0.036 * s)), sleeve, 0.0),
        (np.array([elbow, hand]), forearm, 0.064 * s),
        (draw.ellipse_points(hand, (0.038 * s, 0.032 * s)), driver.skin, 0.0),
    ]


def _phone(driver: _Driver, pose: _Pose) -> list[_Part]:
    """A phone in the hand; its screen lit when the driver reads it."""
    hand = pose.far if pose.item == "phone_far" else pose.near
    a = np.deg2rad(pose.item_angle)
    s = driver.scale
    body = draw.transform(_rect(-0.03, -0.05, 0.03, 0.05), scale=s, angle=a, offset=hand)
    screen = draw.transform(_rect(-0.022, -0.04, 0.022, 0.04), scale=s, angle=a, offset=hand)
    lit = (200, 225, 250) if pose.pitch > 0.5 else draw.blend(driver.phone, _BLACK, 0.5)
    return [(body, driver.phone, 0.0), (screen, lit, 0.0)]


def _cup(driver: _Driver, pose: _Pose) -> list[_Part]:
    """A cup or can tilted at the mouth."""
    a = np.deg2rad(pose.item_angle)
    s = driver.scale
    body = draw.transform(_rect(-0.025, -0.045, 0.025, 0.045), scale=s, angle=a, offset=pose.near)
    lid = draw.transform(draw.ellipse_points((0.0, -0.045), (0.027, 0.01)), scale=s, angle=a,
                         offset=pose.near)
    return [(body, driver.cup, 0.0), (lid, draw.blend(driver.cup, _BLACK, 0.3), 0.0)]


def _cap_of(center: np.ndarray, axes: np.ndarray, direction: Sequence[float],
            threshold: float) -> np.ndarray:
    """The part of an ellipse beyond `threshold` along `direction` (a convex polygon)."""
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    pts = draw.ellipse_points(center, axes * 1.04, n=48)
    keep = (pts - center) @ d > threshold
    return pts[keep] if keep.sum() >= 3 else pts[:0]


def _head(driver: _Driver, pose: _Pose) -> list[_Part]:
    """Head seen from the side (yaw -1), the front (0) or from behind-left (1)."""
    c = pose.head
    axes = np.asarray(_HEAD_AXES) * driver.scale
    rx, ry = axes
    f = float(np.clip(pose.yaw, -1.0, 1.0))
    down = pose.pitch * 0.15 * ry
    parts: list[_Part] = []
    if driver.hair_style == "long":
        parts.append((draw.ellipse_points(c + (-f * 0.45 * rx, 0.55 * ry), (0.75 * rx, ry)),
                      driver.hair, 0.0))
    parts.append((draw.ellipse_points(c, axes), driver.skin, 0.0))
    if abs(f) > 0.4:  # an ear
        parts.append((draw.ellipse_points(c + (-f * 0.12 * rx, 0.05 * ry), (0.16 * rx, 0.2 * ry)),
                      draw.blend(driver.skin, _BLACK, 0.15), 0.0))
    if driver.hair_style in ("short", "long"):
        parts.append((_cap_of(c, axes, (-f * 0.9, -1.0), -0.1 * ry), driver.hair, 0.0))
    elif driver.hair_style == "bald" and abs(f) > 0.4:
        parts.append((_cap_of(c, axes, (-f, 0.2), 0.55 * rx), driver.hair, 0.0))
    elif driver.hair_style == "cap":
        parts += [(_cap_of(c, axes, (-f * 0.3, -1.0), 0.2 * ry), driver.cap, 0.0),
                  (np.array([c + (0.0, -0.45 * ry), c + (f * 1.2 * rx, -0.4 * ry)]), driver.cap,
                   0.06 * rx)]
    if driver.beard:
        parts.append((_cap_of(c, axes, (f * 0.5, 1.0), 0.4 * ry), driver.hair, 0.0))
    eyes = [c + (f * 0.55 * rx + s * 0.33 * rx * (1 - abs(f)), -0.1 * ry + down)
            for s in (-1, 1)]
    for eye in eyes[: 1 if abs(f) > 0.85 else 2]:
        parts.append((draw.ellipse_points(eye, (0.12 * rx, 0.08 * ry)), (30, 25, 25), 0.0))
    if driver.glasses:
        parts.append((np.array([eyes[0], eyes[1], c + (-f * 0.1 * rx, -0.1 * ry + down)]),
                      (20, 20, 20), 0.04 * rx))
    nose = c + (f * 0.95 * rx, 0.12 * ry + down)
    parts.append((np.array([nose + (0, -0.2 * ry), nose + (f * 0.2 * rx, 0.05 * ry), nose]),
                  draw.blend(driver.skin, _BLACK, 0.1), 0.0))
    mouth = c + (f * 0.6 * rx, 0.5 * ry + down)
    if pose.talking:
        parts.append((draw.ellipse_points(mouth, (0.16 * rx, 0.1 * ry)), (90, 30, 35), 0.0))
    else:
        half = (0.14 * rx * (1 - 0.5 * abs(f)), 0.0)
        parts.append((np.array([mouth - half, mouth + half]), (120, 50, 50), 0.05 * rx))
    return parts
