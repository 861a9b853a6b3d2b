"""Kaggle's multi-class log loss, computed in float64 as Kaggle does; pure functions, no I/O.

Definition (Kaggle's): cast to float64, rescale each row of probabilities to sum 1, clip every
value to ``[EPS, 1 - EPS]``, then average ``-log p(true class)`` over rows. sklearn's
``log_loss`` is deliberately not used: its clipping changed across versions.

Example:
    >>> round(log_loss([0, 1], [[0.9, 0.1], [0.2, 0.8]]), 6)
    0.164252
    >>> round(log_loss([0, 1], [0.1, 0.8]), 6)  # 1-D: P(class 1) of a binary task
    0.164252
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from kit.core.errors import DeclarationError, InputError

__all__ = ["EPS", "log_loss", "prior_log_loss", "prior_probs", "row_log_losses"]

EPS: float = 1e-15
"""Kaggle's clipping bound: probabilities are clipped to ``[EPS, 1 - EPS]``."""


def _as_probs(probs: ArrayLike) -> np.ndarray:
    """Returns ``probs`` as a validated float64 (n, k) array; a 1-D input is binary P(class 1)."""
    array = np.asarray(probs)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise DeclarationError(
            f"probs must be numeric; received an array of dtype {array.dtype}. "
            "Pass probabilities as floats."
        )
    if np.issubdtype(array.dtype, np.complexfloating):
        raise DeclarationError("probs must be real numbers; received a complex array.")
    array = array.astype(np.float64)
    if array.ndim not in (1, 2):
        raise InputError(
            f"probs must be 2-D (n_samples, n_classes), or 1-D P(class 1) for a binary task; "
            f"received an array of shape {array.shape}."
        )
    if array.shape[0] == 0:
        raise InputError("probs is empty (0 rows); log loss needs at least one prediction.")
    finite = np.isfinite(array) if array.ndim == 1 else np.isfinite(array).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InputError(
            f"probs must be finite; row {row} contains NaN or inf: {array[row].tolist()}. "
            "Check the model outputs for that row."
        )
    if array.ndim == 1:
        bad = (array < 0) | (array > 1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"1-D binary probs are P(class 1) and must be in [0, 1]; "
                f"row {row} has p={array[row].tolist()}."
            )
        return np.stack([1.0 - array, array], axis=1)
    if array.shape[1] < 2:
        raise InputError(
            f"probs must have at least 2 columns (one per class); received shape {array.shape}."
        )
    negative = (array < 0).any(axis=1)
    if negative.any():
        row = int(np.flatnonzero(negative)[0])
        raise InputError(
            f"probs must be non-negative; row {row} has a negative value: {array[row].tolist()}."
        )
    zero = ~(array > 0).any(axis=1)
    if zero.any():
        row = int(np.flatnonzero(zero)[0])
        raise InputError(
            f"every probs row must have a positive sum; row {row} sums to 0 and cannot be "
            "rescaled. Predict something (e.g. the class prior) for that row."
        )
    return array


def _check_labels(labels: np.ndarray, n_rows: int | None) -> None:
    """Numeric, 1-D or 2-D, non-empty, as many rows as the probabilities, finite."""
    if labels.dtype == object or not (
        np.issubdtype(labels.dtype, np.number) or np.issubdtype(labels.dtype, np.bool_)
    ):
        raise DeclarationError(
            f"y_true must hold integer class indexes (or a one-hot matrix); received an array "
            f"of dtype {labels.dtype}. Map class names to indexes first."
        )
    if labels.ndim not in (1, 2):
        raise InputError(
            f"y_true must be 1-D class indexes (n,) or a 2-D one-hot array (n, k); "
            f"received an array of shape {labels.shape}."
        )
    if labels.shape[0] == 0:
        raise InputError("y_true is empty (0 rows); log loss needs at least one label.")
    if n_rows is not None and labels.shape[0] != n_rows:
        raise InputError(
            f"y_true and probs must have the same number of rows; received "
            f"{labels.shape[0]} labels and {n_rows} probability rows."
        )
    if np.issubdtype(labels.dtype, np.complexfloating):
        raise DeclarationError("y_true must hold integer class indexes; received a complex array.")
    finite_rows = np.isfinite(labels.astype(np.float64)).reshape(len(labels), -1).all(axis=1)
    if not finite_rows.all():
        row = int(np.flatnonzero(~finite_rows)[0])
        raise InputError(f"y_true must be finite; row {row} contains NaN or inf.")


def _one_hot_indexes(labels: np.ndarray, n_classes: int) -> np.ndarray:
    if labels.shape[1] != n_classes:
        raise InputError(
            f"one-hot y_true must have one column per class; received {labels.shape[1]} "
            f"columns for {n_classes} classes."
        )
    values = labels.astype(np.float64)
    not_binary = ((values != 0) & (values != 1)).any(axis=1)
    if not_binary.any():
        row = int(np.flatnonzero(not_binary)[0])
        raise InputError(
            f"one-hot y_true must hold only 0 and 1; row {row} is {labels[row].tolist()}."
        )
    sums = values.sum(axis=1)
    bad = sums != 1
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"one-hot y_true rows must sum to 1 (exactly one true class); row {row} sums to "
            f"{sums[row]:g}: {labels[row].tolist()}."
        )
    return values.argmax(axis=1).astype(np.int64)


