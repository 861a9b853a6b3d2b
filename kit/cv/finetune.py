"""The fine-tune strategy: each (seed, fold) trains the base's last blocks and the head on images.

The model is `kit.models.finetune.build_finetune_model`; this module trains one fold of it,
resumable mid-way (see `kit.models.finetune` for why each piece is there):

- `BackupAndRestore` saves weights, optimizer and epoch after every epoch in the fold's
  `backup/`, and deletes it when `fit` returns; a killed fold restarts at its last finished
  epoch, not at the first epoch and not with the other folds.
- `ResumableEarlyStopping` keeps its memory in the fold folder (`early_stopping.json`,
  `best.weights.h5`), so a resumed fold continues the same patience count and ends with the
  best epoch of the whole fold; it watches an inner split of the fold's training rows, never
  the fold's validation rows.
- `epochs.csv` logs every epoch of every attempt; `history.json` is read from it.

A fold writes the files of every fold (`kit.runs.layout.FoldFolder`, `done.json` last) and is
loaded, not trained, once `done.json` exists; its training state is then removed.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kit.core.errors import InputError
from kit.cv.data import PseudoRows
from kit.cv.store import load_fold, prepare_fold, save_fold
from kit.cv.task import FoldResult, FoldTask
from kit.data.tta import average
from kit.features.backbones import Backbone, ResolvedWeights
from kit.models.finetune import (
    FinetuneConfig,
    StopState,
    build_finetune_model,
    early_stopping_class,
    finetune_base,
    read_history,
    two_rate_adam,
)
from kit.models.heads import HeadBuilder, HeadConfig
from kit.models.train import TrainConfig, inner_split, predict
from kit.runs.layout import FoldFolder
from kit.scoring.metrics import log_loss


def backup_epoch(files: FoldFolder) -> int | None:
    """Epochs finished according to BackupAndRestore; None when there is no usable backup."""
    meta = files.backup / "training_metadata.json"
    if not (meta.is_file() and (files.backup / "latest.weights.h5").is_file()):
        return None
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (ValueError, KeyError, TypeError):
        return None


def clear_training_state(files: FoldFolder) -> None:
    """Forget any earlier attempt: the fold starts at epoch 1."""
    shutil.rmtree(files.backup, ignore_errors=True)
    for path in (files.epochs_log, files.best_weights, files.stop_state):
        path.unlink(missing_ok=True)


def _check_inputs(images: dict[str, np.ndarray], y: np.ndarray,
                  test_images: dict[str, np.ndarray], variants: Sequence[str]) -> None:
    if not variants:
        raise InputError("variants must name at least one TTA variant, the plain pass first")
    for name, table in (("images", images), ("test_images", test_images)):
        missing = [v for v in variants if v not in table]
        if missing:
            raise InputError(f"{name} has no arrays for variants {missing}; it has "
                             f"{sorted(table)}")
    if len(images[variants[0]]) != len(y):
        raise InputError(f"{len(images[variants[0]])} training images for {len(y)} labels")


def _prepare(files: FoldFolder, task: FoldTask, train: TrainConfig,
             log: Callable[[str], None]) -> bool:
    """Decide how this attempt starts; return whether it must still train."""
    name = f"fold {task.fold} (seed {task.seed})"
    state = StopState.read(files.stop_state)
    stopped = state.finished or (state.epochs_seen > 0 and state.wait >= train.patience)
    if stopped and files.best_weights.is_file():
        log(f"{name}: training finished earlier (best epoch {state.best_epoch}); predicting "
            f"with {files.best_weights}")
        return False
    resume_at = backup_epoch(files)
    if resume_at is not None and not stopped:
        log(f"{name}: resuming at epoch {resume_at + 1} of {train.epochs} from {files.backup} "
            f"({resume_at} finished)")
        return True
    clear_training_state(files)
    return True


@dataclass(frozen=True, kw_only=True)
class FinetuneFit:
    """How one fold trains: optimisation, fine-tuning options, loss and LR callbacks."""

    train: TrainConfig
    config: FinetuneConfig
    loss: Any = "categorical_crossentropy"
    lr_callbacks: Callable[[], list] | None = None  # fresh callbacks per fold


def _fit(model: Any, task: FoldTask, images: np.ndarray, y: np.ndarray, n_classes: int,
         fit: FinetuneFit) -> None:
    """Train on the fold's training rows; early stopping watches an inner split of them."""
    from kit.core.tf_runtime import keras

    k, files, train = keras(), task.files, fit.train
    train_index = np.setdiff1d(np.arange(len(y)), task.val_index)
    fit_rows, stop_rows = (train_index[i]
                           for i in inner_split(y[train_index], seed=task.training_seed))
    onehot = np.eye(n_classes, dtype=np.float32)
    callbacks = [
        early_stopping_class()(state_file=files.stop_state, best_weights=files.best_weights,
                               patience=train.patience),
        *(fit.lr_callbacks() if fit.lr_callbacks else []),
        k.callbacks.CSVLogger(str(files.epochs_log), append=True),
        k.callbacks.BackupAndRestore(backup_dir=str(files.backup), double_checkpoint=True),
    ]
    model.fit(images[fit_rows], onehot[y[fit_rows]],
              validation_data=(images[stop_rows], onehot[y[stop_rows]]),
              epochs=train.epochs, batch_size=train.batch_size, callbacks=callbacks,
              shuffle=True, verbose=0)


