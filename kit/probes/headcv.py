"""The run's own head, trained on its cached features under several fold sets in one pass.

A probe's small model may fail to learn what the run's head learns (on a State Farm layout the
logistic regression stayed at the class prior while the run's head recognised the driver), so
the groups and near-duplicate probes measure the CV gap with the head the run trained: its
architecture (the dense head: pooled features -> Dense(hidden) -> BatchNorm -> ReLU -> Dropout
-> softmax), pooling, learning rate, epochs, patience, batch size, schedule and seed, read from
the run record's recipe, trained by the kit's fused trainer (`kit.models.fused`) exactly as a
run's fused folds are: per branch its fold's training rows, an early-stopping split inside them
(`kit.models.train.inner_split`), its own seed. Every fold of every fold set (stratified K-fold,
then one K-fold per grouping, each repeated with other folds and seeds) is one branch of ONE
fused pass; branch f of each fold set of one repeat starts from the same seed, so within a
repeat the fold sets differ only in which rows they hold out.

Image features only: a `metadata-merge` head trains without its metadata (the question is what
the image content lets the head learn about the group). Heads that cannot train fused (`fcn`,
`bbox`, `crop`) and losses or schedules the fused trainer lacks are replaced by the dense head
with the run's other settings; `ProbeHead.note` says so, and the report prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kit.core.errors import InputError

__all__ = ["REPEAT_STRIDE", "FoldPlan", "HeadPredictions", "ProbeHead", "fold_branches",
           "head_predictions", "pooled_reader", "scheme_predictions"]

Reader = Callable[[np.ndarray], np.ndarray]  # row indexes -> (m, d) pooled float32 features
REPEAT_STRIDE = 100  # a repeat's training seeds: the run's fold seeds + repeat * 100


def _defaults() -> dict:
    """What a recipe key absent from an old run record meant: the head's and trainer's own
    defaults."""
    from kit.models.heads import HeadConfig
    from kit.models.train import TrainConfig

    head, train = HeadConfig(), TrainConfig()
    return {"head": "dense", "pooling": head.pooling, "hidden": head.hidden,
            "dropout": head.dropout, **{k: getattr(train, k) for k in (
                "learning_rate", "epochs", "patience", "batch_size", "schedule", "seed",
                "loss")}}


@dataclass(frozen=True, kw_only=True)
class ProbeHead:
    """The head the probes train: the run's dense head and its training settings."""

    pooling: str
    hidden: int
    dropout: float
    learning_rate: float
    epochs: int
    patience: int
    batch_size: int
    plateau: bool
    seed: int
    note: str = ""

    @classmethod
    def from_recipe(cls, recipe: Mapping) -> ProbeHead:
        """The probe head of a run record's recipe (keys absent from old records: defaults)."""
        from kit.cv.fused import FUSED_HEADS, FUSED_SCHEDULES

        r = {**_defaults(), **{k: v for k, v in recipe.items() if v is not None}}
        notes = []
        if r["head"] not in FUSED_HEADS:
            notes.append(f"the run's {r['head']} head cannot train fused: a dense head with its "
                         "settings")
        if r["head"] == "metadata-merge":
            notes.append("without its metadata")
        if r["loss"] != "categorical_crossentropy":
            notes.append(f"categorical cross-entropy, not the run's {r['loss']}")
        if r["schedule"] not in FUSED_SCHEDULES:
            notes.append(f"ReduceLROnPlateau, not the run's {r['schedule']} schedule")
        return cls(pooling=str(r["pooling"]), hidden=int(r["hidden"]),
                   dropout=float(r["dropout"]), learning_rate=float(r["learning_rate"]),
                   epochs=int(r["epochs"]), patience=int(r["patience"]),
                   batch_size=int(r["batch_size"]), plateau=r["schedule"] != "constant",
                   seed=int(r["seed"]), note="; ".join(notes))

    def describe(self) -> str:
        """One line for the report: what was trained."""
        text = (f"the run's dense head (hidden {self.hidden}, dropout {self.dropout:g}, "
                f"{self.pooling} pooling, lr {self.learning_rate:g}, up to {self.epochs} epochs, "
                f"patience {self.patience}, {'plateau' if self.plateau else 'constant'} "
                f"schedule, seed {self.seed}), trained fused")
        return f"{text} ({self.note})" if self.note else text

    def config(self, n_features: int, n_classes: int, n_folds: int):
        """The fused trainer's configuration, as `kit.cv.fused.FusedHeads` builds it."""
        from kit.cv.fused import fused_batch_size
        from kit.models.fused import FusedConfig

        return FusedConfig(n_features=n_features, n_classes=n_classes, hidden=self.hidden,
                           dropout=self.dropout, learning_rate=self.learning_rate,
                           epochs=self.epochs, patience=self.patience,
                           batch_size=fused_batch_size(self.batch_size, n_folds),
                           plateau=self.plateau)


def pooled_reader(rows, pooling: str, index: np.ndarray) -> tuple[Reader, int]:
    """A reader of the pooled features of `rows[index]` (rows: an array or lazy `FeatureRows`)
    and its width. The pooled table is held in memory below `kit.cv.data.IN_MEMORY_BYTES`,
    pooled a chunk at a time; above it each batch is read and pooled from the cache."""
    from kit.cv.data import IN_MEMORY_BYTES
    from kit.cv.fused import pool
    from kit.probes.runs import pooled_in_chunks

    index = np.asarray(index, np.int64)
    if not len(index):
        raise InputError("pooled_reader needs at least one row; received none")
    width = int(pool(np.asarray(rows[index[:1]]), pooling).shape[1])
    if len(index) * width * 4 > IN_MEMORY_BYTES:
        return (lambda at: pool(np.asarray(rows[index[np.asarray(at)]]), pooling)), width
    table = pooled_in_chunks(_Subset(rows, index), lambda x: pool(x, pooling))
    return (lambda at: table[np.asarray(at)]), width


