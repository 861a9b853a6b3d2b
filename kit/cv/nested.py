"""Out-of-fold predictions of an ensemble: what a K-model average scores on rows none of its
models saw.

A fold's out-of-fold (OOF) rows are predicted by one model, but the submission averages K. The
average is softer and usually better than any one model, so a CV of single models misses the
averaging gain, and a calibration fitted on single-model OOF rows over-corrects the average
(fisheries demo: a temperature of 2.0 fitted on grouped OOF rows made the private score worse).

Nested folds measure the average itself. For each outer fold j, the inner heads (j, k), k != j,
each train on the folds other than j and k (with the usual early-stopping split inside those
rows) and predict fold j; their mean is fold j's ensemble OOF row: an average of K - 1 models,
none of which saw the row or, with group folds, its group. All K(K - 1) inner heads train in one
fused pass (`kit.models.fused`), so this costs a few head fits, never a feature pass.

Each inner head alone also gives an OOF row: taking, for every outer fold, its r-th inner head
gives K - 1 full sets of single-model OOF rows from models trained on K - 2 folds. Beside the
run's own OOF rows (single models trained on K - 1 folds), they say how much the score moves with
the training set's size, which the ensemble rows (K - 2 folds of training each) would otherwise
carry into the expected score as pessimism (`kit.app.honesty`).

Both are saved in the run folder (`seed<S>/nested_oof.npz`) and loaded on a re-run.

The inner heads' first layers, with their optimiser state, take ``K(K - 1) x width x hidden x 4``
floats: at flatten features (width 28,224, five folds, hidden 256) that is 2.3 GB, more than the
run's whole bounded-memory budget. Above `NESTED_MAX_BYTES` (`fits_nested`) the caller falls back
to the run's own OOF rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kit.core.atomic import atomic_path
from kit.core.errors import InputError
from kit.cv.fused import FusedHeads, _Rows, fused_batch_size
from kit.cv.task import SEED_STRIDE
from kit.models.train import inner_split

NESTED_SEED_OFFSET = 500  # inner seeds: seed * SEED_STRIDE + 500 + pair (the outer folds use 0..K-1)
MIN_FOLDS = 3  # an inner head trains on K - 2 folds
NESTED_MAX_BYTES = 2**30
"""The most memory the inner heads' weights and optimiser state may take (see the docstring)."""


def nested_bytes(*, n_folds: int, width: int, hidden: int) -> int:
    """Bytes of the K(K - 1) inner heads' first layers: weights, two Adam moments and the
    best-weights snapshot (the rest of a head is negligible beside them)."""
    return n_folds * (n_folds - 1) * width * hidden * 4 * 4


def fits_nested(fused: FusedHeads, n_folds: int) -> bool:
    """Whether the ensemble OOF rows fit `NESTED_MAX_BYTES` for these heads and folds."""
    width = _Rows(data=fused.data, pooling=fused.head.pooling).width
    return nested_bytes(n_folds=n_folds, width=width, hidden=fused.head.hidden) \
        <= NESTED_MAX_BYTES


def nested_pairs(folds: np.ndarray) -> list[tuple[int, int]]:
    """(outer, inner) fold pairs, outer first: every ordered pair of distinct folds."""
    ids = [int(f) for f in np.unique(folds)]
    return [(j, k) for j in ids for k in ids if k != j]


def inner_seed(seed: int, index: int) -> int:
    """The training seed of the `index`-th inner head of seed `seed`."""
    return seed * SEED_STRIDE + NESTED_SEED_OFFSET + index % (SEED_STRIDE - NESTED_SEED_OFFSET)


