"""Statistics shared by the probes: permutation tests, intervals, mutual information, AUC.

Pure functions of arrays (no I/O), seeded where random. Every probe verdict is one of:

* a permutation test: ``p = (1 + #{null >= observed}) / (1 + n_permutations)`` (never 0), the
  verdict being ``p <= alpha``;
* a confidence interval at ``level = 1 - alpha`` that must exclude the "no effect" value
  (bootstrap percentile intervals of a mean, DeLong's interval of an AUC);
* a distribution-free upper confidence bound of a quantile (order statistics), used to turn
  simulated "this is a copy" distances into a detection threshold.

Example:
    >>> round(mutual_information([0, 0, 1, 1], [0, 0, 1, 1]), 4)  # log 2
    0.6931
    >>> auc_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], level=0.95).auc
    1.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats

from kit.core.errors import InputError

__all__ = [
    "AucInterval",
    "Interval",
    "ModelNoise",
    "PermutationTest",
    "auc_interval",
    "bootstrap_mean_interval",
    "check_alpha",
    "check_level",
    "mutual_information",
    "mutual_information_test",
    "permutation_test",
    "quantile_upper_bound",
    "rank_auc",
    "sign_flip_test",
]


@dataclass(frozen=True, kw_only=True)
class Interval:
    """A two-sided confidence interval of an estimate."""

    estimate: float
    low: float
    high: float
    level: float

    def excludes(self, value: float) -> bool:
        """Whether `value` lies outside ``[low, high]``."""
        return value < self.low or value > self.high

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class AucInterval:
    """An ROC AUC with DeLong's normal-approximation interval (clipped to [0, 1])."""

    auc: float
    low: float
    high: float
    level: float
    n_positive: int
    n_negative: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class PermutationTest:
    """A permutation test of a statistic: observed value, null mean and one-sided p-value."""

    statistic: float
    null_mean: float
    p_value: float
    n_permutations: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class ModelNoise:
    """Noise a statistic carries beyond its sampling units: ``scale * T`` with ``T`` Student-t
    of `df` degrees of freedom (``scale`` a standard error estimated from `df + 1` replicate
    measurements, e.g. model trainings with other folds and seeds). Zero scale: none."""

    scale: float
    df: int

    def __post_init__(self) -> None:
        if not np.isfinite(self.scale) or self.scale < 0:
            raise InputError(f"scale must be a finite number >= 0; received scale={self.scale!r}.")
        _check_count("df", self.df, 1)

    @classmethod
    def of_replicates(cls, values: ArrayLike) -> ModelNoise:
        """The standard error of the mean of replicate measurements (>= 2 of them)."""
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 1 or len(x) < 2 or not np.isfinite(x).all():
            raise InputError(f"replicates must be at least 2 finite numbers; received {x!r}.")
        return cls(scale=float(x.std(ddof=1) / np.sqrt(len(x))), df=len(x) - 1)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.scale * rng.standard_t(self.df, size=size)

    def exceed(self, margins: np.ndarray) -> np.ndarray:
        """P(noise >= margin) per margin (with zero scale: 1 where margin <= 0)."""
        if self.scale == 0:
            return (margins <= 0).astype(np.float64)
        return scipy_stats.t.sf(margins / self.scale, self.df)


def check_level(level: object) -> float:
    """Validates a confidence level in (0, 1)."""
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not (
        0.0 < float(level) < 1.0
    ):
        raise InputError(
            f"level must be a confidence level strictly between 0 and 1; received level={level!r}. "
            "Pass e.g. level=0.95."
        )
    return float(level)


