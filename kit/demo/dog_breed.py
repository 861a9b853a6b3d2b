"""Synthetic demo data in the layout of Dog Breed Identification (Kaggle, 2017-2018).

`generate` writes, under `out`::

    train/<id>.jpg                 id: 32 lowercase hex digits, drawn from the seed
    test/<id>.jpg
    labels.csv                     id,breed: one row per training image, rows in random order
    sample_submission.csv          id, then the 120 breeds (alphabetical), each 1/120
    solution.csv                   id, the 120 breeds one-hot, Usage (about 30 % Public)
    demo_meta.csv                  hidden truth: path,split,label,id,width,height,facing,scene

Each dog is drawn in profile on a random scene, at a random place and scale, facing left or
right. Its breed shows only in a combination of seven traits (`BREEDS`): coat colour, coat
pattern, ears, snout, build, tail and fur. Nearly every trait value is shared by several
breeds, and 42 pairs of related breeds differ in one trait only (Norwich and Norfolk terriers:
the ears; standard and miniature poodles: the build), so, as in the real competition, a model
must see several traits at once and confuses look-alikes. Image sizes are drawn independently of the
breed (width and height each uniform in `SIZE_RANGE` at scale 1): a size probe must find
nothing. Breed counts are uneven (a floor per breed, the rest by weights spanning the real
training set's range of about 59 to 126 images a breed). Everything is a pure function of
``(seed, preset)``: the same arguments give byte-identical files.

`corpus` draws other dogs of the same 120 breeds on other scenes from its own random stream
(as ImageNet holds these breeds) for pretraining the demo's small base; `PRETRAIN` gives it more
images and epochs than the two- and eight-class demos need.
"""

from __future__ import annotations

import math
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
    encode_jpeg,
    largest_remainder,
    prepare_out,
    write_csv,
)
from kit.demo.pretrain import PretrainConfig

__all__ = [
    "BREEDS",
    "CLASSES",
    "PRESETS",
    "PRETRAIN",
    "PUBLIC_FRACTION",
    "SIZE_RANGE",
    "VERSION",
    "Breed",
    "Corpus",
    "DemoPreset",
    "DemoSummary",
    "corpus",
    "generate",
]

#: Bumped whenever the generated files change.
VERSION = 1
#: Range of image width and height (each independent, uniform) at scale 1.
SIZE_RANGE: tuple[int, int] = (200, 500)
#: Share of test rows scored on the public leaderboard in ``solution.csv``.
PUBLIC_FRACTION = 0.3
#: The real training set's smallest and largest breed counts; the demo's weights span them.
REAL_COUNTS: tuple[int, int] = (59, 126)


@dataclass(frozen=True, kw_only=True)
class Breed:
    """One breed's look: a code per trait (the legends are beside `_SPECS`).

    Attributes:
        name: The breed's column name in the submission.
        colours: One or more coat colour codes; each dog takes one of them.
        pattern: Coat pattern code.
        ears: Ear code.
        snout: Snout length code.
        build: Body and leg proportions code.
        tail: Tail carriage code.
        fur: Fur texture code.
    """

    name: str
    colours: str
    pattern: str
    ears: str
    snout: str
    build: str
    tail: str
    fur: str

    def traits(self) -> tuple[str, ...]:
        """The six codes after the colours, in field order."""
        return (self.pattern, self.ears, self.snout, self.build, self.tail, self.fur)