def nested_branches(folds: np.ndarray, y: np.ndarray, *, seed: int):
    """The fused `Branches` of every inner head: fit and early-stopping rows from the folds
    other than its pair, labels there only (so no inner head can read fold j's labels)."""
    from kit.models.fused import Branches

    folds, y = np.asarray(folds), np.asarray(y)
    pairs = nested_pairs(folds)
    n = len(y)
    fit, stop = np.zeros((len(pairs), n), bool), np.zeros((len(pairs), n), bool)
    labels = np.full((len(pairs), n), -1, np.int64)
    seeds = tuple(inner_seed(seed, i) for i in range(len(pairs)))
    for i, (j, k) in enumerate(pairs):
        rows = np.flatnonzero((folds != j) & (folds != k))
        fit_at, stop_at = inner_split(y[rows], seed=seeds[i])
        fit[i, rows[fit_at]], stop[i, rows[stop_at]] = True, True
        labels[i, rows] = y[rows]
    return Branches(fit=fit, stop=stop, labels=labels, seeds=seeds), pairs


def average_by_outer(probs: np.ndarray, pairs: list[tuple[int, int]], folds: np.ndarray
                     ) -> np.ndarray:
    """(n, k) ensemble OOF rows from (B, n, k) inner predictions: each row the mean of the
    inner heads whose outer fold is the row's fold."""
    out = np.zeros(probs.shape[1:], np.float64)
    for j in np.unique(folds):
        members = [b for b, (outer, _) in enumerate(pairs) if outer == j]
        at = np.flatnonzero(folds == j)
        out[at] = probs[members][:, at].mean(axis=0)
    return out


def single_by_outer(probs: np.ndarray, pairs: list[tuple[int, int]], folds: np.ndarray
                    ) -> np.ndarray:
    """(K - 1, n, k) single-model OOF rows from (B, n, k) inner predictions: set r holds, for
    each outer fold, its r-th inner head's predictions of that fold's rows."""
    ids = np.unique(folds)
    out = np.zeros((len(ids) - 1, *probs.shape[1:]), np.float64)
    for j in ids:
        members = [b for b, (outer, _) in enumerate(pairs) if outer == j]
        at = np.flatnonzero(folds == j)
        out[:, at] = probs[members][:, at]
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class NestedRows:
    """The ensemble OOF rows (n, k) and the inner heads' single-model OOF sets (K - 1, n, k)."""

    ensemble: np.ndarray
    singles: np.ndarray


def ensemble_oof(fused: FusedHeads, folds: np.ndarray, *, seed: int, path: Path) -> NestedRows:
    """The run's ensemble OOF rows and the inner heads' single rows (see the module docstring),
    loaded from `path` (an `.npz`) when a previous run of this configuration saved them.

    Raises:
        InputError: fewer than `MIN_FOLDS` folds.
    """
    if path.is_file():
        with np.load(path) as saved:
            return NestedRows(ensemble=saved["ensemble"], singles=saved["singles"])
    folds = np.asarray(folds)
    n_folds = len(np.unique(folds))
    if n_folds < MIN_FOLDS:
        raise InputError(f"ensemble OOF predictions need at least {MIN_FOLDS} folds; received "
                         f"{n_folds}")
    from kit.models.fused import predict_rows, train_branches

    data = fused.data
    branches, pairs = nested_branches(folds, data.y_train, seed=seed)
    rows = _Rows(data=data, pooling=fused.head.pooling)
    config = replace(fused._config(rows, n_folds),
                     batch_size=fused_batch_size(fused.train.batch_size, n_folds, held_out=2))
    graph, _ = train_branches(rows.reader(data.variants[0]), branches, config,
                              seed=inner_seed(seed, 0))
    train_rows = np.arange(len(data.y_train))
    probs = np.mean([predict_rows(graph, rows.reader(v), train_rows) for v in data.variants],
                    axis=0)
    out = NestedRows(ensemble=average_by_outer(probs, pairs, folds),
                     singles=single_by_outer(probs, pairs, folds))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, ensemble=out.ensemble, singles=out.singles)
    return out


__all__ = ["MIN_FOLDS", "NESTED_MAX_BYTES", "NestedRows", "average_by_outer", "ensemble_oof",
           "fits_nested", "nested_branches", "nested_bytes", "nested_pairs", "single_by_outer"]