def check_alpha(alpha: object) -> float:
    """Validates a significance level in (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not (
        0.0 < float(alpha) < 1.0
    ):
        raise InputError(
            f"alpha must be a significance level strictly between 0 and 1; received "
            f"alpha={alpha!r}. Pass e.g. alpha=0.05."
        )
    return float(alpha)


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; received {name}={value!r}.")
    return int(value)


def _codes(name: str, values: ArrayLike) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or len(array) == 0:
        raise InputError(f"{name} must be a non-empty 1-D array; received shape {array.shape}.")
    _, codes = np.unique(array, return_inverse=True)
    return codes.astype(np.int64)


def _mi_from_codes(x: np.ndarray, y: np.ndarray, ny: int) -> float:
    joint = np.bincount(x * ny + y, minlength=(int(x.max()) + 1) * ny).astype(np.float64)
    joint = joint.reshape(-1, ny) / len(x)
    px = joint.sum(axis=1, keepdims=True)
    py = joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    return float((joint[nonzero] * np.log(joint[nonzero] / (px @ py)[nonzero])).sum())


def mutual_information(x: ArrayLike, y: ArrayLike) -> float:
    """Plug-in mutual information of two discrete variables, in nats.

    Biased upwards when `x` has many rare values (with all values distinct it equals the
    entropy of `y`); judge it against its permutation null (:func:`permutation_test`).

    Raises:
        ValueError: If the arrays are empty, not 1-D, or differ in length.
    """
    cx, cy = _codes("x", x), _codes("y", y)
    if len(cx) != len(cy):
        raise InputError(f"x and y must have the same length; received {len(cx)} and {len(cy)}.")
    return _mi_from_codes(cx, cy, int(cy.max()) + 1)


def permutation_test(
    statistic: Callable[[np.ndarray], float],
    labels: ArrayLike,
    *,
    n_permutations: int = 999,
    seed: int = 0,
) -> PermutationTest:
    """One-sided permutation test: is ``statistic(labels)`` larger than under shuffled labels?

    Args:
        statistic: Maps a label array to a number (larger = more association).
        labels: The observed labels; they are shuffled `n_permutations` times.
        n_permutations: Number of shuffles (>= 1); the smallest possible p is
            ``1 / (n_permutations + 1)``.
        seed: Seed of the shuffles.

    Returns:
        The observed statistic, the mean of the null statistics and
        ``p = (1 + #{null >= observed}) / (1 + n_permutations)``.
    """
    n_permutations = _check_count("n_permutations", n_permutations, 1)
    y = np.asarray(labels)
    observed = float(statistic(y))
    rng = np.random.default_rng(seed)
    null = np.array([statistic(rng.permutation(y)) for _ in range(n_permutations)])
    # A tiny tolerance so that float noise in equal statistics counts as "as large".
    exceed = int((null >= observed - 1e-12 * max(1.0, abs(observed))).sum())
    return PermutationTest(statistic=observed, null_mean=float(null.mean()),
                           p_value=(1 + exceed) / (1 + n_permutations),
                           n_permutations=n_permutations)


def mutual_information_test(x: ArrayLike, y: ArrayLike, *, n_permutations: int = 999,
                            seed: int = 0) -> PermutationTest:
    """Permutation test of the mutual information of `x` and `y` (shuffling `y`)."""
    cx, cy = _codes("x", x), _codes("y", y)
    if len(cx) != len(cy):
        raise InputError(f"x and y must have the same length; received {len(cx)} and {len(cy)}.")
    ny = int(cy.max()) + 1
    return permutation_test(lambda labels: _mi_from_codes(cx, labels, ny), cy,
                            n_permutations=n_permutations, seed=seed)


def bootstrap_mean_interval(
    values: ArrayLike,
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    clusters: ArrayLike | None = None,
    noise: ModelNoise | None = None,
) -> Interval:
    """Percentile bootstrap interval of the mean of `values`.

    Args:
        values: 1-D finite values (e.g. per-image log-loss differences).
        level: Confidence level in (0, 1).
        n_resamples: Bootstrap resamples (>= 1).
        seed: Seed of the resampling.
        clusters: Optional cluster label per value. Clusters (e.g. boats) are resampled whole,
            so correlated values within a cluster do not make the interval too narrow.
        noise: Optional noise the mean carries beyond the resampled units (e.g. a model's own
            training noise); one draw of it is added to each resampled mean.

    Raises:
        ValueError: On empty or non-finite values, a bad level, or mismatched clusters.
    """
    level = check_level(level)
    n_resamples = _check_count("n_resamples", n_resamples, 1)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0 or not np.isfinite(x).all():
        raise InputError(
            f"values must be a non-empty 1-D array of finite numbers; received shape {x.shape}."
        )
    rng = np.random.default_rng(seed)
    if clusters is None:
        draws = rng.integers(0, len(x), size=(n_resamples, len(x)))
        means = x[draws].mean(axis=1)
    else:
        codes = _codes("clusters", clusters)
        if len(codes) != len(x):
            raise InputError(
                f"clusters must have one label per value; received {len(codes)} labels for "
                f"{len(x)} values."
            )
        k = int(codes.max()) + 1
        sums = np.bincount(codes, weights=x, minlength=k)
        counts = np.bincount(codes, minlength=k).astype(np.float64)
        draws = rng.integers(0, k, size=(n_resamples, k))
        means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    if noise is not None:
        means = means + noise.draw(rng, n_resamples)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(estimate=float(x.mean()), low=float(low), high=float(high), level=level)


def auc_interval(y_true: ArrayLike, scores: ArrayLike, *, level: float = 0.95) -> AucInterval:
    """ROC AUC of `scores` for binary `y_true` with DeLong's interval.

    The AUC is the Mann-Whitney probability that a positive scores above a negative (ties
    count one half); its variance is DeLong's (1988) structural-component estimate, and the
    interval is ``auc +- z * se`` clipped to [0, 1].

    Raises:
        ValueError: If `y_true` is not binary 0/1 with both classes present (each at least
            twice), or the lengths differ.
    """
    level = check_level(level)
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape:
        raise InputError(
            f"y_true and scores must be 1-D of the same length; received shapes {y.shape} and "
            f"{s.shape}."
        )
    if not np.isin(y, (0, 1)).all():
        raise InputError("y_true must hold only 0 and 1.")
    pos, neg = s[y == 1], s[y == 0]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        raise InputError(
            f"an AUC interval needs at least 2 positives and 2 negatives; received {m} and {n}."
        )
    ranks_all = scipy_stats.rankdata(np.concatenate([pos, neg]))
    v10 = (ranks_all[:m] - scipy_stats.rankdata(pos)) / n  # P(pos_i > a negative)
    v01 = 1.0 - (ranks_all[m:] - scipy_stats.rankdata(neg)) / m  # P(a positive > neg_j)
    auc = float(v10.mean())
    se = float(np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))
    z = float(scipy_stats.norm.ppf(1.0 - (1.0 - level) / 2.0))
    return AucInterval(auc=auc, low=max(0.0, auc - z * se), high=min(1.0, auc + z * se),
                       level=level, n_positive=m, n_negative=n)


def quantile_upper_bound(values: ArrayLike, *, quantile: float, level: float) -> float:
    """A distribution-free upper confidence bound of the `quantile` of the values' distribution.

    Returns the smallest order statistic ``x_(k)`` with ``P(Binomial(n, quantile) < k) >=
    level``: with probability at least `level`, at least a `quantile` share of the whole
    distribution lies at or below it.

    Raises:
        ValueError: If there are too few values for that guarantee (the message gives the
            number needed) or the arguments are out of range.
    """
    quantile = check_level(quantile)
    level = check_level(level)
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = len(x)
    needed = int(np.ceil(np.log(1.0 - level) / np.log(quantile)))
    if n < needed:
        raise InputError(
            f"an upper {level:.0%} confidence bound of the {quantile:.1%} quantile needs at "
            f"least {needed} values; received {n}."
        )
    k = np.arange(1, n + 1)
    coverage = scipy_stats.binom.cdf(k - 1, n, quantile)  # P(Binomial < k)
    index = int(np.flatnonzero(coverage >= level)[0])
    return float(x[index])


def sign_flip_test(values: ArrayLike, clusters: ArrayLike, *, n_permutations: int = 999,
                   seed: int = 0, noise: ModelNoise | None = None) -> PermutationTest:
    """One-sided test that the mean of `values` is above zero, flipping whole clusters' signs.

    Under the null each cluster's values are as likely negated, so the statistic (the overall
    mean) is compared with the means of every sign pattern over the clusters: all ``2**G``
    patterns when there are at most 16 clusters (exact), else `n_permutations` random ones.
    With G clusters the smallest p-value is ``2**-G``: a few clusters cannot prove much.

    With `noise` (noise the mean carries beyond the clusters, such as a model's training
    noise), the null is the sign-flip mean plus that noise: each pattern counts with the
    chance that the noise lifts it to the observed mean, not 0 or 1.

    Raises:
        ValueError: On empty or non-finite values or mismatched clusters.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0 or not np.isfinite(x).all():
        raise InputError(
            f"values must be a non-empty 1-D array of finite numbers; received shape {x.shape}."
        )
    codes = _codes("clusters", clusters)
    if len(codes) != len(x):
        raise InputError(f"clusters must have one label per value; received {len(codes)} "
                         f"labels for {len(x)} values.")
    sums = np.bincount(codes, weights=x)
    k = len(sums)
    if k <= 16:
        patterns = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1) * 2 - 1
        count = len(patterns)
    else:
        n_permutations = _check_count("n_permutations", n_permutations, 1)
        rng = np.random.default_rng(seed)
        patterns = rng.choice(np.array([-1, 1]), size=(n_permutations, k))
        count = n_permutations
    observed = float(sums.sum() / len(x))
    null = patterns @ sums / len(x)
    margins = observed - null - 1e-12 * max(1.0, abs(observed))
    chances = (noise or ModelNoise(scale=0.0, df=1)).exceed(margins)
    if k <= 16:  # exact enumeration counts the identity pattern (the last) whole, as itself
        chances[-1] = 1.0
        p_value = float(chances.sum()) / count
    else:  # random patterns add it
        p_value = (1 + float(chances.sum())) / (1 + count)
    return PermutationTest(statistic=observed, null_mean=float(null.mean()), p_value=p_value,
                           n_permutations=count)


def rank_auc(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC (ties count one half) of each column of `scores` (n, m) for binary `y_true`."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    ranks = scipy_stats.rankdata(s, axis=0)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise InputError("y_true must hold both classes.")
    return (ranks[y].sum(axis=0) - m * (m + 1) / 2) / (m * n)
