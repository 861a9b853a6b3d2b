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
from kit.train import (
    HeadTrainer,
    Inputs,
    TrainConfig,
    TrainView,
    concat,
    has_box_output,
    predict,
    predict_outputs,
)
from kit.tta import average, map_boxes, unmap_boxes


@dataclass(frozen=True, kw_only=True)
class BoxGeometry:
    """What a box head needs to use the flip and crop views of its images.

    `views` are the TTA variants (kit.tta) the box head trains on, the plain view first; their
    features are in `EnsembleData.x_train`, and each image's box is moved into every view
    (`kit.tta.map_boxes`). Predicted boxes are averaged over `EnsembleData.variants`, each
    brought back to the plain view (`kit.tta.unmap_boxes`). Boxes are in pixels of
    `input_size`; the sizes are each image's stored (width, height), where crops are cut.
    """

    input_size: tuple[int, int]
    train_sizes: np.ndarray
    test_sizes: np.ndarray
    views: tuple[str, ...] = ("plain",)


@dataclass(frozen=True, kw_only=True)
class EnsembleData:
    """Features per TTA variant (first variant is the plain pass used for training).

    Optional extras, aligned with the rows: `meta_train`/`meta_test` (encoded metadata for a
    head with a `meta` input), `boxes_train` ((n, 5) `x, y, w, h, has_box` box targets for a
    head with a `box` output) and `box_geometry` (the flip and crop views a box head trains
    on and predicts with; without it, the plain view alone).
    """

    variants: tuple[str, ...]
    x_train: dict[str, np.ndarray]
    y_train: np.ndarray
    x_test: dict[str, np.ndarray]
    n_classes: int
    meta_train: np.ndarray | None = None
    meta_test: np.ndarray | None = None
    boxes_train: np.ndarray | None = None
    box_geometry: BoxGeometry | None = None

    @property
    def n_test(self) -> int:
        first = next(iter(self.x_test.values()))
        return len(first) if first.ndim > 1 else 0

    def inputs(self, split: str, variant: str, index: np.ndarray | None = None) -> Inputs:
        """The model inputs of `split` (train or test) for one variant, rows `index` or all."""
        x = (self.x_train if split == "train" else self.x_test)[variant]
        meta = self.meta_train if split == "train" else self.meta_test
        if index is not None:
            x = x[index]
            meta = None if meta is None else meta[index]
        return x if meta is None else {"features": x, "meta": meta}


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
    box_oof: np.ndarray | None = None  # predicted boxes of the validation rows (bbox heads)
    n_pseudo: int | None = None  # test rows pseudo-labelled into this fold's training

    def summary(self) -> dict:
        out = {"fold": self.fold, "seed": self.seed, "log_loss": self.log_loss,
               "best_epoch": self.best_epoch, "seconds": round(self.seconds, 3),
               "resumed": self.resumed, "n_val": int(len(self.val_index))}
        if self.n_pseudo is not None:
            out["n_pseudo"] = self.n_pseudo
        return out


@dataclass(frozen=True, kw_only=True)
class PseudoRows:
    """Test rows joining one fold's training data, with the labels the fold's own first-stage
    model gave them (never a model that saw the fold's validation rows)."""

    index: np.ndarray  # rows of the test set
    labels: np.ndarray


@dataclass(frozen=True, kw_only=True)
class CVResult:
    """Out-of-fold predictions (averaged over seeds), test predictions (over folds and seeds)."""

    oof: np.ndarray
    test: np.ndarray
    folds: tuple[FoldResult, ...]
    cv_log_loss: float
    box_oof: np.ndarray | None = None  # (n, 4) out-of-fold boxes, averaged over seeds

    @property
    def fold_scores(self) -> tuple[float, ...]:
        return tuple(f.log_loss for f in self.folds)


def _tta_predict(model, data: EnsembleData, split: str,
                 index: np.ndarray | None = None) -> np.ndarray:
    return average([predict(model, data.inputs(split, v, index)) for v in data.variants])


FOLD_ARRAYS = ("oof", "test", "box_oof", "box_train", "box_test")