# name, then coat colour(s), pattern, ears, snout, build, tail, fur:
#   colour  k black, w white, g blue-grey, s silver-grey, r red, b liver, t fawn, c cream,
#           y golden (several letters: the dog takes one of them)
#   pattern S solid, T tan points, W white chest/paws/blaze, P white with patches of the colour,
#           D white with spots of the colour, A saddle of the colour on tan, M black mask,
#           B brindle, 3 hound tricolour (saddle of the colour, tan head, white legs and chest),
#           Z Swiss tricolour (the colour with tan points and a white chest), X mottled,
#           G ridge along the back
#   ears    E erect, K big erect (bat), F drop, L long pendulous, D button (folded forward),
#           R rose (folded back)
#   snout   s short (flat face), m medium, l long
#   build   c square, l long and low, t tall and lean (sighthound), h heavy, k toy (big head)
#   tail    c curled over the back, u up, d down, s docked stub, p plumed
#   fur     s smooth, w wiry (beard, brows, rough outline), l long (fringes), c curly,
#           f thick (ruff, bushy outline), h hairless (skin and a crest)
_SPECS: tuple[str, ...] = (
    "affenpinscher k S E s k s w", "afghan_hound c M L l t c l",
    "african_hunting_dog t X K m t d s", "airedale k A D l c u w",
    "american_staffordshire_terrier t W R m h d s", "appenzeller k Z D m c c s",
    "australian_terrier g T E m l u w", "basenji r W E m c c s", "basset k 3 L l l u s",
    "beagle k 3 L m c u s", "bedlington_terrier s S F l c d c",
    "bernese_mountain_dog k Z F m h d l", "black-and-tan_coonhound k T L l c d s",
    "blenheim_spaniel r P L s k p l", "bloodhound r S L l h d s", "bluetick k D L l c u s",
    "border_collie k W D m c d l", "border_terrier t S D m c u w", "borzoi t P R l t d l",
    "boston_bull k W K s k s s", "bouvier_des_flandres k S E m h s w", "boxer t M D s h s s",
    "brabancon_griffon r S E s k s s", "briard t S F m h d l", "brittany_spaniel r P F m c s s",
    "bull_mastiff t M D s h d s", "cairn t S E m l u w", "cardigan t B K m l d s",
    "chesapeake_bay_retriever b S F m c d c", "chihuahua t S K s k u s", "chow r S E s h c f",
    "clumber y P F m l d s", "cocker_spaniel y S L m c s l", "collie y W D l c d f",
    "curly-coated_retriever k S F m c d c", "dandie_dinmont s S L m l d l",
    "dhole r S K m c d f", "dingo y W E m c d s", "doberman k T E l t s s",
    "english_foxhound k 3 F m c u s", "english_setter k D F l c p l",
    "english_springer b P F m c s l", "entlebucher k Z D m c s s", "eskimo_dog k W E m c c f",
    "flat-coated_retriever k S F m c d l", "french_bulldog t S K s h s s",
    "german_shepherd k A E l c d s", "german_short-haired_pointer b D F l c s s",
    "giant_schnauzer k S D l c s w", "golden_retriever y S F m c d l",
    "gordon_setter k T F l c p l", "great_dane t M F l t d s", "great_pyrenees w S F m h d f",
    "greater_swiss_mountain_dog k Z F m h d s", "groenendael k S E l c d l",
    "ibizan_hound r W K l t d s", "irish_setter r S F l c p l", "irish_terrier r S D m c u w",
    "irish_water_spaniel b S L m c d c", "irish_wolfhound s S R l t d w",
    "italian_greyhound g W R l k d s", "japanese_spaniel k P F s k p l",
    "keeshond s M E m c c f", "kelpie r S E m c d s", "kerry_blue_terrier g S D l c u c",
    "komondor w S F m h d c", "kuvasz w S D m c d f", "labrador_retriever ykb S F m c d s",
    "lakeland_terrier k A D m c u w", "leonberg y M F m h d f", "lhasa c S F s l p l",
    "malamute g W E m h c f", "malinois t M E l c d s", "maltese_dog w S F s k p l",
    "mexican_hairless k S K m c d h", "miniature_pinscher k T E m k s s",
    "miniature_poodle sk S F l c u c", "miniature_schnauzer s S D l k s w",
    "newfoundland k S F m h d f", "norfolk_terrier r S D m l u w",
    "norwegian_elkhound g S E m c c f", "norwich_terrier r S E m l u w",
    "old_english_sheepdog g W F m h s l", "otterhound t S L l h d w", "papillon k P K m k p l",
    "pekinese y S F s l p f", "pembroke r W K m l s s", "pomeranian r S E s k c f",
    "pug t M R s k c s", "redbone r S L l c u s", "rhodesian_ridgeback t G F m c d s",
    "rottweiler k T F m h s s", "saint_bernard r P F m h d f", "saluki c S L l t d l",
    "samoyed w S E m c c f", "schipperke k S E m k s f", "scotch_terrier k S E l l u w",
    "scottish_deerhound g S R l t d w", "sealyham_terrier w S D m l u w",
    "shetland_sheepdog y W D l k d f", "shih-tzu y P F s k p l", "siberian_husky g W E m c c f",
    "silky_terrier g T E m l u l", "soft-coated_wheaten_terrier c S D m c u l",
    "staffordshire_bullterrier r B R m c d s", "standard_poodle wk S F l t u c",
    "standard_schnauzer s S D l c s w", "sussex_spaniel b S L m l d l",
    "tibetan_mastiff k T F m h c f", "tibetan_terrier c S F m c c l",
    "toy_poodle tb S F l k u c", "toy_terrier k T K m k u s", "vizsla r S F m c s s",
    "walker_hound k 3 F m t u s", "weimaraner s S F l c s s",
    "welsh_springer_spaniel r P F m c s l", "west_highland_white_terrier w S E m l u w",
    "whippet t W R l t d s", "wire-haired_fox_terrier t P D l c u w",
    "yorkshire_terrier g T E s k s l",
)

_COATS: MappingProxyType[str, draw.Color] = MappingProxyType({
    "k": (34, 31, 30), "w": (236, 232, 222), "g": (98, 106, 120), "s": (165, 165, 160),
    "r": (168, 80, 38), "b": (100, 60, 38), "t": (198, 152, 100), "c": (228, 210, 172),
    "y": (214, 160, 72),
})
_CODES: MappingProxyType[str, str] = MappingProxyType({
    "pattern": "STWPDAMB3ZXG", "ears": "EKFLDR", "snout": "sml", "build": "clthk",
    "tail": "cudsp", "fur": "swlcfh",
})


def _parse(spec: str) -> Breed:
    name, colours, *codes = spec.split()
    fields = dict(zip(_CODES, codes, strict=True))
    for field, code in fields.items():
        if code not in _CODES[field]:
            raise InputError(f"breed {name}: {field} must be one of {_CODES[field]}; "
                             f"received {field}={code!r}")
    if not colours or any(c not in _COATS for c in colours):
        raise InputError(f"breed {name}: colours must be letters of {''.join(_COATS)}; "
                         f"received colours={colours!r}")
    return Breed(name=name, colours=colours, **fields)


#: The 120 breeds, in submission column order (alphabetical), with their traits.
BREEDS: tuple[Breed, ...] = tuple(_parse(spec) for spec in _SPECS)
CLASSES: tuple[str, ...] = tuple(breed.name for breed in BREEDS)


@dataclass(frozen=True, kw_only=True)
class DemoPreset:
    """Size of a generated dataset.

    Attributes:
        n_train: Training images.
        n_test: Test images, breeds in proportion to the training weights, in random order.
        min_per_breed: Training images every breed gets at least (the demo recipe's folds need
            that many); the rest follow uneven weights spanning `REAL_COUNTS`.
        scale: Multiplies `SIZE_RANGE`.
    """

    n_train: int
    n_test: int
    min_per_breed: int
    scale: float


PRESETS = MappingProxyType({
    "full": DemoPreset(n_train=720, n_test=240, min_per_breed=5, scale=1.0),
    "tiny": DemoPreset(n_train=400, n_test=120, min_per_breed=3, scale=0.3),
})

#: The demo base's pretraining: 120 breeds need more images and epochs than the default.
PRETRAIN = MappingProxyType({
    "full": PretrainConfig(n_images=3600, epochs=10),
    "tiny": PretrainConfig(n_images=1200, epochs=3),
})

