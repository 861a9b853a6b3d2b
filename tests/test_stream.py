"""Per-fold heads above the in-memory limit: rows read from the cache batch by batch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kit.cv.data import (
    BoxGeometry,
    EnsembleData,
    FoldRows,
    PseudoRows,
    StackedRows,
    fold_training_rows,
    stack_rows,
)
from kit.cv.driver import run_folds
from kit.cv.heads import HeadFolds, head_trainer
from kit.cv.task import fold_tasks
from kit.features.cache import FeatureKey, FeatureStore
from kit.models.heads import HeadConfig, head_registry
from kit.models.stream import Batches, Part, input_bytes, read
from kit.models.train import TrainConfig, TrainView
from kit.runs.layout import RunFolder
from kit.scoring.metrics import log_loss

CONFIG = TrainConfig(epochs=15, batch_size=16, learning_rate=1e-2, patience=5)
DENSE = HeadConfig(pooling="avg", hidden=16, dropout=0.1)
BBOX = HeadConfig(hidden=8, input_size=(48, 48))


class CountingRows:
    """An array read through `rows[index]`, remembering how many rows each read asked for
    (a read of the whole array, through `np.asarray`, counts as one read of every row)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array
        self.shape, self.ndim, self.dtype = array.shape, array.ndim, array.dtype
        self.indexes: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, index):
        index = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        self.indexes.append(index)
        return self._array[index]

    def __array__(self, dtype=None, copy=None):
        self.indexes.append(np.arange(len(self)))
        return self._array if dtype is None else self._array.astype(dtype)

    @property
    def reads(self) -> list[int]:
        return [len(index) for index in self.indexes]


def _dense_data(n: int = 60, n_test: int = 10, seed: int = 0, y: np.ndarray | None = None):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3 if y is None else y
    centers = rng.normal(size=(3, 2, 2, 4)) * 3
    x = centers[np.arange(n) % 3] + rng.normal(size=(n, 2, 2, 4))
    x_test = centers[np.arange(n_test) % 3] + rng.normal(size=(n_test, 2, 2, 4))
    flip = (x + 0.1 * rng.normal(size=x.shape)).astype(np.float32)  # a second TTA view
    flip_test = (x_test + 0.1 * rng.normal(size=x_test.shape)).astype(np.float32)
    return EnsembleData(variants=("plain", "hflip"),
                        x_train={"plain": x.astype(np.float32), "hflip": flip}, y_train=y,
                        x_test={"plain": x_test.astype(np.float32), "hflip": flip_test},
                        n_classes=3)


def _box_data(n: int = 48, seed: int = 0) -> EnsembleData:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 3, 3, 2)).astype(np.float32)
    x[:, 1, 1, 1] += 2 * y  # the class shows in the features
    boxes = np.zeros((n, 5), np.float32)
    boxes[:, :4] = 10 + 5 * x[:, 0, 0, :1] + rng.normal(size=(n, 4))
    boxes[:, 4] = y  # class 0 plays NoF: no box
    flipped = x[:, :, ::-1].copy()
    sizes = np.array([(96, 96)] * n)
    return EnsembleData(
        variants=("plain", "hflip"), x_train={"plain": x, "hflip": flipped}, y_train=y,
        x_test={"plain": x[:4], "hflip": flipped[:4]}, n_classes=2, boxes_train=boxes,
        box_geometry=BoxGeometry(input_size=(48, 48), train_sizes=sizes, test_sizes=sizes[:4],
                                 views=("plain", "hflip")))


def _cached(data: EnsembleData, folder: Path) -> EnsembleData:
    """`data` with its features read lazily from a feature cache, as `kit run` reads them."""
    n = len(data.y_train)
    digests = [f"d{i}" for i in range(n + data.n_test)]
    x_train, x_test = {}, {}
    for variant in data.variants:
        store = FeatureStore(folder, FeatureKey(backbone="b", weights="w", input_size=(8, 8),
                                                preprocess="p", variant=variant))
        store.append(digests, np.concatenate([data.x_train[variant], data.x_test[variant]]))
        x_train[variant], x_test[variant] = store.rows(digests[:n]), store.rows(digests[n:])
    return dataclasses.replace(data, x_train=x_train, x_test=x_test)


def _cv(data: EnsembleData, folds: np.ndarray, folder: Path, *, head: str = "dense",
        pseudo_label: float | None = None, config: HeadConfig | None = None,
        train: TrainConfig = CONFIG):
    """The per-fold path (no fused pass) through the one fold driver."""
    config = config or (DENSE if head == "dense" else BBOX)
    fit = HeadFolds(data=data, build=head_registry().get(head), head=config, train=train)
    return run_folds(fit, folds, data.y_train, n_classes=data.n_classes, seeds=(0,),
                     folder=RunFolder(folder), pseudo_label=pseudo_label)


