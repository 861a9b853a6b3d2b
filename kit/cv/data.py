"""What the fold strategies train on: features per TTA variant, labels and the head's extras.

Rows are training images in image-table order; a fold's training rows are every row outside its
`val_index`. Validation rows never enter a fold's training, in any view
(`fold_training_rows`), and pseudo-labelled rows come from the test set only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kit.cv.task import FoldTask
from kit.data.tta import map_boxes
from kit.models.stream import Inputs, concat, input_bytes
from kit.models.train import TrainView

IN_MEMORY_BYTES = 512 * 2**20
"""Below this, a whole table of (pooled) features, or a fold's training rows, is held in memory;
above it, rows are read from the memory-mapped feature cache batch by batch
(`kit.features.cache.FeatureRows`)."""


class RowView:
    """Rows `index` of a lazy row source, still lazy: indexing reads only the rows asked for."""

    def __init__(self, base, index: np.ndarray) -> None:
        self._base, self._index = base, np.asarray(index)
        self.shape = (len(self._index), *base.shape[1:])
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: np.ndarray | slice) -> np.ndarray:
        return self._base[self._index[index]]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        array = self[np.arange(len(self))]
        return array if dtype is None else array.astype(dtype)


def rows_of(x, index: np.ndarray):
    """Rows `index` of an array (a new array) or of a lazy row source (a lazy view)."""
    return x[index] if isinstance(x, np.ndarray) else RowView(x, index)


class StackedRows:
    """Row sources one after another, still lazy: indexing reads only the rows asked for."""

    def __init__(self, parts: Sequence) -> None:
        self._parts = list(parts)
        self._offsets = np.cumsum([0] + [len(p) for p in self._parts])
        self.shape = (int(self._offsets[-1]), *self._parts[0].shape[1:])
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: np.ndarray | slice) -> np.ndarray:
        index = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        owner = np.searchsorted(self._offsets, index, side="right") - 1
        out = np.empty((len(index), *self.shape[1:]), dtype=np.float32)
        for number in np.unique(owner):
            at = np.flatnonzero(owner == number)
            out[at] = self._parts[number][index[at] - self._offsets[number]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        array = self[np.arange(len(self))]
        return array if dtype is None else array.astype(dtype)


def stack_rows(parts: list[Inputs]) -> Inputs:
    """Rows of several inputs one after another: a new array where every part is an array,
    else lazy (`StackedRows`); dicts of inputs key by key."""
    if isinstance(parts[0], Mapping):
        return {name: stack_rows([p[name] for p in parts]) for name in parts[0]}
    if all(isinstance(p, np.ndarray) for p in parts):
        return concat(parts)
    return StackedRows(parts)


@dataclass(frozen=True, kw_only=True)
class BoxGeometry:
    """What a box head needs to use the flip and crop views of its images.

    `views` are the TTA variants (kit.data.tta) the box head trains on, the plain view first; their
    features are in `EnsembleData.x_train`, and each image's box is moved into every view
    (`kit.data.tta.map_boxes`). Predicted boxes are averaged over `EnsembleData.variants`, each
    brought back to the plain view (`kit.data.tta.unmap_boxes`). Boxes are in pixels of
    `input_size`; the sizes are each image's stored (width, height), where crops are cut.
    """

    input_size: tuple[int, int]
    train_sizes: np.ndarray
    test_sizes: np.ndarray
    views: tuple[str, ...] = ("plain",)


@dataclass(frozen=True, kw_only=True)
class EnsembleData:
    """Features per TTA variant (first variant is the plain pass used for training): arrays, or
    lazy row sources read from the feature cache batch by batch (`kit.features.cache.FeatureRows`).

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
            x = rows_of(x, index)
            meta = None if meta is None else meta[index]
        return x if meta is None else {"features": x, "meta": meta}


@dataclass(frozen=True, kw_only=True)
class PseudoRows:
    """Test rows joining one fold's training data, with the labels the fold's own first-stage
    model gave them (never a model that saw the fold's validation rows)."""

    index: np.ndarray  # rows of the test set
    labels: np.ndarray


@dataclass(frozen=True, kw_only=True)
class FoldRows:
    """What one fold trains on: inputs, labels, box targets (box heads) and, for box heads
    with `BoxGeometry.views`, the other views of the fold's training images."""

    x: Inputs
    y: np.ndarray
    boxes: np.ndarray | None = None
    views: tuple[TrainView, ...] = ()

    @property
    def nbytes(self) -> int:
        """Bytes these rows take in memory: every view's inputs and the box targets."""
        extra = 0 if self.boxes is None else self.boxes.nbytes
        return input_bytes(self.x) + sum(input_bytes(v.x) for v in self.views) + extra

    @property
    def streamed(self) -> bool:
        """Whether a fit reads these rows batch by batch: above `IN_MEMORY_BYTES`."""
        return self.nbytes > IN_MEMORY_BYTES


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
        x = stack_rows([x, data.inputs("test", plain, pseudo.index)])
        y = np.concatenate([y, pseudo.labels])
        if boxes is not None:
            boxes = np.concatenate([boxes, np.zeros((len(pseudo.index), boxes.shape[1]),
                                                    boxes.dtype)])
    return FoldRows(x=x, y=y, boxes=boxes, views=tuple(views))


__all__ = ["IN_MEMORY_BYTES", "BoxGeometry", "EnsembleData", "FoldRows", "PseudoRows",
           "RowView", "StackedRows", "fold_training_rows", "rows_of", "stack_rows"]