# Keys that separate the random streams derived from one seed.
_TAG_PLAN, _TAG_IMAGE, _TAG_CORPUS, _TAG_IDS = 31, 32, 33, 34
_SPLITS = ("train", "test")


def generate(out: Path, *, seed: int = 0, preset: str = "full") -> DemoSummary:
    """Writes a synthetic Dog Breed Identification dataset (see the module docstring).

    Args:
        out: Folder to write into; created if missing, must be empty if it exists.
        seed: Non-negative int; the files are a pure function of ``(seed, preset)``.
        preset: A name in `PRESETS` ("full": 720 train, 240 test; "tiny": 400 train, 120 test
            at 0.3 scale).

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
    labels = _labels(plan, config)
    ids = _hex_ids(child_rng(seed, _TAG_IDS), sum(len(v) for v in labels))
    lo, hi = (max(32, math.floor(v * config.scale + 0.5)) for v in SIZE_RANGE)
    rows = []
    for s, split in enumerate(_SPLITS):
        (out / split).mkdir()
        split_ids = ids[: len(labels[s])] if s == 0 else ids[len(labels[0]):]
        for i, (image_id, cls) in enumerate(zip(split_ids, labels[s], strict=True)):
            rng = child_rng(seed, _TAG_IMAGE, s, i)
            rows.append(_write_image(out, split, image_id, int(cls), (lo, hi), rng))
    meta = pd.DataFrame(rows)
    _write_tables(out, meta, plan)
    return DemoSummary(
        root=out, classes=CLASSES, n_train=config.n_train,
        n_test=MappingProxyType({"test": config.n_test}), solution=out / "solution.csv",
        meta=out / "demo_meta.csv",
    )


def _labels(plan: np.random.Generator, config: DemoPreset) -> tuple[np.ndarray, np.ndarray]:
    """Train and test breed indexes: uneven counts (a floor, then weights), shuffled."""
    k = len(CLASSES)
    weights = plan.permutation(np.linspace(*REAL_COUNTS, k))
    extra = largest_remainder(config.n_train - k * config.min_per_breed,
                              weights - REAL_COUNTS[0] + 1)
    train = np.repeat(np.arange(k), np.add(extra, config.min_per_breed))
    test = np.repeat(np.arange(k), largest_remainder(config.n_test, weights))
    return plan.permutation(train), plan.permutation(test)


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct ids of 32 lowercase hex digits, like Kaggle's file names."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        image_id = rng.bytes(16).hex()
        if image_id not in seen:
            seen.add(image_id)
            ids.append(image_id)
    return ids


def _write_image(out: Path, split: str, image_id: str, cls: int, size_range: tuple[int, int],
                 rng: np.random.Generator) -> dict:
    """Draws and writes one image at a random size (independent of `cls`); its meta row."""
    size = (int(rng.integers(size_range[0], size_range[1] + 1)),
            int(rng.integers(size_range[0], size_range[1] + 1)))
    img, facts = _render(cls, size, rng)
    rel = Path(split, f"{image_id}.jpg")
    (out / rel).write_bytes(encode_jpeg(img))
    return {"path": rel.as_posix(), "split": split, "label": CLASSES[cls], "id": image_id,
            "width": size[0], "height": size[1], **facts}


def _write_tables(out: Path, meta: pd.DataFrame, plan: np.random.Generator) -> None:
    """labels.csv (random row order), sample_submission.csv and solution.csv (sorted by id)."""
    train = meta[meta["split"] == "train"]
    order = plan.permutation(len(train))
    write_csv(pd.DataFrame({"id": train["id"].to_numpy()[order],
                            "breed": train["label"].to_numpy()[order]}), out / "labels.csv")
    test = meta[meta["split"] == "test"].sort_values("id")
    ids = test["id"].to_numpy()
    uniform = np.full((len(test), len(CLASSES)), 1.0 / len(CLASSES))
    write_csv(_submission_frame(ids, uniform), out / "sample_submission.csv")
    onehot = (test["label"].to_numpy()[:, None] == np.array(CLASSES)[None]).astype(np.int64)
    public = np.zeros(len(test), dtype=bool)
    public[plan.permutation(len(test))[: round(PUBLIC_FRACTION * len(test))]] = True
    solution = _submission_frame(ids, onehot)
    solution["Usage"] = np.where(public, "Public", "Private")
    write_csv(solution, out / "solution.csv")
    write_csv(meta, out / "demo_meta.csv")


def _submission_frame(ids: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """`id`, then one column per breed in `CLASSES` order."""
    frame = pd.DataFrame(values, columns=list(CLASSES))
    frame.insert(0, "id", ids)
    return frame


def corpus(n: int, *, seed: int, size: tuple[int, int]) -> Corpus:
    """A balanced in-memory pretraining set of the 120 breeds from its own random stream.

    Other dogs on other scenes than any demo dataset's: drawn at a reduced random size (each
    side 96-192 px) and resized to `size` with ``cv2.INTER_AREA``.

    Args:
        n: Number of images; breed counts differ by at most one.
        seed: Non-negative int.
        size: Output ``(width, height)``.

    Returns:
        A `Corpus` with ``images`` ``(n, height, width, 3)`` uint8 RGB and int64 ``labels``.

    Raises:
        InputError: On a non-positive `n`, a bad `size` or a negative `seed`.
    """
    def draw(seed: int, label: int, i: int) -> np.ndarray:
        r = child_rng(seed, _TAG_CORPUS, i)
        return _render(label, (int(r.integers(96, 193)), int(r.integers(96, 193))), r)[0]

    return balanced_corpus(n, seed=seed, size=size, tag=_TAG_CORPUS, classes=CLASSES,
                           draw=draw)


# ---------------------------------------------------------------------------------------------
# Rendering: a scene, then one dog in profile drawn in a local frame (facing right, y down,
# unit = half the body's length) onto its own canvas and mask, composited onto the scene.

_Part = tuple[np.ndarray, draw.Color, float, bool]  # points, colour, line width (0: fill), solid
_BLACK: draw.Color = (0, 0, 0)
_WHITE: draw.Color = (240, 238, 232)
_TAN: draw.Color = (190, 120, 60)
_SCENES = ("grass", "room", "snow", "sand", "studio", "pavement")


def _render(cls: int, size: tuple[int, int], rng: np.random.Generator
            ) -> tuple[np.ndarray, dict]:
    """An RGB image of one dog of breed `cls`, and facts for ``demo_meta.csv``."""
    w, h = size
    scene = _SCENES[int(rng.integers(len(_SCENES)))]
    img = _background(scene, w, h, rng)
    parts = _dog(BREEDS[cls], rng)
    facing = "right" if rng.random() < 0.5 else "left"
    canvas, mask = _rasterise(parts, rng, (w, h))
    if facing == "left":
        canvas, mask = canvas[:, ::-1], mask[:, ::-1]
    _paste(img, canvas, mask, rng)
    img = _camera(img, rng)
    return img, {"facing": facing, "scene": scene}


def _rasterise(parts: list[_Part], rng: np.random.Generator, size: tuple[int, int]
               ) -> tuple[np.ndarray, np.ndarray]:
    """The dog's RGB canvas and 0-255 mask, scaled to a random share of the image."""
    angle = np.deg2rad(rng.uniform(-8, 8))
    turned = [(draw.transform(p, scale=1.0, angle=angle, offset=(0, 0)), c, wd, s)
              for p, c, wd, s in parts]
    solid = np.concatenate([p for p, _, _, s in turned if s])
    lo, hi = solid.min(0) - 0.05, solid.max(0) + 0.05
    extent = hi - lo
    scale = rng.uniform(0.5, 0.92) * size[0] / extent[0]
    scale = min(scale, rng.uniform(0.6, 0.92) * size[1] / extent[1])
    cw, ch = (int(math.ceil(v * scale)) + 2 for v in extent)
    canvas = np.zeros((ch, cw, 3), np.uint8)
    mask = np.zeros((ch, cw), np.uint8)
    for pts, color, width, is_solid in turned:
        placed = (pts - lo) * scale + 1.0
        if width == 0.0:
            draw.fill(canvas, placed, color)
            if is_solid:
                draw.fill(mask, placed, (255, 255, 255))
        else:
            draw.polyline(canvas, placed, color, width * scale)
            if is_solid:
                draw.polyline(mask, placed, (255, 255, 255), width * scale)
    return canvas, mask