class _Subset:
    """Rows `index` of a row source, indexable like an array (read on demand)."""

    def __init__(self, rows, index: np.ndarray) -> None:
        self._rows, self._index = rows, index

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, at: np.ndarray) -> np.ndarray:
        return np.asarray(self._rows[self._index[np.asarray(at)]])


def fold_branches(fold_sets: Sequence[np.ndarray], y: np.ndarray, *, seed: int,
                  repeats: Sequence[int] | None = None):
    """The fused `Branches`: one per fold of each fold set, in order, with its fold's training
    rows split into fit and early-stopping rows (`inner_split`, the run's split), labels on
    those rows only. Branch f of a fold set of repeat 0 has the seed of the run's fold f;
    repeat r adds ``r * REPEAT_STRIDE`` (`repeats`: the repeat of each fold set, default 0)."""
    from kit.cv.task import SEED_STRIDE
    from kit.models.fused import Branches
    from kit.models.train import inner_split

    y = np.asarray(y, np.int64)
    repeats = list(repeats) if repeats is not None else [0] * len(fold_sets)
    if len(repeats) != len(fold_sets):
        raise InputError(f"repeats must give one repeat per fold set; received {len(repeats)} "
                         f"for {len(fold_sets)} fold sets")
    plan = [(s, int(f)) for s, folds in enumerate(fold_sets) for f in np.unique(folds)]
    n = len(y)
    fit, stop = np.zeros((len(plan), n), bool), np.zeros((len(plan), n), bool)
    labels = np.full((len(plan), n), -1, np.int64)
    seeds = tuple(seed * SEED_STRIDE + repeats[s] * REPEAT_STRIDE + f for s, f in plan)
    for b, (s, f) in enumerate(plan):
        rows = np.flatnonzero(np.asarray(fold_sets[s]) != f)
        fit_at, stop_at = inner_split(y[rows], seed=seeds[b])
        fit[b, rows[fit_at]], stop[b, rows[stop_at]] = True, True
        labels[b, rows] = y[rows]
    return Branches(fit=fit, stop=stop, labels=labels, seeds=seeds)


def scheme_predictions(probs: np.ndarray, fold_sets: Sequence[np.ndarray]) -> list[np.ndarray]:
    """(n, k) out-of-fold probabilities per fold set from (B, n, k) branch predictions laid out
    as `fold_branches` lays the branches out: each row from the branch that held it out."""
    out, b = [], 0
    for folds in fold_sets:
        folds = np.asarray(folds)
        oof = np.zeros(probs.shape[1:], np.float64)
        for f in np.unique(folds):
            at = folds == f
            oof[at] = probs[b, at]
            b += 1
        out.append(oof)
    return out


def _per_fold_set(probs: np.ndarray, fold_sets: Sequence[np.ndarray]) -> list[np.ndarray]:
    """(n_test, k) per fold set: the mean of its branches' (B, n_test, k) predictions."""
    out, b = [], 0
    for folds in fold_sets:
        k = len(np.unique(folds))
        out.append(probs[b:b + k].mean(axis=0))
        b += k
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class HeadPredictions:
    """Out-of-fold probabilities per fold set, and per fold set the mean of its fold heads on
    the test rows (as the run's submission averages its fold heads)."""

    oof: tuple[np.ndarray, ...]
    test: tuple[np.ndarray, ...] | None
    epochs_run: int
    n_branches: int


@dataclass(frozen=True, kw_only=True)
class FoldPlan:
    """The fold sets to train (a fold per row each) and the repeat each belongs to."""

    fold_sets: tuple[np.ndarray, ...]
    repeats: tuple[int, ...]


def head_predictions(train: Reader, y: np.ndarray, plan: FoldPlan, head: ProbeHead, *,
                     n_classes: int, n_features: int,
                     test: tuple[Reader, int] | None = None) -> HeadPredictions:
    """Train `head` on every fold of every fold set in one fused pass (see the module docstring).

    Args:
        train: Reader of the training rows' pooled features (row i is `y[i]`'s image).
        y: (n,) class indexes.
        plan: The fold sets (the first: stratified, whose fold count sets the batch size) and
            their repeats.
        head: The head and its training settings.
        n_classes, n_features: Output and input widths.
        test: Optional reader of the test rows and their count.
    """
    from kit.models.fused import predict_rows, train_branches

    sets = plan.fold_sets
    branches = fold_branches(sets, y, seed=head.seed, repeats=plan.repeats)
    config = head.config(n_features, n_classes, len(np.unique(sets[0])))
    graph, result = train_branches(train, branches, config, seed=min(branches.seeds))
    probs = predict_rows(graph, train, np.arange(len(y)))
    on_test = None
    if test is not None and test[1]:
        on_test = tuple(_per_fold_set(predict_rows(graph, test[0], np.arange(test[1])), sets))
    return HeadPredictions(oof=tuple(scheme_predictions(probs, sets)), test=on_test,
                           epochs_run=result.epochs_run, n_branches=len(branches.seeds))
