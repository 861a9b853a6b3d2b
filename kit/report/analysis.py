"""What the report computes from a run's out-of-fold predictions: pure functions, no I/O.

Smoothing of learning curves, the confusion matrix and its most confused pairs, per-class
figures, which classes and examples the image grids show, and the image-size-by-class table.
(Whether the size *leaks* the class is the size probe's verdict, `kit.probes.size.size_probe`,
so the report and `kit probe` agree.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kit.core.errors import DeclarationError, InputError
from kit.scoring.metrics import row_log_losses


def check_smoothing(smoothing: object) -> float:
    """Validate an exponential smoothing factor: a float in [0, 1)."""
    if isinstance(smoothing, bool) or not isinstance(smoothing, int | float | np.floating):
        raise DeclarationError(
            f"smoothing must be a float in [0, 1); received smoothing={smoothing!r} of type "
            f"{type(smoothing).__name__}"
        )
    if not 0.0 <= float(smoothing) < 1.0:
        raise InputError(
            f"smoothing must be a float in [0, 1) (0: no smoothing); received "
            f"smoothing={smoothing!r}. Use e.g. smoothing=0.6."
        )
    return float(smoothing)


def smooth(values: np.ndarray | list[float], factor: float) -> np.ndarray:
    """Exponentially smoothed values, debiased as TensorBoard does.

    ``s_t = factor * s_{t-1} + (1 - factor) * x_t`` from ``s_0 = 0``, divided by
    ``1 - factor ** (t + 1)`` so the first points are not pulled towards zero. ``factor=0``
    returns the values unchanged. NaN values stay NaN and do not enter the average.

    Args:
        values: One curve, shape (n,).
        factor: Smoothing factor in [0, 1).

    Returns:
        A float64 array of shape (n,).

    Example:
        >>> smooth([1.0, 1.0, 1.0], 0.9).round(6).tolist()
        [1.0, 1.0, 1.0]
    """
    factor = check_smoothing(factor)
    x = np.asarray(values, dtype=np.float64)
    out = np.full_like(x, np.nan)
    last, steps = 0.0, 0
    for i, value in enumerate(x):
        if np.isnan(value):
            continue
        steps += 1
        last = factor * last + (1.0 - factor) * value
        out[i] = last / (1.0 - factor**steps)
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, shape (k, k): row = true class, column = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise InputError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def normalise_rows(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows summing to 0 stay 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def per_class(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Per true class: support, accuracy (recall), precision, mean log loss and its share.

    Returns:
        One row per class in `classes` order with columns `class`, `support`, `correct`,
        `accuracy`, `precision`, `log_loss`, `share_of_loss` (this class's part of the total
        log loss; the column sums to 1). Classes without OOF rows get NaN figures.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    losses = row_log_losses(y_true, probs)
    pred = np.asarray(probs).argmax(axis=1)
    rows = []
    total = losses.sum()
    for k, name in enumerate(classes):
        mine = y_true == k
        support = int(mine.sum())
        called = pred == k
        rows.append({
            "class": name,
            "support": support,
            "correct": int((pred[mine] == k).sum()),
            "accuracy": float((pred[mine] == k).mean()) if support else float("nan"),
            "precision": float((y_true[called] == k).mean()) if called.any() else float("nan"),
            "log_loss": float(losses[mine].mean()) if support else float("nan"),
            "share_of_loss": float(losses[mine].sum() / total) if total > 0 else float("nan"),
        })
    return pd.DataFrame(rows)


def worst_classes(stats: pd.DataFrame, limit: int) -> tuple[int, ...]:
    """The classes the per-class grids show: every class, in class order, when there are at
    most `limit`; otherwise the `limit` with the highest mean OOF log loss, worst first (ties
    in class order; classes without OOF rows last).

    Args:
        stats: :func:`per_class` of the run (one row per class, in class order).
        limit: How many classes at most, >= 1.
    """
    if len(stats) <= limit:
        return tuple(range(len(stats)))
    loss = stats["log_loss"].to_numpy(dtype=np.float64)
    order = np.argsort(-np.nan_to_num(loss, nan=-np.inf), kind="stable")
    return tuple(int(k) for k in order[:limit])


def most_confused(counts: np.ndarray, classes: list[str], n: int) -> pd.DataFrame:
    """The `n` most frequent (true, predicted) pairs of different classes, most first.

    Returns:
        Columns `true`, `predicted`, `count` and `share` (of the true class's images); pairs
        that never occur are left out, ties keep (true, predicted) order.
    """
    counts = np.asarray(counts, dtype=np.int64)
    off = counts.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:n]
    flat = flat[off.ravel()[flat] > 0]
    true, pred = np.unravel_index(flat, counts.shape)
    shares = normalise_rows(counts)[true, pred]
    return pd.DataFrame({"true": [classes[k] for k in true],
                         "predicted": [classes[k] for k in pred],
                         "count": off[true, pred], "share": shares})


@dataclass(frozen=True, kw_only=True)
class ExamplePicks:
    """Row indexes of the OOF predictions shown in the image grids.

    Attributes:
        random_correct: random rows predicted right.
        random_wrong: random rows predicted wrong.
        confident_correct: per true class index, its rows predicted right, most confident first.
        confident_wrong: per true class index, its rows predicted wrong, most confident first
            (confidence = probability of the wrong predicted class).
        uncertain: rows with the lowest top probability, lowest first.
    """

    random_correct: tuple[int, ...]
    random_wrong: tuple[int, ...]
    confident_correct: dict[int, tuple[int, ...]]
    confident_wrong: dict[int, tuple[int, ...]]
    uncertain: tuple[int, ...]

    def all_rows(self) -> set[int]:
        rows = {*self.random_correct, *self.random_wrong, *self.uncertain}
        for picks in (*self.confident_correct.values(), *self.confident_wrong.values()):
            rows.update(picks)
        return rows


def _top(rows: np.ndarray, key: np.ndarray, n: int) -> tuple[int, ...]:
    order = np.argsort(-key[rows], kind="stable")
    return tuple(int(r) for r in rows[order][:n])


def pick_examples(y_true: np.ndarray, probs: np.ndarray, *, n_random: int = 8,
                  n_per_class: int = 3, n_uncertain: int = 8, seed: int = 0,
                  classes: Sequence[int] | None = None) -> ExamplePicks:
    """Choose the OOF rows for the image grids (seeded, so a report is reproducible).

    Args:
        y_true: True class indexes, shape (n,).
        probs: OOF probabilities, shape (n, k).
        n_random: How many random right and random wrong rows.
        n_per_class: How many most confident right and wrong rows per true class.
        n_uncertain: How many rows with the lowest top probability.
        seed: Seed of the random picks.
        classes: The class indexes that get per-class picks, in this order (default: all).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    top = probs.max(axis=1)
    p_true = probs[np.arange(len(y_true)), y_true]
    right = np.flatnonzero(pred == y_true)
    wrong = np.flatnonzero(pred != y_true)
    rng = np.random.default_rng(seed)

    def sample(rows: np.ndarray) -> tuple[int, ...]:
        chosen = rng.choice(rows, size=min(n_random, len(rows)), replace=False)
        return tuple(int(r) for r in np.sort(chosen))

    chosen = range(probs.shape[1]) if classes is None else [int(k) for k in classes]
    return ExamplePicks(
        random_correct=sample(right),
        random_wrong=sample(wrong),
        confident_correct={k: _top(right[y_true[right] == k], p_true, n_per_class)
                           for k in chosen},
        confident_wrong={k: _top(wrong[y_true[wrong] == k], top, n_per_class)
                         for k in chosen},
        uncertain=tuple(int(r) for r in np.argsort(top, kind="stable")[:n_uncertain]),
    )


def size_labels(width: pd.Series, height: pd.Series) -> pd.Series:
    """`WxH` strings (`unreadable` where the header could not be read)."""
    return pd.Series(
        [f"{w}x{h}" if pd.notna(w) and pd.notna(h) else "unreadable"
         for w, h in zip(width, height, strict=True)],
        index=width.index, dtype=object,
    )


def size_by_class(table: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Image counts per size (rows, most frequent first) and class or test split (columns).

    Args:
        table: The image table (`split`, `label`, `width`, `height`).
        classes: Class names, in column order.

    Returns:
        Integer counts; the class columns come first, then one column per test split.
    """
    sizes = size_labels(table["width"], table["height"])
    column = table["label"].where(table["split"] == "train", table["split"])
    counts = pd.crosstab(sizes, column.astype(str))
    splits = sorted(set(table.loc[table["split"] != "train", "split"]))
    counts = counts.reindex(columns=[*classes, *splits], fill_value=0)
    order = counts.sum(axis=1).sort_values(ascending=False, kind="stable").index
    return counts.loc[order].astype(int)
