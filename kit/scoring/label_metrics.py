"""Accuracy, F1 and ROC AUC as Kaggle scores them: pure float64 functions, no I/O.

Each matches scikit-learn's definition (tests compare them on random inputs): `f1_micro` and
`f1_macro` are `sklearn.metrics.f1_score(average=...)` over the labels present in the truth or
the predictions (a label in neither is left out; a label with no true and no predicted sample
would score 0, as sklearn's `zero_division=0`); `roc_auc` is the Mann-Whitney statistic with
tied scores counted half, as `roc_auc_score`.

Example:
    >>> accuracy([0, 1, 2, 2], [0, 2, 2, 2])
    0.75
    >>> round(f1_macro([0, 1, 2, 2], [0, 2, 2, 2]), 6)
    0.6
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from kit.core.errors import InputError


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or len(t) != len(p):
        raise InputError(f"y_true and y_pred must be 1-D of one length; received shapes "
                         f"{t.shape} and {p.shape}")
    if len(t) == 0:
        raise InputError("y_true is empty (0 rows); the score needs at least one label")
    return t, p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of rows whose predicted class is the true class."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p, dtype=np.float64))


def _counts(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives of every label in `t` or `p`."""
    labels = np.union1d(t, p)
    tp = np.array([np.sum((t == c) & (p == c)) for c in labels], dtype=np.float64)
    fp = np.array([np.sum((t != c) & (p == c)) for c in labels], dtype=np.float64)
    fn = np.array([np.sum((t == c) & (p != c)) for c in labels], dtype=np.float64)
    return tp, fp, fn


def f1_micro(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """F1 of the pooled counts (for one label per row it equals the accuracy)."""
    tp, fp, fn = _counts(*_pair(y_true, y_pred))
    denominator = 2 * tp.sum() + fp.sum() + fn.sum()
    return float(2 * tp.sum() / denominator) if denominator else 0.0


def f1_macro(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """The mean over labels of each label's F1 (0 where it has no true and no predicted row)."""
    tp, fp, fn = _counts(*_pair(y_true, y_pred))
    denominator = 2 * tp + fp + fn
    per_label = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(per_label.mean())


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def roc_auc(y_true: ArrayLike, score: ArrayLike) -> float:
    """Area under the ROC curve of `score` for the positive class (label 1).

    Raises:
        InputError: The truth holds only one class (the AUC is undefined), or labels other
            than 0 and 1.
    """
    t, s = _pair(y_true, score)
    if not np.isin(t, (0, 1)).all():
        raise InputError(f"roc_auc needs labels 0 and 1; received {sorted(set(t.tolist()))[:5]}")
    positives = int((t == 1).sum())
    negatives = len(t) - positives
    if positives == 0 or negatives == 0:
        raise InputError("roc_auc is undefined when the truth holds only one class; "
                         f"received {positives} positive and {negatives} negative rows")
    ranks = _average_ranks(s.astype(np.float64))
    return float((ranks[t == 1].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


__all__ = ["accuracy", "f1_macro", "f1_micro", "roc_auc"]