def load_fold(task: FoldTask) -> FoldResult:
    """The saved result of a finished fold (its `done.json` exists), marked resumed."""
    meta = json.loads((task.folder / "done.json").read_text())
    box_file = task.folder / "box_oof.npy"
    return FoldResult(fold=task.fold, seed=task.seed, val_index=task.val_index,
                      oof=np.load(task.folder / "oof.npy"),
                      test=np.load(task.folder / "test.npy"),
                      log_loss=meta["log_loss"], best_epoch=meta["best_epoch"],
                      seconds=meta["seconds"], resumed=True,
                      box_oof=np.load(box_file) if box_file.is_file() else None,
                      n_pseudo=meta.get("n_pseudo"))


@dataclass(frozen=True, kw_only=True)
class FoldRows:
    """What one fold trains on: inputs, labels, box targets (box heads) and, for box heads
    with `BoxGeometry.views`, the other views of the fold's training images."""

    x: Inputs
    y: np.ndarray
    boxes: np.ndarray | None = None
    views: tuple[TrainView, ...] = ()


def fold_training_rows(task: FoldTask, data: EnsembleData,
                       pseudo: PseudoRows | None = None) -> FoldRows:
    """The inputs, labels and box targets one fold trains on.

    The fold's training rows (every row not in `task.val_index`) plus, with pseudo-labelling,
    the chosen test rows with their pseudo-labels (and no box). Validation rows never enter,
    in any view.
    """
    n = len(data.y_train)
    train_index = np.setdiff1d(np.arange(n), task.val_index)
    plain = data.variants[0]
    x = data.inputs("train", plain, train_index)
    y = data.y_train[train_index]
    boxes = None if data.boxes_train is None else data.boxes_train[train_index]
    views: list[TrainView] = []
    geometry = data.box_geometry
    if boxes is not None and geometry is not None:
        sizes = geometry.train_sizes[train_index]
        for view in geometry.views:
            if view == plain:
                continue
            views.append(TrainView(
                x=data.inputs("train", view, train_index),
                boxes=map_boxes(boxes, view, sizes, geometry.input_size)))
    if pseudo is not None and len(pseudo.index):
        x = concat([x, data.inputs("test", plain, pseudo.index)])
        y = np.concatenate([y, pseudo.labels])
        if boxes is not None:
            boxes = np.concatenate([boxes, np.zeros((len(pseudo.index), boxes.shape[1]),
                                                    boxes.dtype)])
    return FoldRows(x=x, y=y, boxes=boxes, views=tuple(views))


def predict_boxes(model, data: EnsembleData, split: str) -> np.ndarray:
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


def run_fold(task: FoldTask, *, data: EnsembleData, build: HeadBuilder, head: HeadConfig,
             train: TrainConfig, trainer: HeadTrainer | None = None,
             pseudo: PseudoRows | None = None) -> FoldResult:
    """Train one (seed, fold) and predict its validation rows and the test set, with TTA.

    `trainer` (optional) is shared by the folds of one process so Keras traces the head once;
    an engine running folds elsewhere leaves it out and each call builds its own. A head with
    a box output also saves its predicted boxes (`predict_boxes`: pixels of the input size) of
    the validation rows (`box_oof.npy`), of every training row (`box_train.npy`) and of the
    test rows (`box_test.npy`).
    """
    if (task.folder / "done.json").is_file():
        return load_fold(task)
    start = time.perf_counter()
    trainer = trainer or head_trainer(data, build, head)
    rows = fold_training_rows(task, data, pseudo)
    fit = trainer.fit(rows.x, rows.y, config=replace(train, seed=task.seed * 1000 + task.fold),
                      boxes=rows.boxes, views=rows.views)
    oof = _tta_predict(fit.model, data, "train", task.val_index)
    test = (_tta_predict(fit.model, data, "test") if data.n_test
            else np.zeros((0, data.n_classes)))
    arrays = {"oof": oof, "test": test}
    if has_box_output(fit.model):
        all_boxes = predict_boxes(fit.model, data, "train")
        arrays["box_train"] = all_boxes
        arrays["box_oof"] = all_boxes[task.val_index]
        arrays["box_test"] = (predict_boxes(fit.model, data, "test") if data.n_test
                              else np.zeros((0, 4)))
    score = log_loss(data.y_train[task.val_index], oof)
    seconds = time.perf_counter() - start
    n_pseudo = None if pseudo is None else int(len(pseudo.index))
    save_fold(task, model=fit.model, arrays=arrays, history=fit.history, done={
        "log_loss": score, "best_epoch": fit.best_epoch, "seconds": seconds,
        **({"n_pseudo": n_pseudo} if pseudo is not None else {})})
    return FoldResult(fold=task.fold, seed=task.seed, val_index=task.val_index, oof=oof,
                      test=test, log_loss=score, best_epoch=fit.best_epoch, seconds=seconds,
                      resumed=False, box_oof=arrays.get("box_oof"), n_pseudo=n_pseudo)