def _paste(img: np.ndarray, canvas: np.ndarray, mask: np.ndarray,
           rng: np.random.Generator) -> None:
    """Composites the dog at a random place, with a soft shadow under its feet."""
    h, w = img.shape[:2]
    ch, cw = mask.shape
    ch, cw = min(ch, h), min(cw, w)
    canvas, mask = canvas[:ch, :cw], mask[:ch, :cw]
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    feet = np.nonzero(mask.max(1) > 0)[0]
    ground = y0 + (int(feet[-1]) if len(feet) else ch - 1)
    shade = img.copy()
    cv2.ellipse(shade, (x0 + cw // 2, ground), (max(1, int(cw * 0.45)), max(1, ch // 14)), 0,
                0, 360, (0, 0, 0), -1, cv2.LINE_AA)
    cv2.addWeighted(shade, 0.25, img, 0.75, 0, dst=img)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    region = img[y0:y0 + ch, x0:x0 + cw].astype(np.float32)
    img[y0:y0 + ch, x0:x0 + cw] = (region * (1 - alpha) + canvas * alpha + 0.5).astype(np.uint8)


def _camera(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, colour cast, sometimes a little blur, and sensor noise."""
    gain = rng.uniform(0.8, 1.15) * rng.uniform(0.93, 1.07, 3)
    out = img.astype(np.float32) * gain.astype(np.float32)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    # Sensor noise: one small random tile repeated (drawing a value per pixel costs more
    # than the rest of the image).
    tile = rng.standard_normal((37, 41, 3), dtype=np.float32) * rng.uniform(1.0, 5.0)
    reps = (-(-out.shape[0] // 37), -(-out.shape[1] // 41), 1)
    out += np.tile(tile, reps)[: out.shape[0], : out.shape[1]]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _background(scene: str, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A scene at low resolution, upscaled, with a few props (bushes, toys, furniture)."""
    sw, sh = max(2, w // 4), max(2, h // 4)
    y = np.linspace(0, 1, sh, dtype=np.float32)[:, None, None]
    horizon = rng.uniform(0.2, 0.6)

    def tone(hue: tuple[float, float], sat: tuple[float, float],
             val: tuple[float, float]) -> np.ndarray:
        return np.asarray(draw.hsv(rng.uniform(*hue), rng.uniform(*sat), rng.uniform(*val)),
                          np.float32)

    grounds = {"grass": ((0.2, 0.34), (0.4, 0.8), (0.3, 0.7)), "room": ((0, 1), (0.1, 0.5),
               (0.3, 0.8)), "snow": ((0.55, 0.65), (0.0, 0.08), (0.85, 0.98)),
               "sand": ((0.08, 0.13), (0.2, 0.5), (0.6, 0.9)), "studio": ((0, 1), (0, 0.3),
               (0.4, 0.95)), "pavement": ((0, 1), (0, 0.08), (0.35, 0.7))}
    upper = (tone((0, 1), (0.05, 0.4), (0.5, 0.95)) if scene in ("room", "studio")
             else tone((0.55, 0.62), (0.15, 0.5), (0.75, 0.95)))
    lower = tone(*grounds[scene])
    if scene == "studio":
        img = upper * (1 - y) + lower * y
    else:
        img = np.where(y < horizon, upper * (0.9 + 0.15 * y), lower * (0.85 + 0.3 * y))
    noise = draw.value_noise(rng, sh, sw, int(rng.integers(4, 16)))[..., None]
    img = img * (1.0 + rng.uniform(0.05, 0.25) * noise) * np.ones((1, sw, 1), np.float32)
    out = cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (w, h),
                     interpolation=cv2.INTER_LINEAR)
    for _ in range(int(rng.integers(0, 4))):
        c = rng.uniform(0, 1, 2) * (w, h)
        half = rng.uniform(0.04, 0.18, 2) * min(w, h)
        color = draw.hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.9))
        draw.fill_ellipse(out, c, half, color, rng.uniform(0, 180))
    return out


