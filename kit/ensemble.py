"""K folds x seeds on cached features: out-of-fold predictions and fold-averaged test predictions.

Each (seed, fold) task writes its weights and predictions into its own folder and marks it done
last (`done.json`); a re-run loads finished tasks instead of training them again.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kit.atomic import atomic_path, atomic_write_text
from kit.executors import Executor, LocalExecutor
from kit.heads import HeadBuilder, HeadConfig
from kit.metrics import log_loss
from kit.train import HeadTrainer, TrainConfig, predict
from kit.tta import average


@dataclass(frozen=True, kw_only=True)
class EnsembleData:
    """Features per TTA variant (first variant is the plain pass used for training)."""

    variants: tuple[str, ...]
    x_train: dict[str, np.ndarray]
    y_train: np.ndarray
    x_test: dict[str, np.ndarray]
    n_classes: int


@dataclass(frozen=True, kw_only=True)
class FoldTask:
    fold: int
    seed: int
    folder: Path
    val_index: np.ndarray


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

    def summary(self) -> dict:
        return {"fold": self.fold, "seed": self.seed, "log_loss": self.log_loss,
                "best_epoch": self.best_epoch, "seconds": round(self.seconds, 3),
                "resumed": self.resumed, "n_val": int(len(self.val_index))}


@dataclass(frozen=True, kw_only=True)
class CVResult:
    """Out-of-fold predictions (averaged over seeds), test predictions (over folds and seeds)."""

    oof: np.ndarray
    test: np.ndarray
    folds: tuple[FoldResult, ...]
    cv_log_loss: float

    @property
    def fold_scores(self) -> tuple[float, ...]:
        return tuple(f.log_loss for f in self.folds)


def _tta_predict(model, arrays: dict[str, np.ndarray], variants: Sequence[str],
                 index: np.ndarray | None = None) -> np.ndarray:
    return average([predict(model, arrays[v] if index is None else arrays[v][index])
                    for v in variants])


def run_fold(task: FoldTask, *, data: EnsembleData, build: HeadBuilder, head: HeadConfig,
             train: TrainConfig, trainer: HeadTrainer | None = None) -> FoldResult:
    """Train one (seed, fold) and predict its validation rows and the test set, with TTA.

    `trainer` (optional) is shared by the folds of one process so Keras traces the head once;
    an engine running folds elsewhere leaves it out and each call builds its own.
    """
    done = task.folder / "done.json"
    if done.is_file():
        meta = json.loads(done.read_text())
        return FoldResult(fold=task.fold, seed=task.seed, val_index=task.val_index,
                          oof=np.load(task.folder / "oof.npy"),
                          test=np.load(task.folder / "test.npy"),
                          log_loss=meta["log_loss"], best_epoch=meta["best_epoch"],
                          seconds=meta["seconds"], resumed=True)
    start = time.perf_counter()
    n = len(data.y_train)
    train_index = np.setdiff1d(np.arange(n), task.val_index)
    plain = data.variants[0]
    trainer = trainer or head_trainer(data, build, head)
    fit = trainer.fit(data.x_train[plain][train_index], data.y_train[train_index],
                      config=replace(train, seed=task.seed * 1000 + task.fold))
    oof = _tta_predict(fit.model, data.x_train, data.variants, task.val_index)
    test = (_tta_predict(fit.model, data.x_test, data.variants)
            if len(next(iter(data.x_test.values()))) else np.zeros((0, data.n_classes)))
    score = log_loss(data.y_train[task.val_index], oof)
    seconds = time.perf_counter() - start
    task.folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(task.folder / "model.weights.h5") as tmp:
        fit.model.save_weights(str(tmp))
    for name, array in (("oof", oof), ("test", test)):
        with atomic_path(task.folder / f"{name}.npy") as tmp:
            np.save(tmp, array)
    atomic_write_text(task.folder / "history.json", json.dumps(fit.history))
    atomic_write_text(done, json.dumps({"log_loss": score, "best_epoch": fit.best_epoch,
                                        "seconds": seconds}))
    return FoldResult(fold=task.fold, seed=task.seed, val_index=task.val_index, oof=oof,
                      test=test, log_loss=score, best_epoch=fit.best_epoch, seconds=seconds,
                      resumed=False)


def head_trainer(data: EnsembleData, build: HeadBuilder, head: HeadConfig) -> HeadTrainer:
    """A trainer of `build` heads over the plain-variant feature shape of `data`."""
    feature_shape = data.x_train[data.variants[0]].shape[1:]
    return HeadTrainer(lambda: build(feature_shape, data.n_classes, head), n_classes=data.n_classes)


def cross_validate(
    data: EnsembleData,
    folds: np.ndarray,
    *,
    seeds: Sequence[int],
    run_dir: Path,
    build: HeadBuilder,
    head: HeadConfig,
    train: TrainConfig,
    executor: Executor | None = None,
) -> CVResult:
    """Run every (seed, fold) task and gather OOF and test predictions."""
    folds = np.asarray(folds)
    if len(folds) != len(data.y_train):
        raise ValueError(f"{len(folds)} fold numbers for {len(data.y_train)} training rows")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    tasks = [
        FoldTask(fold=int(k), seed=int(s), folder=run_dir / f"seed{s}" / f"fold{k}",
                 val_index=np.flatnonzero(folds == k))
        for s in seeds for k in np.unique(folds)
    ]
    executor = executor or LocalExecutor()
    shared = {"trainer": head_trainer(data, build, head)} if isinstance(
        executor, LocalExecutor) else {}
    fn = functools.partial(run_fold, data=data, build=build, head=head, train=train, **shared)
    results = executor.map(fn, tasks)
    oof = np.zeros((len(data.y_train), data.n_classes))
    for result in results:
        oof[result.val_index] += result.oof / len(seeds)
    test = average([r.test for r in results])
    return CVResult(oof=oof, test=test, folds=tuple(results),
                    cv_log_loss=log_loss(data.y_train, oof))
