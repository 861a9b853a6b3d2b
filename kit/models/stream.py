"""A fit's rows read batch by batch: rows of arrays and lazy row sources, fed to Keras.

Inputs are an array, a lazy row source (anything with `len`, `shape`, `dtype` and
`x[int array]` returning those rows as an array, such as `kit.features.cache.FeatureRows` or
`kit.cv.data.RowView`), or a dict of those for multi-input heads (`features`, `meta`); targets
are an array or a dict of arrays (`probs`, `box`). A fit's rows are one or more `Part`s: rows
`index` of one such input with its targets (a box head's other views are parts of their own).

`row_batches` wraps the parts in a `keras.utils.PyDataset` that reads only the rows of the batch
Keras asks for, each part's rows in increasing order (the memory-mapped cache is read forwards),
in an order drawn from its seed and drawn again every epoch. Memory then grows with the batch
size, not with the dataset.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Inputs = np.ndarray | Mapping[str, np.ndarray]


def take(x: Inputs, index: np.ndarray) -> Inputs:
    """Rows `index` of one array or of every array of a dict of inputs."""
    if isinstance(x, Mapping):
        return {name: value[index] for name, value in x.items()}
    return x[index]


def concat(parts: list[Inputs]) -> Inputs:
    """Rows of several inputs (arrays, or dicts of arrays with the same keys) one after another."""
    if isinstance(parts[0], Mapping):
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return np.concatenate(parts)


def n_rows(x: Inputs) -> int:
    if isinstance(x, Mapping):
        return len(next(iter(x.values())))
    return len(x)


def input_bytes(x: Inputs) -> int:
    """Bytes the rows of `x` (an array, a lazy row source or a dict of those) take in memory."""
    if isinstance(x, Mapping):
        return sum(input_bytes(value) for value in x.values())
    return int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize


@dataclass(frozen=True, kw_only=True)
class Part:
    """Rows `index` of inputs `x`, with the targets of those rows in `targets` (same rows as x)."""

    x: Any
    targets: Any
    index: np.ndarray


def read(parts: Sequence[Part], positions: np.ndarray) -> tuple[Inputs, Any]:
    """Inputs and targets of `positions` in the parts' rows laid end to end, part by part and
    each part's rows in increasing order (the order of rows within a batch is immaterial)."""
    offsets = np.cumsum([0] + [len(p.index) for p in parts])
    owner = np.searchsorted(offsets, positions, side="right") - 1
    xs, ts = [], []
    for number in np.unique(owner):
        part = parts[number]
        rows = np.sort(part.index[positions[owner == number] - offsets[number]])
        xs.append(take(part.x, rows))
        ts.append(take(part.targets, rows))
    if len(xs) == 1:
        return xs[0], ts[0]
    return concat(xs), concat(ts)


class Batches:
    """The batches of a fit's parts: in order, or (with `seed`) in a seeded order drawn again
    at every `on_epoch_end`, so epoch `e` of a seed is always the same."""

    def __init__(self, parts: Sequence[Part], *, batch_size: int, seed: int | None = None
                 ) -> None:
        self._parts = list(parts)
        self._n = sum(len(p.index) for p in self._parts)
        if not self._n:
            raise ValueError("Batches needs at least one row; received parts with no rows")
        self._batch_size, self._seed, self._epoch = batch_size, seed, 0
        self._order = self._draw()

    def _draw(self) -> np.ndarray:
        if self._seed is None:
            return np.arange(self._n)
        return np.random.default_rng([self._seed, self._epoch]).permutation(self._n)

    def __len__(self) -> int:
        return -(-self._n // self._batch_size)

    def __getitem__(self, batch: int) -> tuple[Inputs, Any]:
        if not 0 <= batch < len(self):
            raise IndexError(f"batch {batch} of {len(self)}")
        size = self._batch_size
        return read(self._parts, self._order[batch * size:(batch + 1) * size])

    def on_epoch_end(self) -> None:
        if self._seed is not None:
            self._epoch += 1
            self._order = self._draw()


@functools.cache
def _dataset_class() -> type:
    from kit.core.tf_runtime import keras

    class RowBatches(keras().utils.PyDataset):
        """`Batches` as a Keras dataset, read in the training thread (no workers)."""

        def __init__(self, batches: Batches) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.batches = batches

        def __len__(self) -> int:
            return len(self.batches)

        def __getitem__(self, batch: int) -> tuple[Inputs, Any]:
            return self.batches[batch]

        def on_epoch_end(self) -> None:
            self.batches.on_epoch_end()

    return RowBatches


def row_batches(parts: Sequence[Part], *, batch_size: int, seed: int | None = None) -> Any:
    """A `keras.utils.PyDataset` of `Batches(parts, batch_size=..., seed=...)`."""
    return _dataset_class()(Batches(parts, batch_size=batch_size, seed=seed))


__all__ = ["Batches", "Inputs", "Part", "concat", "input_bytes", "n_rows", "read", "row_batches",
           "take"]
