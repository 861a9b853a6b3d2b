"""Standard errors of means over rows drawn in clusters (a group's images, a near-duplicate
cluster): the rows of one cluster are not independent, so each cluster counts as one draw.

Example:
    >>> round(cluster_se(np.array([1.0, 1.0, 3.0, 3.0]), np.array([0, 0, 1, 1])), 3)
    1.0
"""

from __future__ import annotations

import numpy as np


def cluster_codes(clusters: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(cluster of each row as 0..G-1, rows per cluster); each row its own without clusters."""
    if clusters is None:
        return np.arange(n), np.ones(n, np.int64)
    _, inverse = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
    return inverse, np.bincount(inverse)


def cluster_unit_variance(values: np.ndarray, inverse: np.ndarray, sizes: np.ndarray) -> float:
    """One cluster's variance on the scale of a row mean (the ratio estimator's
    linearisation): the mean over G clusters has this variance / G."""
    g = len(sizes)
    if g < 2:
        return 0.0
    totals = np.bincount(inverse, weights=values, minlength=g)
    resid = totals - sizes * np.mean(values)
    return float(np.sum(resid ** 2) / (g - 1) / sizes.mean() ** 2)


def cluster_se(values: np.ndarray, clusters: np.ndarray | None) -> float:
    """Standard error of the mean of `values`, counting each cluster as one draw."""
    values = np.asarray(values, np.float64)
    inverse, sizes = cluster_codes(clusters, len(values))
    return float(np.sqrt(cluster_unit_variance(values, inverse, sizes) / max(len(sizes), 1)))


__all__ = ["cluster_codes", "cluster_se", "cluster_unit_variance"]