def run_finetune_fold(task: FoldTask, *, images: dict[str, np.ndarray], y: np.ndarray,
                      test_images: dict[str, np.ndarray], variants: Sequence[str],
                      n_classes: int, build: Callable[[], Any], fit: FinetuneFit,
                      log: Callable[[str], None] = print) -> FoldResult:
    """Fine-tune one (seed, fold) and predict its validation rows and the test images, with TTA.

    `images[v]` / `test_images[v]` are uint8 image arrays per TTA variant; the model trains on
    `variants[0]` (the plain pass) and its predictions are averaged over all `variants`.
    `build()` returns a fresh `build_finetune_model` model. A fold with `done.json` is loaded
    (`resumed=True`), one with a backup resumes at its last finished epoch. `seconds` is the
    time of this call only.
    """
    from kit.core.tf_runtime import set_seed

    if task.files.is_finished():
        return load_fold(task)
    _check_inputs(images, y, test_images, variants)
    start = time.perf_counter()
    files = task.files
    prepare_fold(task)
    must_train = _prepare(files, task, fit.train, log)
    set_seed(task.training_seed)
    model = build()
    model.compile(optimizer=two_rate_adam(
        learning_rate=fit.train.learning_rate, base_lr_factor=fit.config.base_lr_factor,
        base_variables=finetune_base(model).trainable_variables),
        loss=fit.loss, metrics=["accuracy"])
    if must_train:
        _fit(model, task, images[variants[0]], y, n_classes, fit)
    if files.best_weights.is_file():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(str(files.best_weights))
    return _finish(task, model, images=images, y=y, test_images=test_images,
                   variants=variants, n_classes=n_classes, batch_size=fit.train.batch_size,
                   start=start)


def _finish(task: FoldTask, model: Any, *, images: dict[str, np.ndarray], y: np.ndarray,
            test_images: dict[str, np.ndarray], variants: Sequence[str], n_classes: int,
            batch_size: int, start: float) -> FoldResult:
    """Predict with TTA, write the fold's files (done.json last) and drop the training state."""
    files = task.files
    oof = average([predict(model, images[v][task.val_index], batch_size=batch_size)
                   for v in variants])
    test = (average([predict(model, test_images[v], batch_size=batch_size) for v in variants])
            if len(test_images[variants[0]]) else np.zeros((0, n_classes)))
    score = log_loss(y[task.val_index], oof)
    history = read_history(files.epochs_log)
    best_epoch = StopState.read(files.stop_state).best_epoch or len(history.get("loss", []))
    seconds = time.perf_counter() - start
    save_fold(task, model=model, arrays={"oof": oof, "test": test}, history=history,
              done={"log_loss": score, "best_epoch": best_epoch, "seconds": seconds})
    shutil.rmtree(files.backup, ignore_errors=True)
    files.best_weights.unlink(missing_ok=True)
    files.stop_state.unlink(missing_ok=True)
    return FoldResult(fold=task.fold, seed=task.seed, val_index=task.val_index, oof=oof,
                      test=test, log_loss=score, best_epoch=best_epoch, seconds=seconds,
                      resumed=False)


@dataclass(frozen=True, kw_only=True)
class FinetuneModel:
    """What builds a fold's fine-tune model (a fresh one per fold, seeded by the task)."""

    backbone: Backbone
    weights: ResolvedWeights
    input_size: tuple[int, int]
    head_builder: HeadBuilder
    head_config: HeadConfig
    n_classes: int
    config: FinetuneConfig

    def build(self, seed: int) -> Any:
        return build_finetune_model(
            backbone=self.backbone, weights=self.weights, input_size=self.input_size,
            head_builder=self.head_builder, head_config=self.head_config,
            n_classes=self.n_classes, config=self.config, seed=seed)


@dataclass(frozen=True, kw_only=True)
class FinetuneFolds:
    """The `FoldFit` of `--mode finetune`: images in, one fine-tuned model per task."""

    model: FinetuneModel
    fit: FinetuneFit
    images: dict[str, np.ndarray]
    y: np.ndarray
    test_images: dict[str, np.ndarray]
    variants: tuple[str, ...]
    log: Callable[[str], None] = print

    def __call__(self, task: FoldTask, pseudo: PseudoRows | None = None) -> FoldResult:
        if pseudo is not None:
            raise InputError("--pseudo-label works with heads on cached features; --mode "
                             "finetune does not take it (drop one of the two)")
        return run_finetune_fold(
            task, images=self.images, y=self.y, test_images=self.test_images,
            variants=self.variants, n_classes=self.model.n_classes, fit=self.fit, log=self.log,
            build=lambda: self.model.build(task.training_seed))


__all__ = ["FinetuneFit", "FinetuneFolds", "FinetuneModel", "backup_epoch",
           "clear_training_state", "run_finetune_fold"]
