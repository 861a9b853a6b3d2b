"""Heads, training and the K-fold ensemble on tiny synthetic features."""

from pathlib import Path

import numpy as np
import pytest

from kit.ensemble import EnsembleData, cross_validate
from kit.executors import LocalExecutor, executor_registry
from kit.heads import HeadConfig, build_dense_head, head_registry
from kit.metrics import log_loss
from kit.train import TrainConfig, inner_split


def _data(n=60, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = rng.normal(size=(3, 2, 2, 4)) * 3
    x = centers[y] + rng.normal(size=(n, 2, 2, 4))
    x_test = centers[np.arange(n_test) % 3] + rng.normal(size=(n_test, 2, 2, 4))
    def jitter(a):  # a second TTA view: the same features, slightly perturbed
        return (a + 0.1 * rng.normal(size=a.shape)).astype(np.float32)

    return EnsembleData(variants=("plain", "hflip"),
                        x_train={"plain": x.astype(np.float32), "hflip": jitter(x)},
                        y_train=y, x_test={"plain": x_test.astype(np.float32),
                                           "hflip": jitter(x_test)},
                        n_classes=3)


CONFIG = TrainConfig(epochs=15, batch_size=16, learning_rate=1e-2, patience=5)


def test_head_config_validation():
    with pytest.raises(ValueError, match="pooling must be one of flatten, avg, max; received "
                                         "pooling='mean'"):
        HeadConfig(pooling="mean")
    with pytest.raises(ValueError, match="dropout must be a float in"):
        HeadConfig(dropout=1.0)
    with pytest.raises(ValueError, match="epochs must be a positive integer; received epochs=0"):
        TrainConfig(epochs=0)
    with pytest.raises(KeyError, match="unknown head 'dense2'"):
        head_registry().get("dense2")


@pytest.mark.parametrize("pooling,layer", [("flatten", "flatten"), ("avg", "avg_pool"),
                                           ("max", "max_pool")])
def test_every_pooling_builds_its_own_layer(pooling, layer):
    model = build_dense_head((2, 2, 4), 3, HeadConfig(pooling=pooling, hidden=8))
    assert model.get_layer(layer) is not None
    assert model.output_shape == (None, 3)


def test_inner_split_is_stratified_and_disjoint():
    y = np.array([0] * 10 + [1] * 10)
    fit, stop = inner_split(y, seed=0)
    assert not set(fit) & set(stop) and len(fit) + len(stop) == 20
    assert set(y[stop]) == {0, 1}


def test_cross_validate_learns_and_resumes(tmp_path: Path):
    data = _data()
    folds = np.random.default_rng(1).permutation(np.arange(60) % 3)
    kwargs = dict(seeds=(0,), run_dir=tmp_path, build=build_dense_head,
                  head=HeadConfig(hidden=16, dropout=0.1), train=CONFIG)
    result = cross_validate(data, folds, executor=LocalExecutor(), **kwargs)
    prior = log_loss(data.y_train, np.full((60, 3), 1 / 3))
    assert result.cv_log_loss < 0.5 * prior
    assert result.oof.shape == (60, 3) and result.test.shape == (10, 3)
    assert np.allclose(result.oof.sum(axis=1), 1) and len(result.folds) == 3
    for k in range(3):
        assert (tmp_path / "seed0" / f"fold{k}" / "done.json").is_file()
        assert (tmp_path / "seed0" / f"fold{k}" / "model.weights.h5").is_file()
    # a finished fold is loaded, not trained again
    (tmp_path / "seed0" / "fold2" / "done.json").unlink()
    again = cross_validate(data, folds, **kwargs)
    assert [f.resumed for f in again.folds] == [True, True, False]
    assert np.allclose(again.oof[folds < 2], result.oof[folds < 2])
    assert np.allclose(again.oof, result.oof, atol=1e-3)


def test_seeds_average(tmp_path: Path):
    data = _data(n=30, n_test=4)
    result = cross_validate(data, np.random.default_rng(2).permutation(np.arange(30) % 2), seeds=(0, 1), run_dir=tmp_path,
                            build=build_dense_head, head=HeadConfig(hidden=8), train=CONFIG)
    assert len(result.folds) == 4 and {f.seed for f in result.folds} == {0, 1}
    assert np.allclose(result.oof.sum(axis=1), 1)


def test_executor_registry():
    assert isinstance(executor_registry().get("local")(), LocalExecutor)
    assert LocalExecutor().map(lambda x: x * 2, [1, 2]) == [2, 4]


def test_a_reused_trainer_fits_exactly_like_a_fresh_model():
    from kit.train import HeadTrainer, fit_head, predict

    data = _data(n=45)
    x, y = data.x_train["plain"], data.y_train

    def build():
        return build_dense_head(x.shape[1:], 3, HeadConfig(hidden=8, dropout=0.3))

    trainer = HeadTrainer(build, n_classes=3)
    trainer.fit(x[:30], y[:30], config=CONFIG)  # a first fold changes weights, optimizer, RNG
    reused = trainer.fit(x[15:], y[15:], config=CONFIG)
    reused_probs = predict(reused.model, x)
    fresh = fit_head(build, x[15:], y[15:], n_classes=3, config=CONFIG)
    assert reused.history["loss"] == pytest.approx(fresh.history["loss"], rel=1e-5)
    assert np.allclose(reused_probs, predict(fresh.model, x), atol=1e-6)
