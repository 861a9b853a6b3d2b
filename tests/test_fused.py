"""The fused trainer: every fold's head in one pass, as honest as the per-fold path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kit.cv.data import EnsembleData, PseudoRows
from kit.cv.driver import run_folds
from kit.cv.fused import FusedHeads, _branches, fused_batch_size, fused_reason, pool
from kit.cv.heads import HeadFolds
from kit.cv.task import fold_tasks
from kit.models.heads import HeadConfig, head_registry
from kit.models.train import TrainConfig
from kit.runs.layout import RunFolder

CONFIG = TrainConfig(epochs=12, batch_size=16, learning_rate=1e-2, patience=3)
HEAD = HeadConfig(pooling="avg", hidden=16, dropout=0.1)


def _data(n: int = 60, n_test: int = 10, seed: int = 0, y: np.ndarray | None = None):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3 if y is None else y
    centers = rng.normal(size=(3, 2, 2, 4)) * 3
    x = centers[np.arange(n) % 3] + rng.normal(size=(n, 2, 2, 4))
    x_test = centers[np.arange(n_test) % 3] + rng.normal(size=(n_test, 2, 2, 4))
    return EnsembleData(variants=("plain",), x_train={"plain": x.astype(np.float32)},
                        y_train=y, x_test={"plain": x_test.astype(np.float32)}, n_classes=3)


def _fused(data: EnsembleData) -> FusedHeads:
    return FusedHeads(data=data, build=head_registry().get("dense"), head=HEAD, train=CONFIG)


def _run(data: EnsembleData, folds: np.ndarray, folder: Path, seeds=(0,)):
    fit = HeadFolds(data=data, build=head_registry().get("dense"), head=HEAD, train=CONFIG)
    return run_folds(fit, folds, data.y_train, n_classes=3, seeds=seeds,
                     folder=RunFolder(folder), fused=_fused(data))


FOLDS = np.random.default_rng(1).permutation(np.arange(60) % 3)


def test_each_branch_trains_on_its_folds_training_rows_only():
    y = np.arange(60) % 3
    tasks = fold_tasks(FOLDS, (0, 1), RunFolder(Path("/nowhere")))
    pseudo = [None] * 5 + [PseudoRows(index=np.array([2, 5]), labels=np.array([1, 0]))]
    branches = _branches(tasks, pseudo, y, n_rows=70)
    for b, task in enumerate(tasks):
        used = branches.fit[b] | branches.stop[b]
        assert not used[task.val_index].any()  # neither fit nor early stopping sees them
        assert used[:60].sum() == 60 - len(task.val_index)
    assert branches.fit[5, 62] or branches.stop[5, 62]  # the last fold's own pseudo-labels
    assert branches.labels[5, 62] == 1 and (branches.labels[:5, 60:] == -1).all()
    assert branches.seeds == tuple(t.training_seed for t in tasks)


@pytest.mark.slow
def test_moving_a_folds_validation_labels_changes_only_the_other_folds(tmp_path: Path):
    base = _run(_data(), FOLDS, tmp_path / "a")
    y = np.arange(60) % 3
    moved = y.copy()
    moved[FOLDS == 0] = (moved[FOLDS == 0] + 1) % 3  # fold 0's validation labels
    other = _run(_data(y=moved), FOLDS, tmp_path / "b")
    assert base.training == other.training == "fused"
    zero = FOLDS == 0
    assert np.array_equal(base.oof[zero], other.oof[zero])  # its own OOF: exactly the same
    assert not np.allclose(base.oof[~zero], other.oof[~zero])  # the others learnt from them


@pytest.mark.slow
def test_fused_folds_learn_resume_and_write_loadable_heads(tmp_path: Path):
    from kit.cv.store import load_fold
    from kit.models.heads import load_head
    from kit.models.train import predict

    data = _data()
    result = _run(data, FOLDS, tmp_path, seeds=(0, 1))
    prior = -np.log(1 / 3)
    assert result.cv_log_loss < 0.5 * prior and len(result.folds) == 6
    folder = RunFolder(tmp_path).fold(seed=1, fold=2)
    task = next(t for t in fold_tasks(FOLDS, (0, 1), RunFolder(tmp_path))
                if (t.seed, t.fold) == (1, 2))
    model = load_head(folder.weights, head="dense", feature_shape=(2, 2, 4), n_classes=3,
                      config=HEAD)
    saved = load_fold(task)
    assert np.allclose(predict(model, data.x_train["plain"][task.val_index]), saved.oof,
                       atol=1e-5)
    folder.done.unlink()  # one fold to redo: the others are loaded, not trained
    again = _run(data, FOLDS, tmp_path, seeds=(0, 1))
    assert [f.resumed for f in again.folds] == [True] * 5 + [False]
    # trained alone, the fold trains as it did among the others (its own seeds and batches)
    assert np.allclose(again.folds[5].oof, saved.oof, atol=1e-5)


def test_what_trains_fused_and_what_per_fold():
    assert fused_reason(head="dense", loss="categorical_crossentropy", schedule="plateau",
                        mode="features") is None
    assert "bbox head trains per fold" in fused_reason(
        head="bbox", loss="categorical_crossentropy", schedule="plateau", mode="features")
    assert "focal loss" in fused_reason(head="dense", loss="focal", schedule="plateau",
                                        mode="features")
    assert "--mode finetune" in fused_reason(head="dense", loss="categorical_crossentropy",
                                             schedule="plateau", mode="finetune")
    assert fused_batch_size(32, 5) == 47  # 32 / (0.8 x 0.85)
    maps = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    assert pool(maps, "flatten").shape == (2, 12)
    assert np.allclose(pool(maps, "avg"), maps.mean(axis=(1, 2)))
    assert np.allclose(pool(maps, "max"), maps.max(axis=(1, 2)))


@pytest.mark.slow
def test_streaming_rows_from_the_cache_gives_the_same_folds(tmp_path: Path, monkeypatch):
    """Above the in-memory limit each batch is read (and pooled) on its own: same result."""
    from kit.features.cache import FeatureKey, FeatureStore

    data = _data()
    store = FeatureStore(tmp_path / "cache", FeatureKey(
        backbone="b", weights="w", input_size=(8, 8), preprocess="p", variant="plain"))
    digests = [f"d{i}" for i in range(70)]
    store.append(digests, np.concatenate([data.x_train["plain"], data.x_test["plain"]]))
    lazy = EnsembleData(variants=("plain",), x_train={"plain": store.rows(digests[:60])},
                        y_train=data.y_train, x_test={"plain": store.rows(digests[60:])},
                        n_classes=3)
    in_memory = _run(data, FOLDS, tmp_path / "a")
    monkeypatch.setattr("kit.cv.fused.IN_MEMORY_BYTES", 0)
    streamed = _run(lazy, FOLDS, tmp_path / "b")
    assert np.allclose(in_memory.oof, streamed.oof, atol=1e-6)
    assert np.allclose(in_memory.test, streamed.test, atol=1e-6)
