"""The fused heads strategy: every (seed, fold) dense head of a run trained in one pass.

`FusedHeads` takes all of a run's fold tasks at once (the fold driver hands them over together
on one machine): finished folds are loaded, the others become branches of
`kit.models.fused.train_branches`, each with exactly the rows, labels, early-stopping split and
seed the per-fold path (`kit.cv.heads.run_fold`) would give it. Each fold then writes the same
files as the per-fold path (weights loadable by `load_head`, `oof.npy`, `test.npy`,
`history.json`, `done.json` last, which says `"training": "fused"`).

It covers the `dense` and `metadata-merge` heads (the metadata joins the pooled features, as in
the head), the categorical cross-entropy and the `plateau` and `constant` schedules on cached
features; anything else trains per fold (`fused_reason` says why).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from kit.cv.data import IN_MEMORY_BYTES, EnsembleData, PseudoRows
from kit.cv.store import load_fold, prepare_fold, save_fold
from kit.cv.task import FoldResult, FoldTask
from kit.models.heads import HeadConfig, HeadSpec
from kit.models.train import INNER_FRACTION, TrainConfig, inner_split
from kit.scoring.metrics import log_loss

FUSED_HEADS = ("dense", "metadata-merge")
FUSED_LOSSES = ("categorical_crossentropy",)
FUSED_SCHEDULES = ("plateau", "constant")


def fused_reason(*, head: str, loss: str, schedule: str, mode: str) -> str | None:
    """Why a run's heads cannot train fused (None: they can)."""
    if mode != "features":
        return f"--mode {mode} trains the base per fold"
    if head not in FUSED_HEADS:
        return f"the {head} head trains per fold (fused: {', '.join(FUSED_HEADS)})"
    if loss not in FUSED_LOSSES:
        return f"the {loss} loss trains per fold"
    if schedule not in FUSED_SCHEDULES:
        return f"the {schedule} schedule trains per fold"
    return None


def pool(x: np.ndarray, pooling: str) -> np.ndarray:
    """The head's pooling of (n, h, w, c) maps as float32 (n, d); vectors as they are."""
    if x.ndim == 2:
        return x.astype(np.float32, copy=False)
    if pooling == "flatten":
        return x.reshape(len(x), -1).astype(np.float32, copy=False)
    reduce = np.mean if pooling == "avg" else np.max
    return reduce(x, axis=(1, 2)).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class _Rows:
    """The row space of a fused fit: the training rows, then the test rows, each row the pooled
    features (and metadata) the head reads. Read lazily from the feature cache per batch, or
    held as one table where it is small (`kit.cv.data.IN_MEMORY_BYTES`)."""

    data: EnsembleData
    pooling: str

    @property
    def n_train(self) -> int:
        return len(self.data.y_train)

    @property
    def n_rows(self) -> int:
        return self.n_train + self.data.n_test

    def _read(self, variant: str, index: np.ndarray) -> np.ndarray:
        data, n = self.data, self.n_train
        parts = ((index < n, data.x_train[variant], data.meta_train, 0),
                 (index >= n, data.x_test[variant], data.meta_test, n))
        out = None
        for chosen, source, meta, offset in parts:
            at = np.flatnonzero(chosen)
            if not len(at):
                continue
            rows = index[at] - offset
            block = pool(np.asarray(source[rows]), self.pooling)
            if meta is not None:
                block = np.concatenate([block, np.asarray(meta, np.float32)[rows]], axis=1)
            if out is None:
                out = np.empty((len(index), block.shape[1]), np.float32)
            out[at] = block
        return out if out is not None else np.zeros((0, self.width), np.float32)

    @property
    def width(self) -> int:
        return int(self._read(self.data.variants[0], np.array([0])).shape[1])

    def reader(self, variant: str):
        """Row indexes -> (m, width) float32; a whole table when it fits in memory."""
        if self.n_rows * self.width * 4 > IN_MEMORY_BYTES:
            return lambda index: self._read(variant, np.asarray(index))
        table = np.concatenate([self._read(variant, np.arange(i, min(i + 2048, self.n_rows)))
                                for i in range(0, self.n_rows, 2048)])
        return lambda index: table[index]


def _branches(tasks: Sequence[FoldTask], pseudo: Sequence[PseudoRows | None], y: np.ndarray,
              n_rows: int):
    """Fit and stop masks and labels per task: the per-fold path's rows, exactly."""
    from kit.models.fused import Branches

    b = len(tasks)
    fit, stop = np.zeros((b, n_rows), bool), np.zeros((b, n_rows), bool)
    labels = np.full((b, n_rows), -1, np.int64)
    n = len(y)
    for i, (task, extra) in enumerate(zip(tasks, pseudo, strict=True)):
        rows = np.setdiff1d(np.arange(n), task.val_index)
        row_labels = y[rows]
        if extra is not None and len(extra.index):
            rows = np.concatenate([rows, n + extra.index])
            row_labels = np.concatenate([row_labels, extra.labels])
        fit_at, stop_at = inner_split(row_labels, seed=task.training_seed)
        fit[i, rows[fit_at]], stop[i, rows[stop_at]] = True, True
        labels[i, rows] = row_labels
    return Branches(fit=fit, stop=stop, labels=labels,
                    seeds=tuple(t.training_seed for t in tasks))