# ---------------------------------------------------------------------------------------------
# The dog: a skeleton of named shapes from the build, snout, ears and tail; then colours from
# the coat pattern and overlays from the fur.

@dataclass(frozen=True, kw_only=True)
class _Build:
    length: float  # half the body's length
    depth: float  # half the body's depth
    leg: float
    leg_width: float
    head: float  # head radius
    neck: float
    tuck: float  # how much deeper the chest is than the loin
    tail: float  # tail length


_BUILDS: MappingProxyType[str, _Build] = MappingProxyType({
    "c": _Build(length=1.0, depth=0.42, leg=0.75, leg_width=0.16, head=0.40, neck=0.42,
                tuck=0.15, tail=0.75),
    "l": _Build(length=1.2, depth=0.40, leg=0.30, leg_width=0.17, head=0.40, neck=0.32,
                tuck=0.05, tail=0.7),
    "t": _Build(length=1.0, depth=0.36, leg=1.15, leg_width=0.10, head=0.31, neck=0.6,
                tuck=0.5, tail=0.95),
    "h": _Build(length=1.05, depth=0.58, leg=0.72, leg_width=0.25, head=0.52, neck=0.38,
                tuck=0.1, tail=0.7),
    "k": _Build(length=0.72, depth=0.34, leg=0.5, leg_width=0.10, head=0.55, neck=0.3,
                tuck=0.15, tail=0.6),
})
_SNOUTS = MappingProxyType({"s": (0.12, 0.62), "m": (0.5, 0.5), "l": (0.95, 0.4)})


@dataclass(frozen=True, kw_only=True)
class _Skeleton:
    """Shapes in the local frame, and the points and sizes the coat and fur are placed by."""

    body: np.ndarray
    neck: np.ndarray
    head: np.ndarray
    snout: np.ndarray
    ears: tuple[np.ndarray, ...]
    ears_over_head: bool
    legs: tuple[np.ndarray, ...]  # far front, far rear, near front, near rear
    feet: tuple[np.ndarray, ...]  # the same legs' lower halves
    tail: np.ndarray
    tail_spine: np.ndarray
    at: dict[str, np.ndarray]  # named points: head, eye, nose, chest, back, brow, chin, ...
    size: dict[str, float]  # length, depth, head, leg, leg_width, snout, snout_depth


def _dog(breed: Breed, rng: np.random.Generator) -> list[_Part]:
    """The parts of one dog of `breed`, in drawing order."""
    coat = _COATS[breed.colours[int(rng.integers(len(breed.colours)))]]
    coat = draw.scale_color(draw.jitter(rng, coat, 12), rng.uniform(0.88, 1.12))
    sk = _skeleton(breed, rng)
    colours = _coat_colours(breed.pattern, coat, rng)
    parts = _silhouette(sk, colours, breed.fur)
    parts += _pattern_paint(breed.pattern, sk, coat, rng)
    parts += _fur(breed.fur, sk, colours, rng)
    parts += _face(sk, colours, breed.build == "k")
    return parts


def _skeleton(breed: Breed, rng: np.random.Generator) -> _Skeleton:
    """The shapes of one dog: the breed's proportions, each jittered by up to 10 %."""
    b = _BUILDS[breed.build]
    j = rng.uniform(0.9, 1.1, 8)
    bl, bh, leg, lw, hr, neck = (b.length * j[0], b.depth * j[1], b.leg * j[2],
                                 b.leg_width * j[3], b.head * j[4], b.neck * j[5])
    snout_len, snout_depth = (v * hr * f for v, f in zip(_SNOUTS[breed.snout], j[6:8],
                                                          strict=True))
    head = np.array([bl * 0.88, -bh * 0.45 - neck])
    ground = bh + leg
    legs, feet = _legs(bl, bh, leg, lw, ground, rng)
    snout_c = head + (hr * 0.5 + snout_len * 0.5, hr * 0.25)
    snout_ax = (hr * 0.32 + snout_len * 0.5, snout_depth * 0.5)
    nose = snout_c + (snout_ax[0] * 0.88, -snout_depth * 0.22)
    ears, over = _ears(breed.ears, head, hr, rng)
    spine = _tail_spine(breed.tail, np.array([-bl * 0.9, -bh * 0.45]), b.tail * j[5], rng)
    thick = 0.12 * (1.6 if breed.tail == "p" else 1.0) * (1.4 if breed.build == "h" else 1.0)
    at = {"head": head, "eye": head + (hr * 0.4, -hr * 0.15), "nose": nose,
          "chest": np.array([bl * 0.8, bh * 0.1]), "back": np.array([-bl * 0.05, -bh * 0.6]),
          "brow": head + (hr * 0.38, -hr * 0.42), "chin": snout_c + (snout_ax[0] * 0.4,
                                                                     snout_ax[1] * 0.9),
          "snout": snout_c, "ground": np.array([0.0, ground])}
    return _Skeleton(
        body=_body(bl, bh, b.tuck), neck=_neck(bl, bh, head, hr),
        head=draw.ellipse_points(head, (hr, hr * 0.86)),
        snout=draw.ellipse_points(snout_c, snout_ax), ears=ears, ears_over_head=over,
        legs=legs, feet=feet, tail=_stroke(spine, thick, thick * 0.45), tail_spine=spine, at=at,
        size={"length": bl, "depth": bh, "head": hr, "leg": leg, "leg_width": lw,
              "snout": snout_len, "snout_depth": snout_depth, "tail": thick})


