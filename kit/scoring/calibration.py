"""Submission clipping, chosen on out-of-fold predictions; pure functions, no I/O.

Log loss punishes a confident wrong answer without bound, so submissions are clipped to
``[clip, 1 - clip]``. The right ``clip`` depends on the model and on the class count (a clip
of 0.05 is harmless with 2 classes and absurd with 20), so it is chosen on OOF predictions
with :func:`choose_clip` and recorded with the run.

Example:
    >>> choice = choose_clip([0, 1, 1], [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> choice.clip
    0.05
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from kit.core.errors import DeclarationError, InputError
from kit.scoring.metrics import log_loss

__all__ = ["DEFAULT_CLIP_GRID", "ClipChoice", "choose_clip", "clip_probs"]

DEFAULT_CLIP_GRID: tuple[float, ...] = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.02, 0.03, 0.05)
"""Clip values tried by :func:`choose_clip` by default; those >= 1/k are skipped."""


def _plain(value: object) -> object:
    """Returns numpy scalars as Python ones, so messages read ``3`` rather than ``np.int64(3)``."""
    return value.item() if isinstance(value, np.generic) else value


def _n_classes(probs: np.ndarray) -> int:
    """Number of classes: k for (n, k) probs, 2 for 1-D binary P(class 1)."""
    if probs.ndim == 1:
        return 2
    if probs.ndim == 2:
        return probs.shape[1]
    raise InputError(
        f"probs must be 2-D (n_samples, n_classes), or 1-D P(class 1) for a binary task; "
        f"received an array of shape {probs.shape}."
    )


def _check_clip(clip: object, n_classes: int) -> float:
    if isinstance(clip, bool) or not isinstance(clip, (int, float, np.integer, np.floating)):
        raise DeclarationError(
            f"clip must be a float; received clip={_plain(clip)!r} of type {type(clip).__name__}."
        )
    value = float(clip)
    if not (0.0 <= value < 1.0 / n_classes):
        raise InputError(
            f"clip must be in [0, 1/{n_classes}) for {n_classes} classes; received clip={_plain(clip)!r}."
            f" Use a smaller clip such as 0.01."
        )
    return value


def clip_probs(probs: ArrayLike, clip: float) -> np.ndarray:
    """Returns a float64 copy of ``probs`` with every value clipped to ``[clip, 1 - clip]``.

    Rows are not rescaled (Kaggle rescales at scoring time).

    Args:
        probs: Probabilities (n, k), or 1-D P(class 1) for a binary task (then k = 2).
        clip: Lower bound, ``0 <= clip < 1/k``; 0 returns an unchanged copy.

    Raises:
        ValueError: If ``clip`` is outside ``[0, 1/k)`` or ``probs`` is not 1-D or 2-D.
        TypeError: If ``clip`` is not a number.

    Example:
        >>> clip_probs([0.0, 0.5, 1.0], 0.02).tolist()
        [0.02, 0.5, 0.98]
    """
    array = np.array(probs, dtype=np.float64)
    value = _check_clip(clip, _n_classes(array))
    return np.clip(array, value, 1.0 - value)


@dataclass(frozen=True, kw_only=True)
class ClipChoice:
    """The clip chosen on OOF predictions, with the evidence.

    Attributes:
        clip: The chosen clip (the smallest clip among those with the lowest loss).
        log_loss: Log loss of the OOF predictions clipped with ``clip``.
        unclipped_log_loss: Log loss of the OOF predictions as given.
        grid: The clip values actually evaluated: those valid for the class count, sorted
            ascending, duplicates removed.
        scores: The log loss for each value of ``grid``.
    """

    clip: float
    log_loss: float
    unclipped_log_loss: float
    grid: tuple[float, ...]
    scores: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["grid"] = list(self.grid)
        data["scores"] = list(self.scores)
        return data


def choose_clip(
    y_true: ArrayLike,
    probs: ArrayLike,
    *,
    grid: tuple[float, ...] = DEFAULT_CLIP_GRID,
) -> ClipChoice:
    """Picks the clip in ``grid`` that minimises the log loss of ``probs``.

    Args:
        y_true: Class indexes (n,) or one-hot (n, k), as for :func:`kit.scoring.metrics.log_loss`.
        probs: OOF probabilities (n, k), or 1-D P(class 1) for a binary task.
        grid: Candidate clips. Values >= 1/k are skipped; ties go to the smaller clip.

    Returns:
        A :class:`ClipChoice`.

    Raises:
        ValueError: If ``grid`` is empty, holds a negative or non-finite value, or holds no
            value below 1/k; or if ``y_true``/``probs`` are invalid for the log loss.
    """
    array = np.array(probs, dtype=np.float64)
    k = _n_classes(array)
    values = tuple(grid)
    shown = tuple(_plain(v) for v in values)
    if not values:
        raise InputError(
            "grid must hold at least one clip value; received grid=(). "
            "Use DEFAULT_CLIP_GRID or e.g. (0.0, 0.01)."
        )
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise DeclarationError(
                f"grid values must be floats; received {_plain(value)!r} in grid={shown!r}."
            )
        if not math.isfinite(value) or value < 0:
            raise InputError(
                f"grid values must be finite and >= 0; received {_plain(value)!r} in grid={shown!r}."
            )
    valid = tuple(sorted({float(v) for v in values if v < 1.0 / k}))
    if not valid:
        raise InputError(
            f"grid has no clip value below 1/{k} for {k} classes; received grid={shown!r}. "
            "Include 0.0 or smaller values."
        )
    unclipped = log_loss(y_true, array)
    scores = tuple(log_loss(y_true, clip_probs(array, c)) for c in valid)
    best = int(np.argmin(scores))  # first minimum = smallest clip, since valid is sorted
    return ClipChoice(
        clip=valid[best],
        log_loss=scores[best],
        unclipped_log_loss=unclipped,
        grid=valid,
        scores=scores,
    )