def fused_batch_size(batch_size: int, n_folds: int, *, held_out: int = 1) -> int:
    """Rows per fused step so that each branch sees about `batch_size` of its own fit rows per
    step, as its per-fold fit would: a fold fits (1 - 1/K) x (1 - the early-stopping share) of
    the rows (an inner head of `kit.cv.nested`, which holds out 2 folds: 1 - 2/K). Fixed from
    the fold count alone, never from labels (see kit.models.fused)."""
    share = max(1 - held_out / max(n_folds, held_out + 1), 1 / max(n_folds, 2)) \
        * (1 - INNER_FRACTION)
    return max(batch_size, int(round(batch_size / share)))


def _keras_head(build: HeadSpec, data: EnsembleData, head: HeadConfig):
    """One Keras head of the run's architecture, to write each branch's weights with."""
    if data.meta_train is not None:
        head = replace(head, meta_dim=int(data.meta_train.shape[1]))
    return build(data.x_train[data.variants[0]].shape[1:], data.n_classes, head)


def _save_branch(model, weights: dict[str, np.ndarray], b: int) -> None:
    model.get_layer("dense").set_weights([weights["dense"][b]])
    model.get_layer("bn").set_weights([weights[k][b] for k in ("gamma", "beta", "mean", "var")])
    model.get_layer("probs").set_weights([weights["probs"][b], weights["bias"][b]])


@dataclass(kw_only=True)
class FusedHeads:
    """The fold driver's fused path: `fused(tasks, pseudo)` -> one `FoldResult` per task."""

    data: EnsembleData
    build: HeadSpec
    head: HeadConfig
    train: TrainConfig

    def __call__(self, tasks: Sequence[FoldTask],
                 pseudo: Sequence[PseudoRows | None] | None = None) -> list[FoldResult]:
        pseudo = list(pseudo) if pseudo is not None else [None] * len(tasks)
        done = {id(t): load_fold(t) for t in tasks if t.files.is_finished()}
        todo = [(t, p) for t, p in zip(tasks, pseudo, strict=True) if id(t) not in done]
        if todo:  # the batch size and order come from all the tasks, done or not: a resumed
            # fold trains exactly as it would have among the others
            n_folds = len({t.fold for t in tasks})
            seed = min(t.training_seed for t in tasks)
            done.update(zip((id(t) for t, _ in todo), self._train(todo, n_folds, seed),
                            strict=True))
        return [done[id(t)] for t in tasks]

    def _config(self, rows: _Rows, n_folds: int):
        from kit.models.fused import FusedConfig

        return FusedConfig(
            n_features=rows.width,
            n_classes=self.data.n_classes, hidden=self.head.hidden,
            dropout=float(self.head.dropout), learning_rate=float(self.train.learning_rate),
            epochs=self.train.epochs, patience=self.train.patience,
            batch_size=fused_batch_size(self.train.batch_size, n_folds),
            plateau=self.train.schedule == "plateau")

    def _train(self, todo: list[tuple[FoldTask, PseudoRows | None]], n_folds: int,
               seed: int) -> list[FoldResult]:
        from kit.models.fused import predict_rows, train_branches

        start = time.perf_counter()
        tasks = [t for t, _ in todo]
        for task in tasks:
            prepare_fold(task)
        rows = _Rows(data=self.data, pooling=self.head.pooling)
        n_all = rows.n_rows
        pseudo = [p for _, p in todo]
        # the row space: the training rows, and the test rows only for a pseudo-label stage
        n_rows = n_all if any(p is not None for p in pseudo) else len(self.data.y_train)
        branches = _branches(tasks, pseudo, self.data.y_train, n_rows)
        graph, result = train_branches(rows.reader(self.data.variants[0]), branches,
                                       self._config(rows, n_folds), seed=seed)
        everything = np.arange(n_all)
        probs = np.mean([predict_rows(graph, rows.reader(v), everything)
                         for v in self.data.variants], axis=0)
        seconds = (time.perf_counter() - start) / len(tasks)
        model = _keras_head(self.build, self.data, self.head)
        return [self._finish(model, task, pseudo, b, probs, result, seconds)
                for b, (task, pseudo) in enumerate(todo)]

    def _finish(self, model, task: FoldTask, pseudo: PseudoRows | None, b: int,
                probs: np.ndarray, result, seconds: float) -> FoldResult:
        n = len(self.data.y_train)
        oof, test = probs[b, task.val_index], probs[b, n:]
        score = log_loss(self.data.y_train[task.val_index], oof)
        _save_branch(model, result.weights, b)
        n_pseudo = None if pseudo is None else int(len(pseudo.index))
        save_fold(task, model=model, arrays={"oof": oof, "test": test},
                  history=result.histories[b], done={
                      "log_loss": score, "best_epoch": result.best_epochs[b],
                      "seconds": seconds, "training": "fused",
                      **({"n_pseudo": n_pseudo} if pseudo is not None else {})})
        return FoldResult(fold=task.fold, seed=task.seed, val_index=task.val_index, oof=oof,
                          test=test, log_loss=score, best_epoch=result.best_epochs[b],
                          seconds=seconds, resumed=False, n_pseudo=n_pseudo)


__all__ = ["FUSED_HEADS", "FusedHeads", "fused_batch_size", "fused_reason", "pool"]
