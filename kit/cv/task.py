"""Fold tasks and their results: what the fold driver hands out and gathers.

One task is one (seed, fold): train on every training row outside `val_index`, predict
`val_index` (out of fold) and the test set. The seed a task trains with is derived here, and only
here (`FoldTask.training_seed`), so every training mode and every executor seeds a fold alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.core.errors import InputError
from kit.data.tta import average
from kit.runs.layout import FoldFolder, RunFolder
from kit.scoring.metrics import log_loss

SEED_STRIDE = 1000  # training seed = seed * SEED_STRIDE + fold: distinct for up to 1000 folds


@dataclass(frozen=True, kw_only=True)
class FoldTask:
    """One (seed, fold) to train, and the folder it writes into."""

    fold: int
    seed: int
    folder: Path
    val_index: np.ndarray

    @property
    def files(self) -> FoldFolder:
        """The fold folder's files (`kit.runs.layout`)."""
        return FoldFolder(self.folder)

    @property
    def training_seed(self) -> int:
        """The seed of this fold's initialisation, shuffling and early-stopping split."""
        return self.seed * SEED_STRIDE + self.fold

    def in_stage(self, stage: RunFolder) -> FoldTask:
        """The same (seed, fold) writing into another stage's folder (`bbox/`, `crop/`)."""
        return FoldTask(fold=self.fold, seed=self.seed, val_index=self.val_index,
                        folder=stage.fold(seed=self.seed, fold=self.fold).path)

    def in_subfolder(self, name: str) -> FoldTask:
        """The same (seed, fold) writing into a folder inside its own (`pseudo0.9/`)."""
        return FoldTask(fold=self.fold, seed=self.seed, val_index=self.val_index,
                        folder=self.files.sub(name).path)


@dataclass(frozen=True, kw_only=True)
class FoldResult:
    fold: int
    seed: int
    val_index: np.ndarray
    oof: np.ndarray
    test: np.ndarray
    log_loss: float
    best_epoch: int
    seconds: float
    resumed: bool
    box_oof: np.ndarray | None = None  # predicted boxes of the validation rows (bbox heads)
    n_pseudo: int | None = None  # test rows pseudo-labelled into this fold's training
    node: str | None = None  # the cluster node that trained it (kit.cv.ray_executor); None: here

    def summary(self) -> dict:
        out = {"fold": self.fold, "seed": self.seed, "log_loss": self.log_loss,
               "best_epoch": self.best_epoch, "seconds": round(self.seconds, 3),
               "resumed": self.resumed, "n_val": int(len(self.val_index))}
        if self.n_pseudo is not None:
            out["n_pseudo"] = self.n_pseudo
        if self.node is not None:
            out["node"] = self.node
        return out


@dataclass(frozen=True, kw_only=True)
class CVResult:
    """Out-of-fold predictions (averaged over seeds), test predictions (over folds and seeds)."""

    oof: np.ndarray
    test: np.ndarray
    folds: tuple[FoldResult, ...]
    cv_log_loss: float
    box_oof: np.ndarray | None = None  # (n, 4) out-of-fold boxes, averaged over seeds
    training: str = "per-fold"  # or "fused": how the heads were trained (kit.cv.driver)

    @property
    def fold_scores(self) -> tuple[float, ...]:
        return tuple(f.log_loss for f in self.folds)


def fold_tasks(folds: np.ndarray, seeds: Sequence[int], folder: RunFolder) -> list[FoldTask]:
    """One task per (seed, fold), each with its own folder under `folder`."""
    if not len(seeds):
        raise InputError("seeds must name at least one seed")
    folds = np.asarray(folds)
    return [
        FoldTask(fold=int(k), seed=int(s), folder=folder.fold(seed=int(s), fold=int(k)).path,
                 val_index=np.flatnonzero(folds == k))
        for s in seeds for k in np.unique(folds)
    ]


def gather(results: Sequence[FoldResult], y: np.ndarray, *, n_classes: int, n_seeds: int,
           box_oof: np.ndarray | None = None) -> CVResult:
    """OOF predictions averaged over seeds, test predictions over folds and seeds."""
    oof = np.zeros((len(y), n_classes))
    for result in results:
        oof[result.val_index] += result.oof / n_seeds
    if box_oof is None and all(r.box_oof is not None for r in results):
        box_oof = np.zeros((len(y), 4))
        for result in results:
            box_oof[result.val_index] += result.box_oof / n_seeds
    test = average([r.test for r in results])
    return CVResult(oof=oof, test=test, folds=tuple(results), cv_log_loss=log_loss(y, oof),
                    box_oof=box_oof)


__all__ = ["CVResult", "FoldResult", "FoldTask", "SEED_STRIDE", "fold_tasks", "gather"]
