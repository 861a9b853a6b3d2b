"""The one fold driver: every training mode runs its (seed, fold) tasks through here.

A training mode is a `FoldFit`: a picklable callable that trains one task (or loads it when its
folder says it is finished) and returns a `FoldResult`. The driver makes the tasks (one per seed
and fold, seeded by `FoldTask.training_seed`), hands them to an executor (`kit.cv.executors`:
local here, a cluster elsewhere), runs the pseudo-label second stage when asked, and gathers
out-of-fold and test predictions. A mode may also offer a `FusedFit`, which trains all of its
tasks in one pass (`kit.cv.fused`); on the local executor the driver uses it instead, and an
executor that says it `fuses` (Ray: `kit.cv.ray_executor`) runs that pass as one of its tasks,
so the numbers are those of the local pass.
"""

from __future__ import annotations

import dataclasses
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


class FusedFit(Protocol):
    """Trains many (seed, fold) tasks in one pass; one result per task, in task order."""

    def __call__(self, tasks: Sequence[FoldTask],
                 pseudo: Sequence[PseudoRows | None] | None = None) -> list[FoldResult]: ...


@dataclass(frozen=True)
class _FusedTask:
    """A picklable `fused(tasks, pseudo)` for the executor's one-argument `map`."""

    fused: FusedFit

    def __call__(self, tasks_and_pseudo: tuple[list[FoldTask], list | None]
                 ) -> list[FoldResult]:
        tasks, pseudo = tasks_and_pseudo
        return self.fused(tasks, pseudo)


@dataclass(frozen=True)
class _FusedOn:
    """A `FusedFit` that runs as one task of `executor` (an executor that `fuses`)."""

    executor: Executor
    fused: FusedFit

    def __call__(self, tasks: Sequence[FoldTask],
                 pseudo: Sequence[PseudoRows | None] | None = None) -> list[FoldResult]:
        arg = (list(tasks), None if pseudo is None else list(pseudo))
        return self.executor.map(_FusedTask(self.fused), [arg])[0]


@dataclass(frozen=True)
class _WithPseudo:
    """A picklable `fit(task, pseudo=rows)` for the executor's one-argument `map`."""

    fit: FoldFit

    def __call__(self, task_and_rows: tuple[FoldTask, PseudoRows]) -> FoldResult:
        task, rows = task_and_rows
        return self.fit(task, pseudo=rows)


def run_folds(fit: FoldFit, folds: np.ndarray, y: np.ndarray, *, n_classes: int,
              seeds: Sequence[int], folder: RunFolder, executor: Executor | None = None,
              pseudo_label: float | None = None, description: str = "folds",
              fused: FusedFit | None = None) -> CVResult:
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
    if fused is not None and (executor is None or isinstance(executor, LocalExecutor)):
        return _run_fused(fused, tasks, y, n_classes=n_classes, n_seeds=len(seeds),
                          pseudo_label=pseudo_label)
    if fused is not None and getattr(executor, "fuses", False):
        return _run_fused(_FusedOn(executor, fused), tasks, y, n_classes=n_classes,
                          n_seeds=len(seeds), pseudo_label=pseudo_label)
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


def _run_fused(fused: FusedFit, tasks: list[FoldTask], y: np.ndarray, *, n_classes: int,
               n_seeds: int, pseudo_label: float | None) -> CVResult:
    """Every task in one fused pass (and its pseudo-label stage in a second)."""
    results = fused(tasks)
    if pseudo_label is not None:
        name = stage_name(pseudo_label)
        results = fused([t.in_subfolder(name) for t in tasks],
                        [pseudo_rows(r, pseudo_label) for r in results])
    return dataclasses.replace(gather(results, y, n_classes=n_classes, n_seeds=n_seeds),
                               training="fused")


__all__ = ["FoldFit", "FusedFit", "run_folds"]
