"""Image-size leak: does the camera resolution alone predict the class?

Sizes come from image headers only (:func:`kit.data.images.image_size`, no pixel decoding). The
probe reports, from the training images:

* a per-class table of sizes (the most frequent sizes, with the class counts of each);
* the plug-in mutual information between size (``WxH``) and class, in nats, with a permutation
  test (labels shuffled ``n_permutations`` times): the plug-in value alone is biased upwards
  when sizes are rare (with all sizes distinct it equals the class entropy);
* a metadata-only model (multinomial logistic regression on a one-hot of the size plus log
  width, log height and log aspect ratio), cross-validated, against the class-prior baseline
  scored on the same folds: the gain in nats and in percent of the prior's log loss, with a
  bootstrap interval of the per-image gain;
* the train/test size shift: test sizes never seen in train and their share of each test split.

Verdict: a size leak when the permutation test rejects independence (``p <= alpha``) AND the
``1 - alpha`` interval of the gain lies above zero.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kit.core.errors import InputError
from kit.data.images import UnreadableImageError, image_size
from kit.probes.crossval import fold_prior, make_folds, oof_probabilities
from kit.probes.imagestats import Unreadable
from kit.probes.settings import ProbeSettings
from kit.probes.stats import Interval, bootstrap_mean_interval, mutual_information_test
from kit.scoring.metrics import row_log_losses

__all__ = [
    "SizeReading",
    "SizeResult",
    "SplitShift",
    "read_sizes",
    "size_design",
    "size_key",
    "size_probe",
]

TABLE_ROWS = 12  # sizes shown in the per-class table (the most frequent ones)
EVIDENCE_ROWS = 5
REGULARIZATION = 1.0  # inverse L2 strength (C) of the metadata model
#: The fix a size leak names: validation that holds cameras out, and a head that cannot read size.
SIZE_FIX = "`run --folds group` (cameras held out whole) and no size in `--metadata`"


@dataclass(frozen=True, kw_only=True, eq=False)
class SizeReading:
    """Header-only sizes of many files: `width`/`height` are -1 where `readable` is False."""

    width: np.ndarray
    height: np.ndarray
    readable: np.ndarray
    unreadable: tuple[Unreadable, ...]
    seconds: float

    @property
    def images_per_s(self) -> float:
        return len(self.width) / self.seconds if self.seconds > 0 else float("inf")


def read_sizes(files: Sequence[Path], paths: Sequence[str]) -> SizeReading:
    """Read `(width, height)` from each file's header; unreadable files are listed, not fatal.

    Args:
        files: Image files.
        paths: Their paths relative to the data root (names in the unreadable list).
    """
    if len(files) != len(paths):
        raise InputError(f"files and paths must match; received {len(files)} and {len(paths)}.")
    start = time.perf_counter()
    width = np.full(len(files), -1, np.int64)
    height = np.full(len(files), -1, np.int64)
    unreadable = []
    for i, (file, path) in enumerate(zip(files, paths, strict=True)):
        try:
            width[i], height[i] = image_size(Path(file))
        except UnreadableImageError as error:
            unreadable.append(Unreadable(path=path, reason=error.reason))
    return SizeReading(width=width, height=height, readable=width >= 0,
                       unreadable=tuple(unreadable), seconds=time.perf_counter() - start)


def size_key(width: int, height: int) -> str:
    """``"1280x720"``."""
    return f"{int(width)}x{int(height)}"


@dataclass(frozen=True, kw_only=True)
class SplitShift:
    """Test sizes never seen in train, for one test split."""

    split: str
    n_images: int
    n_unseen: int
    unseen_share: float
    unseen_sizes: dict[str, int]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class SizeResult:
    """What the size probe found (see the module docstring)."""

    leak: bool
    n_train: int
    n_sizes: int
    mutual_information: float
    mutual_information_null: float
    mi_p_value: float
    prior_log_loss: float
    metadata_log_loss: float
    gain_nats: float
    gain_percent: float
    gain_interval: Interval
    n_folds: int
    table: tuple[dict, ...]
    evidence: tuple[str, ...]
    shift: tuple[SplitShift, ...]
    alpha: float
    n_permutations: int

    @property
    def test_unseen_share(self) -> float:
        total = sum(s.n_images for s in self.shift)
        return sum(s.n_unseen for s in self.shift) / total if total else 0.0

    @property
    def fix(self) -> str | None:
        """What to do about a size leak (None without one)."""
        return SIZE_FIX if self.leak else None

    def verdict(self) -> str:
        if self.leak:
            return (f"LEAK: size predicts the class (MI p={self.mi_p_value:.3g}, gain "
                    f"{self.gain_nats:.3f} nats, interval above 0); fix: {SIZE_FIX}")
        return (f"no size leak (MI p={self.mi_p_value:.3g}; gain {self.gain_nats:.3f} nats, "
                f"{self.gain_interval.level:.0%} interval [{self.gain_interval.low:.3f}, "
                f"{self.gain_interval.high:.3f}])")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["gain_interval"] = self.gain_interval.to_dict()
        out["shift"] = [s.to_dict() for s in self.shift]
        out["test_unseen_share"] = self.test_unseen_share
        out["verdict"] = self.verdict()
        out["fix"] = self.fix
        return out


def size_design(width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """One-hot of the exact size, then standardised log width, log height and log aspect."""
    keys = np.array([size_key(w, h) for w, h in zip(width, height, strict=True)], dtype=object)
    _, codes = np.unique(keys, return_inverse=True)
    onehot = np.eye(int(codes.max()) + 1)[codes]
    logs = np.stack([np.log(width), np.log(height), np.log(width / height)], axis=1)
    scale = logs.std(axis=0)
    logs = (logs - logs.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    return np.concatenate([onehot, logs], axis=1)


def _table(keys: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> tuple[dict, ...]:
    counts = Counter(keys.tolist())
    rows = []
    for key, n in counts.most_common(TABLE_ROWS):
        per_class = np.bincount(labels[keys == key], minlength=len(classes))
        rows.append({"size": key, "n": int(n),
                     **{c: int(v) for c, v in zip(classes, per_class, strict=True)}})
    if len(counts) > TABLE_ROWS:
        rest = ~np.isin(keys, [r["size"] for r in rows])
        per_class = np.bincount(labels[rest], minlength=len(classes))
        rows.append({"size": f"{len(counts) - TABLE_ROWS} other sizes", "n": int(rest.sum()),
                     **{c: int(v) for c, v in zip(classes, per_class, strict=True)}})
    return tuple(rows)


def _evidence(keys: np.ndarray, labels: np.ndarray, classes: Sequence[str],
              prior: np.ndarray) -> tuple[str, ...]:
    """The sizes whose class mix departs most from the prior (KL contribution), as text."""
    scored = []
    for key, n in Counter(keys.tolist()).items():
        if n < 2:
            continue
        mix = np.bincount(labels[keys == key], minlength=len(classes)) / n
        nonzero = mix > 0
        kl = float((mix[nonzero] * np.log(mix[nonzero] / prior[nonzero])).sum())
        top = int(np.argmax(mix))
        scored.append((n * kl, f"{key}: {n} images, {mix[top]:.0%} {classes[top]} "
                               f"(prior {prior[top]:.0%})"))
    return tuple(text for _, text in sorted(scored, reverse=True)[:EVIDENCE_ROWS])


def _shift(train_keys: set[str], test_keys: dict[str, np.ndarray]) -> tuple[SplitShift, ...]:
    out = []
    for split, keys in test_keys.items():
        unseen = Counter(k for k in keys.tolist() if k not in train_keys)
        n_unseen = sum(unseen.values())
        out.append(SplitShift(split=split, n_images=len(keys), n_unseen=n_unseen,
                              unseen_share=n_unseen / len(keys) if len(keys) else 0.0,
                              unseen_sizes=dict(unseen.most_common(TABLE_ROWS))))
    return tuple(out)


def _size_model_losses(width: np.ndarray, height: np.ndarray, y: np.ndarray,
                       folds: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image log losses, out of fold, of the size-only model and of each fold's prior."""
    from sklearn.linear_model import LogisticRegression

    probs = oof_probabilities(lambda: LogisticRegression(C=REGULARIZATION, max_iter=2000),
                              size_design(width, height), y, folds, k)
    prior_probs = np.zeros_like(probs)
    for fold in np.unique(folds):
        prior_probs[folds == fold] = fold_prior(y[folds != fold], k)
    return row_log_losses(y, probs), row_log_losses(y, prior_probs)


