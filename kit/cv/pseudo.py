"""Pseudo-labels: the test rows a fold's own first-stage model predicts confidently."""

from __future__ import annotations

import numpy as np

from kit.core.errors import InputError
from kit.cv.data import PseudoRows
from kit.cv.task import FoldResult


def pseudo_rows(first_stage: FoldResult, threshold: float) -> PseudoRows:
    """Test rows the fold's own first-stage model predicts with probability >= `threshold`."""
    if not 0.5 <= threshold < 1:
        raise InputError(f"pseudo-label threshold must be in [0.5, 1); received {threshold!r}")
    test = first_stage.test
    if not len(test):
        return PseudoRows(index=np.zeros(0, int), labels=np.zeros(0, int))
    index = np.flatnonzero(test.max(axis=1) >= threshold)
    return PseudoRows(index=index, labels=test[index].argmax(axis=1))


def stage_name(threshold: float) -> str:
    """The run-folder stage of the second, pseudo-labelled fits (`pseudo0.9`)."""
    return f"pseudo{threshold:g}"


__all__ = ["pseudo_rows", "stage_name"]
