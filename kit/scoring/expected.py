"""The private score a run should get, with an interval: pure functions of its out-of-fold rows.

The expected value is the metric on out-of-fold rows that predict like the submission (an
ensemble's OOF rows, `kit.cv.nested`, moved by `size_shift` from its models' training size to
the submission's; or one model's, less the averaging gain that `diversity` estimates from the
fold models' test predictions). The interval (95 %) adds two spreads:

- the CV's own: the rows are drawn in clusters (a group's images, a near-duplicate cluster), so
  its standard error is a cluster one: rows of one cluster are not independent;
- the private leaderboard's: it scores `n_private` rows, drawn in clusters of the same mean
  size, so a small private set (or one of few groups) moves by chance.

Mean metrics (log loss, accuracy, micro F1) use the clusters' totals (a ratio estimator);
the others a cluster bootstrap.

Example:
    >>> e = expected_score("accuracy", np.array([0, 1, 1, 0]), np.eye(2)[[0, 1, 0, 0]],
    ...                    clusters=None, n_private=400)
    >>> round(e.value, 2), e.low < 0.75 < e.high
    (0.75, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.core.errors import InputError
from kit.scoring.clustered import cluster_codes, cluster_unit_variance
from kit.scoring.metric import get_metric
from kit.scoring.metrics import row_log_losses

Z95 = 1.959963984540054
EPS = 1e-15
BOOTSTRAP_DRAWS = 200
RANGES = {"log_loss": (0.0, float(-np.log(EPS)))}  # the others score in [0, 1]


def diversity(fold_test: np.ndarray) -> float:
    """Mean over test rows of mean_k KL(p_avg || p_k) for (K, n, k) fold predictions: the log
    loss that averaging the K models saves, in expectation under p_avg."""
    p = np.clip(np.asarray(fold_test, np.float64), EPS, None)
    if p.ndim != 3 or p.shape[0] < 2 or p.shape[1] == 0:
        return 0.0
    p = p / p.sum(axis=2, keepdims=True)
    avg = p.mean(axis=0)
    kl = (avg[None] * (np.log(avg[None]) - np.log(p))).sum(axis=2)
    return float(kl.mean())


@dataclass(frozen=True, kw_only=True)
class Expected:
    """The expected private score, its interval, and the parts it is made of."""

    metric: str
    value: float
    low: float
    high: float
    cv: float
    averaging_gain: float
    cv_se: float
    private_se: float
    n_private: int
    n_clusters: int
    size_shift: float = 0.0

    def holds(self, score: float) -> bool:
        return self.low <= score <= self.high

    def to_dict(self) -> dict[str, float | int | str]:
        return {"metric": self.metric, "value": self.value, "low": self.low, "high": self.high,
                "cv": self.cv, "averaging_gain": self.averaging_gain,
                "size_shift": self.size_shift, "cv_se": self.cv_se,
                "private_se": self.private_se, "n_private": self.n_private,
                "n_clusters": self.n_clusters}


def row_scores(metric: str, y: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
    """Per-row scores whose mean is the metric, or None for a metric that is not a mean."""
    if metric == "log_loss":
        return row_log_losses(y, probs)
    if metric in ("accuracy", "f1_micro"):  # one label per row: micro F1 is the accuracy
        return (np.asarray(probs).argmax(axis=1) == np.asarray(y)).astype(np.float64)
    return None


def _mean_variances(values: np.ndarray, inverse: np.ndarray, sizes: np.ndarray,
                    n_private_clusters: int) -> tuple[float, float]:
    """Variance of the mean over G clusters (the CV) and over `n_private_clusters` clusters of
    the same kind (the private set)."""
    unit = cluster_unit_variance(values, inverse, sizes)
    return unit / len(sizes), unit / n_private_clusters


def _bootstrap_variance(metric: str, y: np.ndarray, probs: np.ndarray, inverse: np.ndarray,
                        sizes: np.ndarray, draws: int, rng: np.random.Generator) -> float:
    """Variance of the metric over sets of `draws` clusters drawn with replacement."""
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    scores = []
    for _ in range(BOOTSTRAP_DRAWS):
        pick = rng.integers(len(sizes), size=draws)
        lengths = sizes[pick]
        offsets = np.repeat(starts[pick] - np.concatenate([[0], np.cumsum(lengths)[:-1]]),
                            lengths)
        rows = order[offsets + np.arange(lengths.sum())]
        try:
            scores.append(get_metric(metric).score(y[rows], probs[rows]))
        except InputError:  # e.g. one class only: that draw has no score
            continue
    return float(np.var(scores, ddof=1)) if len(scores) > 1 else 0.0


def expected_score(metric: str, y: np.ndarray, probs: np.ndarray, *,
                   clusters: np.ndarray | None, n_private: int, averaging_gain: float = 0.0,
                   size_shift: float = 0.0, seed: int = 0) -> Expected:
    """The private score to expect from out-of-fold `probs` (see the module docstring):
    the metric on them, less `averaging_gain` (log loss), plus `size_shift` (what the metric
    gains when the rows' models train on the submission's models' share of the data), with a
    95 % interval.

    Raises:
        InputError: No rows, or `n_private` < 1.
    """
    y, probs = np.asarray(y), np.asarray(probs, np.float64)
    if not len(y) or n_private < 1:
        raise InputError(f"an expected private score needs out-of-fold rows and n_private >= 1;"
                         f" received {len(y)} rows, n_private={n_private}")
    inverse, sizes = cluster_codes(clusters, len(y))
    private_clusters = max(1, int(round(n_private / sizes.mean())))
    values = row_scores(metric, y, probs)
    if values is not None:
        cv = float(values.mean())
        var_cv, var_private = _mean_variances(values, inverse, sizes, private_clusters)
    else:
        cv = get_metric(metric).score(y, probs)
        rng = np.random.default_rng(seed)
        var_cv, var_private = (_bootstrap_variance(metric, y, probs, inverse, sizes, draws, rng)
                               for draws in (len(sizes), private_clusters))
    value = cv - averaging_gain + size_shift
    half = Z95 * float(np.sqrt(var_cv + var_private))
    low, high = RANGES.get(metric, (0.0, 1.0))  # a score the metric cannot take is no bound
    return Expected(metric=metric, value=value, low=max(value - half, low),
                    high=min(value + half, high), cv=cv,
                    averaging_gain=averaging_gain, size_shift=size_shift,
                    cv_se=float(np.sqrt(var_cv)),
                    private_se=float(np.sqrt(var_private)), n_private=int(n_private),
                    n_clusters=len(sizes))


__all__ = ["Expected", "diversity", "expected_score", "row_scores"]
