"""The one fold driver: every training mode runs its (seed, fold) tasks through here.

A training mode is a `FoldFit`: a picklable callable that trains one task (or loads it when its
folder says it is finished) and returns a `FoldResult`. The driver makes the tasks (one per seed
and fold, seeded by `FoldTask.training_seed`), hands them to an executor (`kit.cv.executors`:
local here, a cluster elsewhere), runs the pseudo-label second stage when asked, and gathers
out-of-fold and test predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kit.core.errors import InputError
from kit.cv.data import PseudoRows
from kit.cv.executors import Executor, LocalExecutor
from kit.cv.pseudo import pseudo_rows, stage_name
from kit.cv.task import CVResult, FoldResult, FoldTask, fold_tasks, gather
from kit.runs.layout import RunFolder


class FoldFit(Protocol):
    """Trains one (seed, fold), optionally with pseudo-labelled test rows; returns its result."""

    def __call__(self, task: FoldTask, pseudo: PseudoRows | None = None) -> FoldResult: ...


@dataclass(frozen=True)
class _WithPseudo:
    """A picklable `fit(task, pseudo=rows)` for the executor's one-argument `map`."""

    fit: FoldFit

    def __call__(self, task_and_rows: tuple[FoldTask, PseudoRows]) -> FoldResult:
        task, rows = task_and_rows
        return self.fit(task, pseudo=rows)


def run_folds(fit: FoldFit, folds: np.ndarray, y: np.ndarray, *, n_classes: int,
              seeds: Sequence[int], folder: RunFolder, executor: Executor | None = None,
              pseudo_label: float | None = None, description: str = "folds") -> CVResult:
    """Run every (seed, fold) task of `fit` and gather OOF and test predictions.

    With `pseudo_label` (a probability threshold), every fold is trained a second time with the
    test rows its own first-stage model predicts at or above the threshold, labelled with that
    prediction; the second stage's predictions are the result.

    Raises:
        InputError: `folds` and `y` differ in length, or no seed is given.
    """
    folds = np.asarray(folds)
    if len(folds) != len(y):
        raise InputError(f"{len(folds)} fold numbers for {len(y)} training rows")
    tasks = fold_tasks(folds, seeds, folder)
    executor = executor or LocalExecutor(description=description)
    results = executor.map(fit, tasks)
    if pseudo_label is not None:
        # Second stage: each fold retrains with the test rows its OWN first-stage model labels
        # confidently. That model never saw the fold's validation rows or their labels, and the
        # validation rows themselves are never pseudo-labelled, so no validation information
        # reaches the fold's training (tests/test_ensemble.py proves it by changing them).
        name = stage_name(pseudo_label)
        second = [(t.in_subfolder(name), pseudo_rows(r, pseudo_label))
                  for t, r in zip(tasks, results, strict=True)]
        results = executor.map(_WithPseudo(fit), second)
    return gather(results, y, n_classes=n_classes, n_seeds=len(seeds))


__all__ = ["FoldFit", "run_folds"]