def _as_class_indexes(y_true: ArrayLike, n_classes: int, n_rows: int | None = None) -> np.ndarray:
    """Returns ``y_true`` (int indexes or one-hot) as an int64 (n,) array of indexes in [0, k)."""
    labels = np.asarray(y_true)
    _check_labels(labels, n_rows)
    if labels.ndim == 2:
        return _one_hot_indexes(labels, n_classes)
    if np.issubdtype(labels.dtype, np.floating):
        not_integral = labels != np.round(labels)
        if not_integral.any():
            row = int(np.flatnonzero(not_integral)[0])
            raise InputError(
                f"y_true must hold integer class indexes; row {row} is {labels[row].tolist()}. "
                "Pass class indexes 0..n_classes-1, not probabilities."
            )
    indexes = labels.astype(np.int64)
    out_of_range = (indexes < 0) | (indexes >= n_classes)
    if out_of_range.any():
        row = int(np.flatnonzero(out_of_range)[0])
        raise InputError(
            f"y_true class indexes must be in [0, {n_classes}) for {n_classes} classes; "
            f"row {row} has y_true={labels[row].tolist()}."
        )
    return indexes


def _check_n_classes(n_classes: object) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise DeclarationError(
            f"n_classes must be an integer >= 2; received n_classes={n_classes!r} "
            f"of type {type(n_classes).__name__}."
        )
    if n_classes < 2:
        raise InputError(
            f"n_classes must be an integer >= 2; received n_classes={n_classes}. "
            "Pass the competition's number of classes."
        )
    return int(n_classes)


def row_log_losses(y_true: ArrayLike, probs: ArrayLike) -> np.ndarray:
    """Returns each row's ``-log p(true class)`` after Kaggle's rescaling and clipping.

    Same arguments and errors as :func:`log_loss`, of which this is the per-row form (its mean
    is the log loss). Useful for finding the worst predictions.

    Returns:
        A float64 array of shape (n,), every value in ``[-log(1 - EPS), -log(EPS)]``.
    """
    p = _as_probs(probs)
    y = _as_class_indexes(y_true, p.shape[1], p.shape[0])
    # Divide by the row maximum first so huge values cannot overflow the row sum.
    p = p / p.max(axis=1, keepdims=True)
    p = p / p.sum(axis=1, keepdims=True)
    p = np.clip(p, EPS, 1.0 - EPS)
    return -np.log(p[np.arange(len(y)), y])


def log_loss(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Kaggle's multi-class log loss.

    Args:
        y_true: Class indexes, shape (n,), integers in ``[0, k)`` (integral floats and bools are
            accepted), or a one-hot array of shape (n, k).
        probs: Probabilities, shape (n, k); rows need not sum to 1 (they are rescaled). For a
            binary task a 1-D array of shape (n,) means P(class 1) and is read as ``[1-p, p]``.

    Returns:
        The mean over rows of ``-log(clip(p / p.sum(), EPS, 1 - EPS)[true class])``, a float >= 0.

    Raises:
        TypeError: If ``y_true`` or ``probs`` is not numeric.
        ValueError: On empty input, a row-count mismatch, NaN/inf or negative probabilities, a
            row summing to 0, a label outside ``[0, k)``, a non-integer label, or one-hot rows
            not summing to 1. The message names the first offending row.

    Example:
        >>> round(log_loss([2], [[1, 1, 2]]), 6)  # -log(0.5)
        0.693147
    """
    return float(row_log_losses(y_true, probs).mean())


def prior_probs(y_true: ArrayLike, n_classes: int) -> np.ndarray:
    """Returns the class frequencies of ``y_true`` as a float64 array of shape (n_classes,).

    Args:
        y_true: Class indexes (n,) or one-hot (n, n_classes); must be non-empty.
        n_classes: Number of classes, >= 2.

    Example:
        >>> prior_probs([0, 0, 1, 2], 4).tolist()
        [0.5, 0.25, 0.25, 0.0]
    """
    k = _check_n_classes(n_classes)
    y = _as_class_indexes(y_true, k)
    return np.bincount(y, minlength=k).astype(np.float64) / len(y)


def prior_log_loss(y_true_train: ArrayLike, y_true_eval: ArrayLike, n_classes: int) -> float:
    """Log loss on ``y_true_eval`` of always predicting the class prior of ``y_true_train``.

    The baseline every model must beat. A class absent from train gets probability ``EPS``
    (before the usual rescaling), so an eval sample of that class costs about ``-log(EPS)``.

    Example:
        >>> round(prior_log_loss([0, 1, 1, 1], [0, 1], 2), 6)  # mean(-log .25, -log .75)
        0.836988
    """
    k = _check_n_classes(n_classes)
    prior = prior_probs(y_true_train, k)
    prior = np.where(prior > 0, prior, EPS)
    y_eval = _as_class_indexes(y_true_eval, k)
    return log_loss(y_eval, np.tile(prior, (len(y_eval), 1)))