def _count_streams(monkeypatch) -> list[int]:
    """Patch `row_batches` where the trainer calls it; the list grows by one per dataset."""
    import kit.models.train

    made: list[int] = []
    real = kit.models.train.row_batches

    def counted(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(kit.models.train, "row_batches", counted)
    return made


# ------------------------------------------------------------------------------- batches


def test_batches_cover_every_row_once_per_epoch_in_a_seeded_order_drawn_again_each_epoch():
    x = np.arange(10, dtype=np.float32)[:, None]
    parts = [Part(x=x, targets=x * 10, index=np.array([7, 1, 3])),
             Part(x=x + 100, targets=x, index=np.arange(5))]
    batches = Batches(parts, batch_size=3, seed=4)
    assert len(batches) == 3

    def epoch():
        got = [batches[i] for i in range(len(batches))]
        return np.concatenate([b[0] for b in got])[:, 0], np.concatenate([b[1] for b in got])

    rows, targets = epoch()
    assert sorted(rows) == [1, 3, 7, 100, 101, 102, 103, 104]
    assert np.array_equal(targets[:, 0], np.where(rows < 100, rows * 10, rows - 100))
    batches.on_epoch_end()
    again, _ = epoch()
    assert sorted(again) == sorted(rows) and not np.array_equal(again, rows)
    assert np.array_equal(Batches(parts, batch_size=3, seed=4)[0][0], batches_0(parts))
    in_order = Batches(parts, batch_size=8)
    assert list(in_order[0][0][:, 0]) == [1, 3, 7, 100, 101, 102, 103, 104]
    with pytest.raises(IndexError):
        in_order[1]
    with pytest.raises(ValueError, match="at least one row"):
        Batches([Part(x=x, targets=x, index=np.array([], int))], batch_size=2)


def batches_0(parts):
    """The first batch of epoch 0 of seed 4, drawn again from scratch."""
    order = np.random.default_rng([4, 0]).permutation(8)[:3]
    return read(parts, order)[0]


def test_a_batch_reads_each_part_once_in_increasing_row_order():
    features = CountingRows(np.arange(20, dtype=np.float32)[:, None])
    meta = np.arange(20, dtype=np.float32)[:, None] * -1
    x, t = read([Part(x={"features": features, "meta": meta}, targets=np.arange(20),
                      index=np.array([15, 2, 9, 4]))], np.array([3, 0, 2]))
    assert [list(i) for i in features.indexes] == [[4, 9, 15]]  # rows 4, 15 and 9, sorted
    assert list(x["features"][:, 0]) == [4, 9, 15] and list(x["meta"][:, 0]) == [-4, -9, -15]
    assert list(t) == [4, 9, 15]


def test_stacked_rows_read_lazily_what_a_concatenation_holds():
    a = np.arange(6, dtype=np.float32)[:, None]
    b = np.arange(10, 14, dtype=np.float32)[:, None]
    ca, cb = CountingRows(a), CountingRows(b)
    stacked = stack_rows([ca, cb])
    assert isinstance(stacked, StackedRows) and stacked.shape == (10, 1) and ca.reads == []
    index = np.array([8, 1, 6, 5])
    assert np.array_equal(stacked[index], np.concatenate([a, b])[index])
    assert ca.reads == [2] and cb.reads == [2]
    assert np.array_equal(np.asarray(stacked), np.concatenate([a, b]))
    arrays = stack_rows([{"features": a, "meta": a}, {"features": b, "meta": b}])
    assert isinstance(arrays["features"], np.ndarray) and len(arrays["meta"]) == 10


def test_a_fold_streams_only_above_the_in_memory_limit(monkeypatch):
    import kit.cv.data

    data = _box_data()
    task = fold_tasks(np.arange(48) % 2, (0,), RunFolder(Path("/nowhere")))[0]
    rows = fold_training_rows(task, data, PseudoRows(index=np.array([1]), labels=np.array([0])))
    assert rows.nbytes == 25 * 18 * 4 + 24 * 18 * 4 + 25 * 5 * 4  # plain + pseudo, hflip, boxes
    assert input_bytes({"a": np.zeros((3, 2)), "b": np.zeros(3, np.float32)}) == 60
    assert not rows.streamed
    monkeypatch.setattr(kit.cv.data, "IN_MEMORY_BYTES", rows.nbytes - 1)
    assert rows.streamed
    assert not FoldRows(x=np.zeros((2, 2), np.float32), y=np.zeros(2, int)).streamed


# ----------------------------------------------------------------------- the per-fold path


@pytest.mark.slow
def test_streamed_folds_learn_as_well_as_in_memory_ones(tmp_path: Path, monkeypatch):
    import kit.cv.data

    folds = np.random.default_rng(1).permutation(np.arange(60) % 3)
    data = _cached(_dense_data(), tmp_path / "cache")
    in_memory = _cv(data, folds, tmp_path / "a")
    made = _count_streams(monkeypatch)
    monkeypatch.setattr(kit.cv.data, "IN_MEMORY_BYTES", 0)
    streamed = _cv(data, folds, tmp_path / "b")
    assert len(made) == 2 * 3  # a fit and an early-stopping dataset per fold
    prior = log_loss(data.y_train, np.full((60, 3), 1 / 3))
    assert streamed.cv_log_loss < 0.5 * prior and in_memory.cv_log_loss < 0.5 * prior
    assert abs(streamed.cv_log_loss - in_memory.cv_log_loss) < 0.1
    assert np.abs(streamed.oof - in_memory.oof).mean() < 0.1
    assert streamed.test.shape == (10, 3)


@pytest.mark.slow
def test_with_one_batch_per_epoch_a_streamed_bbox_fold_is_the_in_memory_fold(tmp_path: Path,
                                                                              monkeypatch):
    """Every epoch one batch of all the fit rows (both views), no dropout: Keras's shuffle and
    the stream's only reorder rows within the batch, so both fits are the same fit, and the same
    inputs, labels, boxes and early-stopping rows reached it."""
    import kit.cv.data

    data = _cached(_box_data(), tmp_path / "cache")
    folds = (np.arange(48) // 2) % 2
    kwargs = {"head": "bbox", "config": dataclasses.replace(BBOX, dropout=0.0),
              "train": dataclasses.replace(CONFIG, batch_size=256, epochs=4)}
    in_memory = _cv(data, folds, tmp_path / "a", **kwargs)
    made = _count_streams(monkeypatch)
    monkeypatch.setattr(kit.cv.data, "IN_MEMORY_BYTES", 0)
    streamed = _cv(data, folds, tmp_path / "b", **kwargs)
    assert len(made) == 2 * 2
    assert np.allclose(streamed.oof, in_memory.oof, atol=1e-4)
    assert np.allclose(streamed.box_oof, in_memory.box_oof, rtol=1e-3, atol=1e-3)
    assert [f.best_epoch for f in streamed.folds] == [f.best_epoch for f in in_memory.folds]


@pytest.mark.slow
def test_no_streamed_read_holds_a_folds_training_rows(tmp_path: Path, monkeypatch):
    """Training reads at most a batch from each view; the whole fold (its training rows,
    validation rows and the test set) at most a prediction chunk (256 rows) at a time."""
    import kit.cv.data

    monkeypatch.setattr(kit.cv.data, "IN_MEMORY_BYTES", 0)
    box = _box_data(n=96)
    views = {v: CountingRows(box.x_train[v]) for v in box.variants}
    box = dataclasses.replace(box, x_train=views)
    task = fold_tasks(np.arange(96) % 2, (0,), RunFolder(tmp_path / "box"))[0]
    rows = fold_training_rows(task, box)
    assert rows.streamed and isinstance(rows.views[0], TrainView)
    config = dataclasses.replace(CONFIG, epochs=3)
    head_trainer(box, head_registry().get("bbox"), BBOX).fit(
        rows.x, rows.y, config=config, boxes=rows.boxes, views=rows.views, stream=True)
    for counted in views.values():
        assert counted.reads and max(counted.reads) <= config.batch_size

    dense = _dense_data(n=600, n_test=300)
    counting = {v: CountingRows(dense.x_train[v]) for v in dense.variants}
    test = {v: CountingRows(dense.x_test[v]) for v in dense.variants}
    dense = dataclasses.replace(dense, x_train=counting, x_test=test)
    folds = np.arange(600) % 3
    result = _cv(dense, folds, tmp_path / "dense")
    assert result.oof.shape == (600, 3)
    reads = [r for c in (*counting.values(), *test.values()) for r in c.reads]
    assert max(reads) <= 256 < 400  # 400: a fold's training rows


@pytest.mark.slow
def test_a_streamed_folds_predictions_ignore_its_own_validation_labels(tmp_path: Path,
                                                                      monkeypatch):
    """Change fold 0's validation labels: with every fold streamed (and pseudo-labelled test
    rows read through the cache), fold 0's OOF predictions must not move; fold 1's do."""
    import kit.cv.data

    monkeypatch.setattr(kit.cv.data, "IN_MEMORY_BYTES", 0)
    folds = np.arange(60) % 3
    base = _dense_data(n=60, n_test=30)
    changed = base.y_train.copy()
    val0 = folds == 0
    changed[val0] = (changed[val0] + 1) % 3
    made = _count_streams(monkeypatch)
    first = _cv(_cached(base, tmp_path / "c1"), folds, tmp_path / "a", pseudo_label=0.6)
    second = _cv(_cached(dataclasses.replace(base, y_train=changed), tmp_path / "c2"), folds,
                 tmp_path / "b", pseudo_label=0.6)
    assert len(made) == 2 * 2 * 3 * 2  # two runs, two stages, three folds, two datasets
    assert all(f.n_pseudo > 0 for f in first.folds)
    assert np.allclose(first.oof[val0], second.oof[val0], atol=1e-6)
    assert not np.allclose(first.oof[folds == 1], second.oof[folds == 1], atol=1e-3)
