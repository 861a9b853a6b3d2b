"""Adversarial validation: can a classifier tell training images from test images?

For each feature source (cached conv features of a finished run, or, when none are cached,
cheap image statistics; and metadata: a one-hot of the exact size, log width, log height, log
aspect ratio and log bytes per pixel of the file), a ridge classifier (least squares on
standardised features, penalty `RIDGE` per training image) is cross-validated on "is this a
test image?". Its out-of-fold scores give an ROC AUC, reported with DeLong's interval; 0.5
means train and test look alike.

DeLong's interval treats the scores as fixed, but out-of-fold scores come from several fitted
models and vary more (measured on the dogs-vs-cats demo: the AUC under shuffled labels had a
standard deviation 1.6 times DeLong's). So the verdict is a permutation test instead: the same
folds and model refitted on ``n_permutations`` shuffles of the train/test labels (cheap: a
ridge fit is linear in the labels, so all shuffles are fitted at once). A source shows a shift
when ``p <= alpha / n_sources`` (Bonferroni). The training images scored most test-like (out of
fold) are listed: they are the best validation images for this test set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats

from kit.core.errors import InputError
from kit.probes.crossval import make_folds
from kit.probes.settings import ProbeSettings
from kit.probes.size import size_design
from kit.probes.stats import AucInterval, auc_interval, rank_auc

__all__ = ["METADATA", "RIDGE", "AdversarialResult", "SourceResult", "adversarial_validation",
           "metadata_matrix", "ridge_oof_scores"]

METADATA = "metadata"
TOP_TRAIN = 10
RIDGE = 1.0  # ridge penalty per training image, on standardised features


def metadata_matrix(width: np.ndarray, height: np.ndarray, n_bytes: np.ndarray) -> np.ndarray:
    """One-hot size, log width, log height, log aspect and log bytes per pixel (pure)."""
    w = np.asarray(width, np.float64)
    h = np.asarray(height, np.float64)
    b = np.maximum(np.asarray(n_bytes, np.float64), 1.0)
    return np.concatenate([size_design(w.astype(np.int64), h.astype(np.int64)),
                           np.log(b / (w * h))[:, None]], axis=1)


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    scale = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(scale > 0, scale, 1.0)


def ridge_oof_scores(x: np.ndarray, targets: np.ndarray, folds: np.ndarray, *,
                     penalty: float = RIDGE) -> np.ndarray:
    """Out-of-fold ridge-regression scores for each column of `targets` at once (pure).

    Args:
        x: (n, d) features (standardise them first).
        targets: (n, m) targets, e.g. the 0/1 labels and m - 1 shuffles of them.
        folds: (n,) fold per row.
        penalty: Ridge penalty per training row.

    Returns:
        (n, m) scores; row i is predicted by the model fitted without i's fold.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(targets, np.float64)
    out = np.zeros_like(y)
    for fold in np.unique(folds):
        test = folds == fold
        xt, yt = x[~test], y[~test]
        x_mean, y_mean = xt.mean(axis=0), yt.mean(axis=0)
        xc = xt - x_mean
        gram = xc.T @ xc + penalty * len(xt) * np.eye(x.shape[1])
        weights = np.linalg.solve(gram, xc.T @ (yt - y_mean))
        out[test] = (x[test] - x_mean) @ weights + y_mean
    return out


