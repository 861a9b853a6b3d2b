"""Near-duplicates: the same picture twice, after resizing, recompression or a brightness change.

Two stages, both thresholds measured on the dataset itself rather than fixed:

1. Candidates: pairs whose 64-bit perceptual hashes (``imagehash.phash``) differ in at most
   ``hash_bound`` bits.
2. Verification: the root-mean-square difference of the two standardised 32x32 grayscale
   thumbnails (:mod:`kit.probes.imagestats`; standardising cancels brightness and contrast)
   is at most ``pixel_bound``.

The bounds come from a simulation: ``n_copies`` images of the dataset (seeded) are copied the
way duplicates arise (:class:`CopyModel`: downscaled, JPEG-recompressed, brightened or darkened)
and each copy is compared with its original. Each bound is a distribution-free upper confidence
bound (:func:`kit.probes.stats.quantile_upper_bound`) at level ``1 - alpha`` of the `recall`
quantile of those copy-to-original distances: with that confidence, at least `recall` of such
copies are caught. Distinct photos of one scene (the same empty deck under different light) sit
well above the pixel bound; the false-alarm rate on freshly generated clean datasets is tested.

Pairs are sorted into within-train, within-test and cross-split (train/test, which is leakage).

Within-train pairs are joined into clusters (union-find, :func:`duplicate_clusters`). A
stratified split puts members of one cluster into different folds (:func:`cluster_spread`
counts the training images it does that to), and a model then validates on images it has
practically trained on. What that does to the CV is measured, not assumed: the run's own head
(else the probes' logistic regression) scored with stratified folds and with folds that keep each
cluster whole (:mod:`kit.probes.cvgap`, clusters as the resampling unit). LEAK when that
optimism is significant; the fix is ``run --folds auto``, which keeps each cluster in one fold
(the probe writes the clusters to ``clusters.csv``). The groups probe also merges each pair into
one group, so ``run --folds group`` keeps them together too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from kit.core.errors import InputError
from kit.data.images import UnreadableImageError, load_image
from kit.probes.cvgap import PROBE_MODEL_HINT, RUN_HEAD, CVComparison
from kit.probes.imagestats import DRAFT, gray_thumbnail, perceptual_hash
from kit.probes.settings import ProbeSettings
from kit.probes.stats import check_level, quantile_upper_bound

__all__ = [
    "ClusterSpread",
    "CopyModel",
    "DuplicatePair",
    "DuplicatesResult",
    "Thresholds",
    "calibrate",
    "candidate_pairs",
    "cluster_spread",
    "duplicate_clusters",
    "find_duplicates",
    "hamming",
    "make_copy",
    "pixel_distance",
]

HASH_BITS = 64
RECALL = 0.98
N_COPIES = 400
#: Originals are copied from a decode at least this large, then the copy is decoded at the
#: probe's own draft scale, as a full-size duplicate file would be.
COPY_SOURCE_DRAFT: tuple[int, int] = (4 * DRAFT[0], 4 * DRAFT[1])
_CHUNK = 512
_TRAIN = "train"
#: The fixes the duplicates probe names.
TRAIN_FIX = "`run --folds auto` keeps duplicate clusters together"
CROSS_SPLIT_FIX = ("no choice of folds: the test images copy training images (pairs listed); "
                   "judge the model on the others")


@dataclass(frozen=True, kw_only=True)
class CopyModel:
    """How a near-duplicate is made from an original (each drawn uniformly per copy).

    Attributes:
        scale: Range of the downscaling factor of both sides.
        quality: Range of the JPEG quality of the re-encoding.
        gain: Range of the brightness gain (pixel values multiplied).
        offset: Range of the brightness offset (added, in 0-255 units).
    """

    scale: tuple[float, float] = (0.5, 1.0)
    quality: tuple[int, int] = (60, 95)
    gain: tuple[float, float] = (0.9, 1.1)
    offset: tuple[float, float] = (-10.0, 10.0)

    def __post_init__(self) -> None:
        for name in ("scale", "quality", "gain", "offset"):
            low, high = getattr(self, name)
            if low > high:
                raise InputError(f"{name} must be a (low, high) range; received {name}={(low, high)}.")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise InputError(f"scale must lie in (0, 1]; received scale={self.scale}.")
        if not 1 <= self.quality[0] <= self.quality[1] <= 100:
            raise InputError(f"quality must lie in [1, 100]; received quality={self.quality}.")


def make_copy(image: np.ndarray, rng: np.random.Generator, model: CopyModel) -> np.ndarray:
    """A near-duplicate of an HxWx3 uint8 RGB image, drawn from `model` (resize, light, JPEG)."""
    h, w = image.shape[:2]
    s = rng.uniform(*model.scale)
    size = (max(8, round(w * s)), max(8, round(h * s)))
    out = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    out = out.astype(np.float32) * rng.uniform(*model.gain) + rng.uniform(*model.offset)
    out = np.clip(out, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(out).save(buffer, format="JPEG",
                              quality=int(rng.integers(model.quality[0], model.quality[1] + 1)))
    buffer.seek(0)
    with Image.open(buffer) as img:
        img.draft("RGB", DRAFT)
        return np.asarray(img.convert("RGB"))


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def pixel_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Root-mean-square difference of standardised thumbnails, row by row (last axis)."""
    return np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2, axis=-1))


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Detection bounds measured by :func:`calibrate`, and the copy distances behind them."""

    hash_bound: int
    pixel_bound: float
    recall: float
    level: float
    n_copies: int
    copy_hash_max: int
    copy_pixel_max: float

    def to_dict(self) -> dict:
        return asdict(self)


def _original(file: Path) -> tuple[np.ndarray, np.uint64, np.ndarray] | None:
    """An original for copying (decoded at `COPY_SOURCE_DRAFT`) and its own hash and thumbnail
    as the probe computes them (at `DRAFT`); None when unreadable."""
    try:
        source = load_image(file, draft=COPY_SOURCE_DRAFT)
        seen = load_image(file, draft=DRAFT)
    except UnreadableImageError:
        return None
    return source, perceptual_hash(seen), gray_thumbnail(seen)


def calibrate(files: Sequence[Path], *, settings: ProbeSettings, recall: float = RECALL,
              n_copies: int = N_COPIES, copy_model: CopyModel | None = None) -> Thresholds:
    """Simulate copies of (a seeded sample of) `files` and derive the two detection bounds.

    Args:
        files: The dataset's image files; originals are drawn from them (seeded, each file
            once before any repeats). Unreadable files are skipped.
        settings: ``alpha`` sets the confidence ``1 - alpha`` of the bounds; ``seed`` the draws.
        recall: Share of copies the bounds must catch (with that confidence).
        n_copies: Copies to simulate. More copies let the bound sit below the largest copy
            distance (400 copies: the 4th largest for recall 0.98 at 95 %), which makes it
            steadier.
        copy_model: How copies are made.

    Raises:
        ValueError: If too few files can be read, or `n_copies` is too small for `recall` at
            that confidence (the message gives the minimum).
    """
    recall = check_level(recall)
    level = settings.level
    model = copy_model or CopyModel()
    needed = int(np.ceil(np.log(1.0 - level) / np.log(recall)))
    if isinstance(n_copies, bool) or not isinstance(n_copies, int) or n_copies < needed:
        raise InputError(
            f"n_copies must be an integer >= {needed} for recall={recall} at confidence "
            f"{level}; received n_copies={n_copies!r}."
        )
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(np.resize(np.arange(len(files)), max(n_copies * 2, len(files))))
    repeats = len(files) < n_copies  # small datasets: originals are copied several times
    originals: dict[int, tuple[np.ndarray, np.uint64, np.ndarray] | None] = {}
    hashes, pixels = [], []
    for index in order:
        if len(hashes) == n_copies:
            break
        original = originals.get(index)
        if index not in originals:
            original = _original(Path(files[index]))
            if repeats:
                originals[index] = original
        if original is None:
            continue
        source, source_hash, source_thumb = original
        copy = make_copy(source, rng, model)
        hashes.append(int(hamming(source_hash, perceptual_hash(copy))))
        pixels.append(float(pixel_distance(source_thumb, gray_thumbnail(copy))))
    if len(hashes) < n_copies:
        raise InputError(
            f"cannot calibrate the near-duplicate thresholds: only {len(hashes)} of "
            f"{len(files)} images could be read; {n_copies} copies are needed."
        )
    return Thresholds(
        hash_bound=int(quantile_upper_bound(hashes, quantile=recall, level=level)),
        pixel_bound=quantile_upper_bound(pixels, quantile=recall, level=level),
        recall=recall, level=level, n_copies=n_copies, copy_hash_max=int(max(hashes)),
        copy_pixel_max=float(max(pixels)),
    )


def candidate_pairs(hashes: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i < j``, of hashes at most `bound` bits apart (chunked)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    left, right = [], []
    for start in range(0, len(hashes), _CHUNK):
        block = hamming(hashes[start:start + _CHUNK, None], hashes[None, :])
        i, j = np.nonzero(block <= bound)
        i = i + start
        keep = j > i
        left.append(i[keep])
        right.append(j[keep])
    if not left:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(left), np.concatenate(right)


@dataclass(frozen=True, kw_only=True)
class DuplicatePair:
    """Two images judged near-duplicates."""

    a: str
    b: str
    kind: str  # within_train, within_test or cross_split
    hash_distance: int
    pixel_distance: float

    def to_dict(self) -> dict:
        return asdict(self)


def duplicate_clusters(paths: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[str]:
    """A cluster id per path: paths joined by a near-duplicate pair share one (union-find);
    a path in no pair is its own cluster."""
    parent = {p: p for p in paths}

    def find(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in pairs:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    return [find(p) for p in paths]


@dataclass(frozen=True, kw_only=True)
class ClusterSpread:
    """Near-duplicate clusters inside train and how a stratified split cuts them.

    Attributes:
        n_clusters: Clusters of two or more training images.
        clustered_images: Training images in those clusters.
        straddling_images: Training images with another member of their cluster in another fold.
        n_train: Training images counted.
    """

    n_clusters: int
    clustered_images: int
    straddling_images: int
    n_train: int

    @property
    def straddling_share(self) -> float:
        return self.straddling_images / self.n_train if self.n_train else 0.0

    def text(self) -> str:
        return (f"{self.n_clusters} clusters of {self.clustered_images} images; stratified "
                f"folds put {self.straddling_share:.0%} of training images on both sides of a "
                "fold boundary from a copy")

    def to_dict(self) -> dict:
        return {**asdict(self), "straddling_share": self.straddling_share}


def cluster_spread(clusters: Sequence[str], folds: np.ndarray) -> ClusterSpread:
    """How `folds` cut the clusters (a cluster id and a fold per training image; pure)."""
    clusters, folds = np.asarray(clusters).astype(str), np.asarray(folds)
    if len(clusters) != len(folds):
        raise InputError(f"clusters and folds must have one entry per image; received "
                         f"{len(clusters)} and {len(folds)}.")
    _, codes, sizes = np.unique(clusters, return_inverse=True, return_counts=True)
    in_cluster = sizes[codes] > 1
    n_folds_of = np.array([len(np.unique(folds[codes == c])) for c in range(len(sizes))])
    # an image straddles when its cluster spans two folds: another member sits in another fold
    straddling = in_cluster & (n_folds_of[codes] > 1)
    return ClusterSpread(n_clusters=int((sizes > 1).sum()), clustered_images=int(in_cluster.sum()),
                         straddling_images=int(straddling.sum()), n_train=len(clusters))


@dataclass(frozen=True, kw_only=True)
class DuplicatesResult:
    """Near-duplicate pairs, how they sit across splits and folds, and what they do to CV.

    Attributes:
        leak: A train/test pair exists, or the within-train clusters make stratified CV
            significantly optimistic (``comparison.leak``).
        spread: The within-train clusters and how stratified folds cut them (None: not
            measured).
        comparison: Stratified vs cluster-kept folds of the run's head (or the probe model);
            None without within-train pairs or when it could not run (`note` says why).
    """

    leak: bool
    pairs: tuple[DuplicatePair, ...]
    thresholds: Thresholds
    n_images: int
    n_candidates: int
    within_train: int
    within_test: int
    cross_split: int
    train_pairs_split_by_stratified_folds: int | None = None
    extra: dict = field(default_factory=dict)
    spread: ClusterSpread | None = None
    comparison: CVComparison | None = None
    note: str = ""

    @property
    def train_leak(self) -> bool:
        """The within-train clusters make stratified CV significantly optimistic."""
        return self.comparison is not None and self.comparison.leak

    @property
    def fix(self) -> str | None:
        """What to do about the leaks found (None without one)."""
        fixes = [TRAIN_FIX] if self.train_leak else []
        return "; ".join(fixes + ([CROSS_SPLIT_FIX] if self.cross_split else [])) or None

    def with_train_cv(self, spread: ClusterSpread | None, comparison: CVComparison | None, *,
                      note: str = "") -> DuplicatesResult:
        """This result with the within-train clusters' effect on CV, and the verdict it gives."""
        leak = self.cross_split > 0 or (comparison is not None and comparison.leak)
        return replace(self, spread=spread, comparison=comparison, note=note, leak=leak)

    def _train_text(self) -> str:
        text = f"{self.within_train} within-train pairs"
        if self.spread is not None:
            text += (f" in {self.spread.n_clusters} clusters, "
                     f"{self.spread.straddling_share:.0%} of training images split from a copy")
        c = self.comparison
        if c is not None:
            return f"{text}; {c.summary('clusters-kept')}"
        return f"{text}; {self.note}" if self.note else text

    def verdict(self) -> str:
        leaks = []
        if self.cross_split:
            leaks.append(f"{self.cross_split} train/test near-duplicate pairs; fix: "
                         f"{CROSS_SPLIT_FIX}")
        if self.train_leak:
            leaks.append(f"near-duplicates inside train make stratified CV optimistic "
                         f"({self._train_text()}); fix: {TRAIN_FIX}")
        if leaks:
            return "LEAK: " + "; and ".join(leaks)
        if self.within_train:
            probe_model = self.comparison is not None and self.comparison.model_kind != RUN_HEAD
            hint = f"; {PROBE_MODEL_HINT}" if probe_model else ""
            return (f"no train/test duplicates; no significant CV optimism from the "
                    f"{self._train_text()}{hint}")
        return "no near-duplicates"

    def to_dict(self) -> dict:
        return {
            "leak": self.leak,
            "verdict": self.verdict(),
            "fix": self.fix,
            "pairs": [[p.a, p.b, p.hash_distance] for p in self.pairs],
            "details": [p.to_dict() for p in self.pairs],
            "n_pairs": len(self.pairs),
            "cross_split": self.cross_split,
            "within_train": self.within_train,
            "within_test": self.within_test,
            "train_pairs_split_by_stratified_folds": self.train_pairs_split_by_stratified_folds,
            "cross_split_leak": self.cross_split > 0,
            "train_leak": self.train_leak,
            "clusters": self.spread.to_dict() if self.spread else None,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "note": self.note,
            "n_images": self.n_images,
            "n_candidates": self.n_candidates,
            "thresholds": self.thresholds.to_dict(),
            **self.extra,
        }