def _body(bl: float, bh: float, tuck: float, n: int = 40) -> np.ndarray:
    """An ellipse whose underside is deeper at the chest (front, +x) than at the loin."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = bl * np.cos(t), bh * np.sin(t)
    y = np.where(y > 0, y * (1 + tuck * np.cos(t)), y)
    return np.stack([x, y], axis=1)


def _neck(bl: float, bh: float, head: np.ndarray, hr: float) -> np.ndarray:
    """A quadrilateral from the withers and chest up to the head."""
    return np.array([(bl * 0.3, -bh * 0.8), (head[0] - hr * 0.75, head[1] + hr * 0.1),
                     (head[0] + hr * 0.35, head[1] + hr * 0.7), (bl * 1.02, bh * 0.05)])


def _legs(bl: float, bh: float, leg: float, lw: float, ground: float,
          rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Four tapered legs (far pair first) and their lower halves, in a random stride."""
    legs, feet = [], []
    stride = rng.uniform(0.0, 0.25)
    for side in (-1, 1):  # far, near
        for front in (True, False):
            x = bl * (0.62 if front else -0.62) + side * stride * (1 if front else -1) * 0.5
            top = np.array([x, bh * 0.1])
            if front:
                spine = np.array([top, (x + 0.02, bh + leg * 0.5), (x + 0.04, ground)])
                widths = (lw * 1.3, lw * 0.85)
            else:
                spine = np.array([top, (x - 0.14, bh + leg * 0.45), (x - 0.02, ground)])
                widths = (lw * 1.9, lw * 0.85)
            legs.append(_stroke(_bezier(spine), *widths))
            foot = np.array([(spine[2][0], ground - leg * 0.45), spine[2]])
            feet.append(_stroke(foot, lw * 1.0, lw * 0.95))
    return tuple(legs), tuple(feet)


def _ears(kind: str, head: np.ndarray, hr: float, rng: np.random.Generator
          ) -> tuple[tuple[np.ndarray, ...], bool]:
    """Ear shapes (one visible ear, plus the far one peeking for erect ears) and whether they
    hang over the head."""
    a = head + (-hr * 0.25, -hr * 0.62)
    lift = rng.uniform(-0.08, 0.08) * hr
    if kind in "EK":
        tall, wide = (0.95, 0.34) if kind == "E" else (1.35, 0.5)
        tip = a + (rng.uniform(-0.1, 0.05) * hr, -tall * hr + lift)
        ear = np.array([a + (-wide * hr, hr * 0.2), tip, a + (wide * hr, hr * 0.15)])
        if kind == "K":
            ear = _bezier(np.array([ear[0], tip + (-wide * hr, 0), tip, tip + (wide * hr * 0.6, 0),
                                    ear[2]]), n=16)
        return (ear + (hr * 0.22, 0), ear), False
    if kind in "FL":
        length = (0.62 if kind == "F" else 1.05) * hr
        c = a + (-hr * 0.12, length * 0.85 + lift)
        return (draw.ellipse_points(c, (hr * 0.3, length), 12 + rng.uniform(-6, 6)),), True
    if kind == "D":
        return (np.array([a + (-hr * 0.3, hr * 0.05), a + (hr * 0.05, -hr * 0.32 + lift),
                          a + (hr * 0.48, hr * 0.3)]),), True
    return (np.array([a + (-hr * 0.05, hr * 0.05), a + (-hr * 0.62, -hr * 0.12 + lift),
                      a + (-hr * 0.35, hr * 0.35)]),), True  # rose


def _tail_spine(kind: str, root: np.ndarray, length: float, rng: np.random.Generator
                ) -> np.ndarray:
    """The tail's centre line from `root`: a curl, a Bezier up, down, a stub or a plume."""
    wobble = rng.uniform(-0.08, 0.08, 2)
    if kind == "c":
        centre = root + np.array([0.12, -0.3]) * length
        start = math.atan2(root[1] - centre[1], root[0] - centre[0])
        turn = np.linspace(start, start + np.deg2rad(rng.uniform(260, 320)), 14)
        return centre + 0.32 * length * np.stack([np.cos(turn), np.sin(turn)], axis=1)
    controls = {
        "u": ((-0.35, -0.2), (-0.32, -0.75)),
        "d": ((-0.3, 0.1), (-0.25, 0.75)),
        "s": ((-0.08, -0.05), (-0.16, -0.12)),
        "p": ((-0.15, -0.65), (0.35, -0.6)),
    }[kind]
    mid, end = (root + (np.array(p) + wobble) * length for p in controls)
    return _bezier(np.array([root, mid, end]))


def _bezier(controls: np.ndarray, n: int = 10) -> np.ndarray:
    """Points on the Bezier curve of `controls` (de Casteljau)."""
    t = np.linspace(0.0, 1.0, n)[:, None, None]
    pts = np.broadcast_to(controls, (n, *controls.shape)).astype(np.float64)
    while pts.shape[1] > 1:
        pts = pts[:, :-1] * (1 - t) + pts[:, 1:] * t
    return pts[:, 0]