def size_probe(
    width: np.ndarray,
    height: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    *,
    test_sizes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    settings: ProbeSettings | None = None,
) -> SizeResult:
    """Measure how much the image size says about the class (see the module docstring).

    Args:
        width, height: Sizes of the readable training images.
        labels: Class index of each training image.
        classes: Class names, in index order.
        test_sizes: ``{split: (width, height)}`` of the readable test images.
        settings: Significance level, resamples, folds and seed.

    Raises:
        ValueError: On mismatched lengths or fewer than two training images per class in the
            smallest class (no cross-validation possible).
    """
    settings = settings or ProbeSettings()
    width, height = np.asarray(width, np.int64), np.asarray(height, np.int64)
    y = np.asarray(labels, np.int64)
    if not len(width) == len(height) == len(y):
        raise InputError(
            f"width, height and labels must have one entry per image; received {len(width)}, "
            f"{len(height)} and {len(y)}."
        )
    if len(y) == 0:
        raise InputError("the size probe needs training images; received none.")
    if (width < 1).any() or (height < 1).any():
        raise InputError("width and height must be positive; drop unreadable images first.")
    k = len(classes)
    keys = np.array([size_key(w, h) for w, h in zip(width, height, strict=True)], dtype=object)
    mi = mutual_information_test(keys, y, n_permutations=settings.n_permutations,
                                 seed=settings.seed)

    folds = make_folds(y, wanted=settings.folds, seed=settings.seed)
    model_rows, prior_rows = _size_model_losses(width, height, y, folds, k)
    gain = bootstrap_mean_interval(prior_rows - model_rows, level=settings.level,
                                   n_resamples=settings.n_resamples, seed=settings.seed)
    prior_ll, model_ll = float(prior_rows.mean()), float(model_rows.mean())
    leak = mi.p_value <= settings.alpha and gain.low > 0.0
    test_keys = {split: np.array([size_key(w, h) for w, h in zip(tw, th, strict=True)],
                                 dtype=object)
                 for split, (tw, th) in (test_sizes or {}).items()}
    overall_prior = np.bincount(y, minlength=k) / len(y)
    return SizeResult(
        leak=bool(leak), n_train=len(y), n_sizes=len(set(keys.tolist())),
        mutual_information=mi.statistic, mutual_information_null=mi.null_mean,
        mi_p_value=mi.p_value, prior_log_loss=prior_ll, metadata_log_loss=model_ll,
        gain_nats=prior_ll - model_ll,
        gain_percent=100.0 * (prior_ll - model_ll) / prior_ll if prior_ll > 0 else 0.0,
        gain_interval=gain, n_folds=int(len(np.unique(folds))),
        table=_table(keys, y, classes), evidence=_evidence(keys, y, classes, overall_prior),
        shift=_shift(set(keys.tolist()), test_keys), alpha=settings.alpha,
        n_permutations=settings.n_permutations,
    )
