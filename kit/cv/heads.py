"""The heads strategy: one head per (seed, fold) trained on cached features, predicted with TTA.

`HeadFolds` is a `FoldFit` (kit.cv.driver): called with a task, it trains that fold's head (or
loads it when the fold folder says it is done) and returns its out-of-fold and test predictions.
In one process it keeps one compiled head for all its folds (`kit.models.train.HeadTrainer`:
re-initialised exactly, traced once); pickled to another process, it builds its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from kit.cv.data import EnsembleData, PseudoRows, fold_training_rows
from kit.cv.store import load_fold, prepare_fold, save_fold
from kit.cv.task import FoldResult, FoldTask
from kit.data.tta import average, unmap_boxes
from kit.models.heads import HeadBuilder, HeadConfig
from kit.models.train import HeadTrainer, TrainConfig, has_box_output, predict, predict_outputs
from kit.scoring.metrics import log_loss


def tta_predict(model: Any, data: EnsembleData, split: str,
                index: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities of `split` rows (`index` or all), averaged over the TTA variants."""
    return average([predict(model, data.inputs(split, v, index)) for v in data.variants])


def predict_boxes(model: Any, data: EnsembleData, split: str) -> np.ndarray:
    """Boxes of every row of `split`, in pixels of the input size of the plain view: averaged
    over the TTA variants, each brought back to the plain view, where `data.box_geometry`
    says how (else the plain view alone)."""
    geometry = data.box_geometry
    if geometry is None:
        return predict_outputs(model, data.inputs(split, data.variants[0]))["box"]
    sizes = geometry.train_sizes if split == "train" else geometry.test_sizes
    return average([
        unmap_boxes(predict_outputs(model, data.inputs(split, variant))["box"], variant, sizes,
                    geometry.input_size)
        for variant in data.variants])


def head_trainer(data: EnsembleData, build: HeadBuilder, head: HeadConfig) -> HeadTrainer:
    """A trainer of `build` heads over the plain-variant feature shape of `data`."""
    feature_shape = data.x_train[data.variants[0]].shape[1:]
    if data.meta_train is not None:
        head = replace(head, meta_dim=int(data.meta_train.shape[1]))
    return HeadTrainer(lambda: build(feature_shape, data.n_classes, head),
                       n_classes=data.n_classes)


def _predictions(model: Any, task: FoldTask, data: EnsembleData) -> dict[str, np.ndarray]:
    """`oof` and `test` probabilities, and for a box head its boxes (`box_oof` of the validation
    rows, `box_train` of every training row, `box_test`), in pixels of the input size."""
    arrays = {"oof": tta_predict(model, data, "train", task.val_index),
              "test": (tta_predict(model, data, "test") if data.n_test
                       else np.zeros((0, data.n_classes)))}
    if has_box_output(model):
        all_boxes = predict_boxes(model, data, "train")
        arrays["box_train"] = all_boxes
        arrays["box_oof"] = all_boxes[task.val_index]
        arrays["box_test"] = (predict_boxes(model, data, "test") if data.n_test
                              else np.zeros((0, 4)))
    return arrays


def run_fold(task: FoldTask, *, data: EnsembleData, build: HeadBuilder, head: HeadConfig,
             train: TrainConfig, trainer: HeadTrainer | None = None,
             pseudo: PseudoRows | None = None) -> FoldResult:
    """Train one (seed, fold) head and predict its validation rows and the test set, with TTA.

    A fold whose folder is finished is loaded instead. `trainer` (optional) is shared by the
    folds of one process so Keras traces the head once. A fold whose training rows would take
    more than `kit.cv.data.IN_MEMORY_BYTES` reads them from the feature cache batch by batch
    (`FoldRows.streamed`); predictions are always read batch by batch, one TTA variant at a time.
    """
    if task.files.is_finished():
        return load_fold(task)
    start = time.perf_counter()
    prepare_fold(task)
    trainer = trainer or head_trainer(data, build, head)
    rows = fold_training_rows(task, data, pseudo)
    fit = trainer.fit(rows.x, rows.y, config=replace(train, seed=task.training_seed),
                      boxes=rows.boxes, views=rows.views, stream=rows.streamed)
    arrays = _predictions(fit.model, task, data)
    score = log_loss(data.y_train[task.val_index], arrays["oof"])
    seconds = time.perf_counter() - start
    n_pseudo = None if pseudo is None else int(len(pseudo.index))
    save_fold(task, model=fit.model, arrays=arrays, history=fit.history, done={
        "log_loss": score, "best_epoch": fit.best_epoch, "seconds": seconds,
        **({"n_pseudo": n_pseudo} if pseudo is not None else {})})
    return FoldResult(fold=task.fold, seed=task.seed, val_index=task.val_index,
                      oof=arrays["oof"], test=arrays["test"], log_loss=score,
                      best_epoch=fit.best_epoch, seconds=seconds, resumed=False,
                      box_oof=arrays.get("box_oof"), n_pseudo=n_pseudo)


@dataclass(kw_only=True)
class HeadFolds:
    """The `FoldFit` of heads on cached features (every head of `kit.models.heads`)."""

    data: EnsembleData
    build: HeadBuilder
    head: HeadConfig
    train: TrainConfig
    _trainer: HeadTrainer | None = field(default=None, repr=False)

    def __call__(self, task: FoldTask, pseudo: PseudoRows | None = None) -> FoldResult:
        if self._trainer is None:
            self._trainer = head_trainer(self.data, self.build, self.head)
        return run_fold(task, data=self.data, build=self.build, head=self.head,
                        train=self.train, trainer=self._trainer, pseudo=pseudo)

    def __getstate__(self) -> dict:
        # A compiled Keras model does not travel between processes; each process builds its own.
        return {**self.__dict__, "_trainer": None}


__all__ = ["HeadFolds", "head_trainer", "predict_boxes", "run_fold", "tta_predict"]