def _column_aucs(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of scores[:, j] for labels[:, j] (0/1), every column with the same class counts."""
    ranks = scipy_stats.rankdata(scores, axis=0)
    positives = int(labels[:, 0].sum())
    negatives = len(labels) - positives
    return ((ranks * labels).sum(axis=0) - positives * (positives + 1) / 2) / (positives * negatives)


@dataclass(frozen=True, kw_only=True)
class SourceResult:
    """Adversarial AUC of one feature source, its permutation p-value, AUC per test split."""

    name: str
    n_features: int
    auc: AucInterval
    p_value: float
    null_mean: float
    per_split: dict[str, float]

    def to_dict(self) -> dict:
        return {"name": self.name, "n_features": self.n_features, **self.auc.to_dict(),
                "p_value": self.p_value, "null_mean": self.null_mean,
                "per_split": self.per_split}


@dataclass(frozen=True, kw_only=True)
class AdversarialResult:
    """Adversarial validation over all sources; `auc` is the strongest source's."""

    leak: bool
    auc: float
    auc_low: float
    auc_high: float
    p_value: float
    source: str
    feature_source: str
    sources: tuple[SourceResult, ...]
    most_test_like: tuple[tuple[str, float], ...]
    alpha: float
    n_permutations: int

    def verdict(self) -> str:
        text = (f"AUC {self.auc:.3f} [{self.auc_low:.3f}, {self.auc_high:.3f}] on "
                f"{self.source}, permutation p={self.p_value:.3g}")
        return f"SHIFT: test differs from train ({text})" if self.leak else f"no shift ({text})"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["sources"] = {s.name: s.to_dict() for s in self.sources}
        out["most_test_like"] = [{"path": p, "score": round(v, 4)} for p, v in self.most_test_like]
        out["verdict"] = self.verdict()
        return out


def _source_result(name: str, x: np.ndarray, labels: np.ndarray, folds: np.ndarray,
                   split_array: np.ndarray, *, alpha: float, penalty: float,
                   n_permutations: int) -> tuple[SourceResult, np.ndarray]:
    """One source's out-of-fold train-vs-test AUC, its permutation p and per-split AUCs; and the
    out-of-fold scores of the true labels."""
    is_test = labels[:, 0]
    oof = ridge_oof_scores(_standardise(x), labels, folds, penalty=penalty)
    aucs = _column_aucs(labels, oof)
    per_split = {}
    for split in sorted(set(split_array[is_test == 1].tolist())):
        rows = (split_array == "train") | (split_array == split)
        per_split[split] = float(rank_auc(is_test[rows], oof[rows, 0])[0])
    exceed = int((aucs[1:] >= aucs[0] - 1e-12).sum())
    return SourceResult(
        name=name, n_features=int(np.asarray(x).shape[1]),
        auc=auc_interval(is_test, oof[:, 0], level=1 - alpha),
        p_value=(1 + exceed) / (1 + n_permutations),
        null_mean=float(aucs[1:].mean()), per_split=per_split), oof[:, 0]


def adversarial_validation(
    sources: Mapping[str, np.ndarray],
    splits: Sequence[str],
    paths: Sequence[str],
    *,
    feature_source: str,
    settings: ProbeSettings | None = None,
    penalty: float = RIDGE,
) -> AdversarialResult:
    """Cross-validated train-vs-test classifiers, one per source (pure, seeded).

    Args:
        sources: ``{name: (n, d) matrix}``, rows aligned with `splits` and `paths`.
        splits: ``train`` or a test split name per row.
        paths: Path per row, relative to the data root.
        feature_source: Words saying where the non-metadata features came from.
        settings: Significance level, permutations, folds and seed.
        penalty: Ridge penalty per training image.

    Raises:
        ValueError: If no source is given, rows do not align, or either side has fewer than
            two images.
    """
    settings = settings or ProbeSettings()
    if not sources:
        raise InputError("adversarial validation needs at least one feature source.")
    split_array = np.asarray(splits, dtype=object)
    is_test = (split_array != "train").astype(np.int64)
    for name, x in sources.items():
        if len(x) != len(split_array):
            raise InputError(
                f"source {name!r} has {len(x)} rows for {len(split_array)} images; rows must align."
            )
    if min(is_test.sum(), len(is_test) - is_test.sum()) < 2:
        raise InputError("adversarial validation needs at least 2 training and 2 test images.")
    alpha = settings.alpha / len(sources)
    folds = make_folds(is_test, wanted=settings.folds, seed=settings.seed)
    rng = np.random.default_rng(settings.seed)
    labels = np.stack([is_test] + [rng.permutation(is_test)
                                   for _ in range(settings.n_permutations)], axis=1)
    results, scores = [], {}
    for name, x in sources.items():
        result, scores[name] = _source_result(name, x, labels, folds, split_array,
                                              alpha=alpha, penalty=penalty,
                                              n_permutations=settings.n_permutations)
        results.append(result)
    best = max(results, key=lambda r: r.auc.auc)
    train_rows = np.flatnonzero(is_test == 0)
    order = train_rows[np.argsort(-scores[best.name][train_rows], kind="stable")][:TOP_TRAIN]
    return AdversarialResult(
        leak=any(r.p_value <= alpha for r in results), auc=best.auc.auc, auc_low=best.auc.low,
        auc_high=best.auc.high, p_value=best.p_value, source=best.name,
        feature_source=feature_source, sources=tuple(results),
        most_test_like=tuple((str(paths[i]), float(scores[best.name][i])) for i in order),
        alpha=settings.alpha, n_permutations=settings.n_permutations,
    )