def _stroke(spine: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """A polygon around `spine` whose width tapers from `w0` to `w1`."""
    spine = np.asarray(spine, np.float64)
    tangent = np.gradient(spine, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    half = np.linspace(w0, w1, len(spine))[:, None] / 2
    return np.concatenate([spine + normal * half, (spine - normal * half)[::-1]])


# ---------------------------------------------------------------------------------------------
# Colours and overlays.

_Colours = dict[str, draw.Color]  # body, head, legs, feet, ears, tail, muzzle, far, eye


def _coat_colours(pattern: str, coat: draw.Color, rng: np.random.Generator) -> _Colours:
    """The colour of each region for a coat `pattern` whose main colour is `coat`."""
    tan = draw.jitter(rng, _TAN, 14)
    white = draw.jitter(rng, _WHITE, 6)
    c = dict.fromkeys(("body", "head", "legs", "feet", "ears", "tail", "muzzle"), coat)
    if pattern == "T":
        c.update(feet=tan, muzzle=tan)
    elif pattern == "W":
        c.update(feet=white)
    elif pattern in "PD":
        c.update(body=white, legs=white, feet=white, tail=white, muzzle=white)
    elif pattern == "A":
        c.update(head=tan, legs=tan, feet=tan, muzzle=tan, ears=tan)
    elif pattern == "M":
        dark = draw.blend(coat, _BLACK, 0.8)
        c.update(muzzle=dark, ears=dark)
    elif pattern == "3":
        c.update(body=tan, head=tan, ears=tan, legs=white, feet=white, muzzle=white)
    elif pattern == "Z":
        c.update(legs=coat, feet=tan, muzzle=white)
    c["far"] = draw.blend(c["legs"], _BLACK, 0.3)
    c["farfeet"] = draw.blend(c["feet"], _BLACK, 0.3)
    c["eye"] = (28, 18, 12)
    return c


def _silhouette(sk: _Skeleton, c: _Colours, fur: str) -> list[_Part]:
    """Tail, legs, body, neck, head, snout and ears, back to front."""
    parts: list[_Part] = [(sk.tail, c["tail"], 0.0, True)]
    parts += [(leg, c["far"], 0.0, True) for leg in sk.legs[:2]]
    parts += [(foot, c["farfeet"], 0.0, True) for foot in sk.feet[:2]]
    if fur == "f":  # a thick coat widens the whole outline
        grow = 1.0 + 0.12
        for shape, key in ((sk.body, "body"), (sk.head, "head")):
            centre = shape.mean(0)
            parts.append(((shape - centre) * grow + centre, c[key], 0.0, True))
    parts += [(sk.body, c["body"], 0.0, True), (sk.neck, c["body"], 0.0, True)]
    parts += [(leg, c["legs"], 0.0, True) for leg in sk.legs[2:]]
    parts += [(foot, c["feet"], 0.0, True) for foot in sk.feet[2:]]
    ears = [(ear, c["ears"], 0.0, True) for ear in sk.ears]
    if len(ears) == 2:  # the far erect ear, darker, behind the head
        ears[0] = (ears[0][0], draw.blend(c["ears"], _BLACK, 0.3), 0.0, True)
    if not sk.ears_over_head:
        parts += ears
    parts += [(sk.head, c["head"], 0.0, True), (sk.snout, c["muzzle"], 0.0, True)]
    if sk.ears_over_head:
        parts += ears
    return parts


def _pattern_paint(pattern: str, sk: _Skeleton, coat: draw.Color,
                   rng: np.random.Generator) -> list[_Part]:
    """Overlays of a coat pattern: chests, blazes, patches, spots, saddles, stripes."""
    s, at = sk.size, sk.at
    bl, bh, hr = s["length"], s["depth"], s["head"]
    tan = draw.jitter(rng, _TAN, 14)
    white = draw.jitter(rng, _WHITE, 6)
    chest = (draw.ellipse_points(at["chest"], (bl * 0.22, bh * 0.6), -20), white, 0.0, False)
    blaze = (_stroke(np.array([at["nose"] - (hr * 0.2, 0), at["brow"] - (hr * 0.1, hr * 0.25)]),
                     hr * 0.22, hr * 0.12), white, 0.0, False)
    brows = (draw.ellipse_points(at["brow"], (hr * 0.12, hr * 0.08)), tan, 0.0, False)
    if pattern == "T":
        return [(draw.ellipse_points(at["chest"], (bl * 0.18, bh * 0.45)), tan, 0.0, False),
                brows]
    if pattern == "W":
        tip = sk.tail_spine[-3:]
        return [chest, blaze, (_stroke(tip, s["tail"], s["tail"]), white, 0.0, False)]
    if pattern == "P":
        return [_patch(rng, sk, coat) for _ in range(int(rng.integers(2, 4)))] + [blaze]
    if pattern == "D":
        return _spots(rng, sk, coat) + [blaze]
    if pattern in "A3":
        saddle = draw.ellipse_points(at["back"], (bl * 0.78, bh * 0.62))
        extra = [chest, blaze] if pattern == "3" else []
        return [(saddle, coat, 0.0, False), *extra]
    if pattern == "Z":
        return [chest, blaze, brows,
                (draw.ellipse_points(at["snout"] - (hr * 0.3, -hr * 0.1), (hr * 0.3, hr * 0.22)),
                 tan, 0.0, False)]
    if pattern == "B":
        return _stripes(rng, sk, draw.blend(coat, _BLACK, 0.55))
    if pattern == "X":
        colours = ((30, 26, 24), _WHITE, (150, 110, 60))
        return [_patch(rng, sk, colours[i % 3]) for i in range(int(rng.integers(6, 10)))]
    if pattern == "G":
        ridge = _stroke(np.array([at["back"] + (-bl * 0.5, -bh * 0.25),
                                  at["back"] + (bl * 0.5, -bh * 0.3)]), bh * 0.16, bh * 0.08)
        return [(ridge, draw.blend(coat, _BLACK, 0.5), 0.0, False)]
    return []  # solid; M is all in the region colours


def _patch(rng: np.random.Generator, sk: _Skeleton, color: draw.Color) -> _Part:
    """One large patch of `color` somewhere on the body."""
    bl, bh = sk.size["length"], sk.size["depth"]
    centre = (rng.uniform(-0.8, 0.7) * bl, rng.uniform(-0.7, 0.3) * bh)
    axes = rng.uniform(0.25, 0.45) * bl, rng.uniform(0.35, 0.7) * bh
    return draw.ellipse_points(centre, axes, rng.uniform(0, 180), n=16), color, 0.0, False


def _spots(rng: np.random.Generator, sk: _Skeleton, color: draw.Color) -> list[_Part]:
    """18-29 small round spots over the body."""
    bl, bh = sk.size["length"], sk.size["depth"]
    n = int(rng.integers(18, 30))
    xs, ys = rng.uniform(-1, 1, n) * bl, rng.uniform(-0.9, 0.9, n) * bh
    radius = rng.uniform(0.04, 0.09, n)
    return [(draw.ellipse_points((x, y), (r, r), n=8), color, 0.0, False)
            for x, y, r in zip(xs, ys, radius, strict=True)]


def _stripes(rng: np.random.Generator, sk: _Skeleton, color: draw.Color) -> list[_Part]:
    """Brindle: 8-11 roughly vertical dark stripes across the body."""
    bl, bh = sk.size["length"], sk.size["depth"]
    parts: list[_Part] = []
    for x in np.linspace(-bl, bl, int(rng.integers(8, 12))):
        tilt = rng.uniform(-0.2, 0.2)
        parts.append((np.array([(x + tilt, -bh * 1.1), (x - tilt, bh * 1.2)]), color,
                      bl * 0.05, False))
    return parts


def _fur(fur: str, sk: _Skeleton, c: _Colours, rng: np.random.Generator) -> list[_Part]:
    """Wiry beards and brows, long fringes, curls, ruffs and crests."""
    s, at = sk.size, sk.at
    bl, bh, hr = s["length"], s["depth"], s["head"]
    if fur == "w":
        beard = draw.ellipse_points(at["chin"], (s["snout"] * 0.4 + hr * 0.2, hr * 0.3), -10)
        brows = _stroke(np.array([at["brow"] - (hr * 0.15, 0), at["brow"] + (hr * 0.3, -0.02)]),
                        hr * 0.14, hr * 0.08)
        light = draw.blend(c["muzzle"], _WHITE, 0.35)
        return [(beard, c["muzzle"], 0.0, True), (brows, light, 0.0, True),
                *_tufts(rng, sk.body[sk.body[:, 1] < 0], bl * 0.1, c["body"], 10)]
    if fur == "l":
        belly = sk.body[sk.body[:, 1] > bh * 0.3]
        fringe = _tufts(rng, belly, bh * 0.5, c["body"], 14, down=True)
        tail = _tufts(rng, sk.tail_spine, s["tail"] * 2.5, c["tail"], 8, down=True)
        ears = [(_fringe_ear(e), c["ears"], 0.0, True) for e in sk.ears if sk.ears_over_head]
        return fringe + tail + ears
    if fur == "c":
        curls = []
        for shape, key in ((sk.body, "body"), (sk.head, "head")):
            for p in shape[::3]:
                r = rng.uniform(0.06, 0.1)
                curls.append((draw.ellipse_points(p, (r, r), n=10), c[key], 0.0, True))
        top = at["head"] + (-hr * 0.1, -hr * 0.8)
        shade = draw.blend(c["body"], _WHITE, 0.2)
        return curls + [(draw.ellipse_points(top, (hr * 0.55, hr * 0.4)), c["head"], 0.0, True),
                        *_curl_texture(rng, sk, shade)]
    if fur == "f":
        ruff = draw.ellipse_points(at["head"] + (-hr * 0.5, hr * 0.9), (hr * 0.9, hr * 1.1), 20)
        tail = _stroke(sk.tail_spine, s["tail"] * 2.4, s["tail"] * 1.4)
        return [(tail, c["tail"], 0.0, True), (ruff, c["body"], 0.0, True)]
    if fur == "h":
        crest = draw.ellipse_points(at["head"] + (-hr * 0.2, -hr * 0.85), (hr * 0.45, hr * 0.2))
        skin = (128, 108, 100)
        return [(crest, (225, 220, 210), 0.0, True), *_spots(rng, sk, skin)[:8]]
    return []


def _tufts(rng: np.random.Generator, edge: np.ndarray, length: float, color: draw.Color,
           n: int, *, down: bool = False) -> list[_Part]:
    """Short strands of fur along `edge`, sticking out (or hanging down)."""
    if len(edge) == 0:
        return []
    centre = edge.mean(0)
    parts: list[_Part] = []
    for k in rng.integers(0, len(edge), n):
        p = edge[k]
        direction = np.array([rng.uniform(-0.3, 0.3), 1.0]) if down else p - centre
        direction = direction / max(float(np.linalg.norm(direction)), 1e-9)
        tip = p + direction * length * rng.uniform(0.6, 1.0)
        parts.append((np.array([p, tip]), color, length * 0.35, True))
    return parts


def _fringe_ear(ear: np.ndarray) -> np.ndarray:
    """A longer, wider ear: long fur hangs from the leather."""
    centre = ear.mean(0)
    return (ear - centre) * (1.15, 1.3) + centre + (0, (ear[:, 1].max() - centre[1]) * 0.25)


def _curl_texture(rng: np.random.Generator, sk: _Skeleton, color: draw.Color) -> list[_Part]:
    """Small lighter rings over the body."""
    bl, bh = sk.size["length"], sk.size["depth"]
    xs, ys = rng.uniform(-0.9, 0.9, 24) * bl, rng.uniform(-0.8, 0.8, 24) * bh
    return [(draw.ellipse_points((x, y), (0.05, 0.05), n=8), color, 0.012, False)
            for x, y in zip(xs, ys, strict=True)]


def _face(sk: _Skeleton, c: _Colours, toy: bool) -> list[_Part]:
    """Eye, nose and mouth, drawn last."""
    hr = sk.size["head"]
    r = hr * (0.15 if toy else 0.11)
    eye = sk.at["eye"]
    nose = sk.at["nose"]
    mouth = np.array([nose + (-hr * 0.05, hr * 0.1),
                      sk.at["snout"] + (-hr * 0.3, sk.size["snout_depth"] * 0.3)])
    return [(draw.ellipse_points(eye, (r, r), n=14), c["eye"], 0.0, False),
            (draw.ellipse_points(eye + (r * 0.3, -r * 0.3), (r * 0.3, r * 0.3), n=8), _WHITE, 0.0,
             False),
            (draw.ellipse_points(nose, (hr * 0.13, hr * 0.1), n=12), (20, 16, 16), 0.0, True),
            (mouth, (30, 20, 20), hr * 0.04, False)]