def _kind(split_a: str, split_b: str) -> str:
    if split_a == _TRAIN and split_b == _TRAIN:
        return "within_train"
    if _TRAIN in (split_a, split_b):
        return "cross_split"
    return "within_test"


def find_duplicates(
    paths: Sequence[str],
    splits: Sequence[str],
    hashes: np.ndarray,
    thumbnails: np.ndarray,
    thresholds: Thresholds,
    *,
    folds: dict[str, int] | None = None,
) -> DuplicatesResult:
    """Near-duplicate pairs among described images (pure).

    Args:
        paths: Path of each image, relative to the data root.
        splits: Split of each image (``train`` or a test split name).
        hashes: (n,) uint64 perceptual hashes.
        thumbnails: (n, d) standardised grayscale thumbnails.
        thresholds: Bounds from :func:`calibrate`.
        folds: Optional ``{train path: fold}`` (e.g. stratified folds) to count the within-train
            pairs that those folds would split.
    """
    n = len(paths)
    if not (len(splits) == len(hashes) == len(thumbnails) == n):
        raise InputError(
            f"paths, splits, hashes and thumbnails must have one entry per image; received "
            f"{n}, {len(splits)}, {len(hashes)} and {len(thumbnails)}."
        )
    i, j = candidate_pairs(hashes, thresholds.hash_bound)
    distance = np.empty(len(i))
    for start in range(0, len(i), 4 * _CHUNK):
        part = slice(start, start + 4 * _CHUNK)
        distance[part] = pixel_distance(thumbnails[i[part]], thumbnails[j[part]])
    keep = distance <= thresholds.pixel_bound
    hash_d = hamming(hashes[i[keep]], hashes[j[keep]])
    pairs = sorted(
        (DuplicatePair(a=paths[a], b=paths[b], kind=_kind(splits[a], splits[b]),
                       hash_distance=int(h), pixel_distance=round(float(d), 4))
         for a, b, h, d in zip(i[keep], j[keep], hash_d, distance[keep], strict=True)),
        key=lambda p: (p.pixel_distance, p.a, p.b),
    )
    counts = {kind: sum(p.kind == kind for p in pairs)
              for kind in ("within_train", "within_test", "cross_split")}
    split_by_folds = None
    if folds is not None:
        split_by_folds = sum(
            1 for p in pairs if p.kind == "within_train" and p.a in folds and p.b in folds
            and folds[p.a] != folds[p.b]
        )
    return DuplicatesResult(
        leak=counts["cross_split"] > 0, pairs=tuple(pairs), thresholds=thresholds, n_images=n,
        n_candidates=len(i), within_train=counts["within_train"],
        within_test=counts["within_test"], cross_split=counts["cross_split"],
        train_pairs_split_by_stratified_folds=split_by_folds,
    )