def save_fold(task: FoldTask, *, model, arrays: dict[str, np.ndarray],
              history: dict[str, list[float]], done: dict) -> None:
    """Write a finished fold: weights, `<name>.npy` per array, `history.json`, and `done.json`
    last (the commit marker `load_fold` and every resume rely on)."""
    task.folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(task.folder / "model.weights.h5") as tmp:
        model.save_weights(str(tmp))
    for name, array in arrays.items():
        with atomic_path(task.folder / f"{name}.npy") as tmp:
            np.save(tmp, array)
    atomic_write_text(task.folder / "history.json", json.dumps(history))
    atomic_write_text(task.folder / "done.json", json.dumps(done))


def pseudo_rows(first_stage: FoldResult, threshold: float) -> PseudoRows:
    """Test rows the fold's own first-stage model predicts with probability >= `threshold`."""
    if not 0.5 <= threshold < 1:
        raise ValueError(f"pseudo-label threshold must be in [0.5, 1); received {threshold!r}")
    test = first_stage.test
    if not len(test):
        return PseudoRows(index=np.zeros(0, int), labels=np.zeros(0, int))
    index = np.flatnonzero(test.max(axis=1) >= threshold)
    return PseudoRows(index=index, labels=test[index].argmax(axis=1))


def head_trainer(data: EnsembleData, build: HeadBuilder, head: HeadConfig) -> HeadTrainer:
    """A trainer of `build` heads over the plain-variant feature shape of `data`."""
    feature_shape = data.x_train[data.variants[0]].shape[1:]
    if data.meta_train is not None:
        head = replace(head, meta_dim=int(data.meta_train.shape[1]))
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
    pseudo_label: float | None = None,
) -> CVResult:
    """Run every (seed, fold) task and gather OOF and test predictions.

    With `pseudo_label` (a probability threshold), every fold is trained a second time with
    the test rows its own first-stage model predicts at or above the threshold, labelled with
    that prediction; the second stage's predictions are the result.
    """
    folds = np.asarray(folds)
    if len(folds) != len(data.y_train):
        raise ValueError(f"{len(folds)} fold numbers for {len(data.y_train)} training rows")
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    tasks = fold_tasks(folds, seeds, run_dir)
    executor = executor or LocalExecutor()
    shared = {"trainer": head_trainer(data, build, head)} if isinstance(
        executor, LocalExecutor) else {}
    fn = functools.partial(run_fold, data=data, build=build, head=head, train=train, **shared)
    results = executor.map(fn, tasks)
    if pseudo_label is not None:
        # Second stage: each fold retrains with the test rows its OWN first-stage model labels
        # confidently. That model never saw the fold's validation rows or their labels, and the
        # validation rows themselves are never pseudo-labelled, so no validation information
        # reaches the fold's training (tests/test_ensemble.py proves it by changing them).
        second = [(replace(t, folder=t.folder / f"pseudo{pseudo_label:g}"),
                   pseudo_rows(r, pseudo_label)) for t, r in zip(tasks, results, strict=True)]
        results = executor.map(functools.partial(_with_pseudo, fn), second)
    return gather(results, data.y_train, n_classes=data.n_classes, n_seeds=len(seeds))


def _with_pseudo(fn, task_and_rows: tuple[FoldTask, PseudoRows]) -> FoldResult:
    task, rows = task_and_rows
    return fn(task, pseudo=rows)


def fold_tasks(folds: np.ndarray, seeds: Sequence[int], run_dir: Path) -> list[FoldTask]:
    """One task per (seed, fold), each with its own folder under `run_dir`."""
    return [
        FoldTask(fold=int(k), seed=int(s), folder=run_dir / f"seed{s}" / f"fold{k}",
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
