"""Tests for kit.probes.headcv: the run's head over several fold sets in one fused pass."""

from __future__ import annotations

import numpy as np
import pytest

import kit.cv.data
from kit.cv.fused import fused_batch_size, pool
from kit.cv.task import SEED_STRIDE
from kit.demo.recipe import DEMO_RECIPE
from kit.probes.headcv import ProbeHead, fold_branches, pooled_reader, scheme_predictions

STRATIFIED = np.arange(30) % 3
GROUPED = np.repeat([0, 1, 2], 10)


def test_every_branch_trains_and_stops_on_its_folds_training_rows_only():
    y = np.arange(30) % 2
    branches = fold_branches([STRATIFIED, GROUPED], y, seed=2)
    assert branches.fit.shape == (6, 30)
    for b, (folds, fold) in enumerate([(STRATIFIED, f) for f in range(3)]
                                      + [(GROUPED, f) for f in range(3)]):
        used = branches.fit[b] | branches.stop[b]
        assert not used[folds == fold].any() and used[folds != fold].all()
        assert branches.stop[b].sum() >= 2 and (branches.labels[b, folds == fold] == -1).all()
    # branch f of every fold set starts from the run's fold-f seed
    assert branches.seeds == tuple(2 * SEED_STRIDE + f for f in (0, 1, 2, 0, 1, 2))


def test_each_row_is_predicted_by_the_branch_that_held_it_out():
    probs = np.zeros((6, 30, 2))
    probs[:, :, 0] = np.arange(6)[:, None]  # branch index in column 0
    strat, grouped = scheme_predictions(probs, [STRATIFIED, GROUPED])
    assert strat[:, 0].tolist() == STRATIFIED.tolist()
    assert grouped[:, 0].tolist() == (GROUPED + 3).tolist()


def test_the_probe_head_is_the_runs_dense_head():
    recipe = {"head": "dense", "pooling": "max", "hidden": 128, "dropout": 0.3,
              "learning_rate": 0.001, "epochs": 40, "patience": 6, "batch_size": 32,
              "schedule": "plateau", "seed": 3, "loss": "categorical_crossentropy"}
    head = ProbeHead.from_recipe(recipe)
    assert (head.pooling, head.hidden, head.dropout, head.epochs, head.patience, head.seed,
            head.plateau, head.note) == ("max", 128, 0.3, 40, 6, 3, True, "")
    config = head.config(64, 10, 5)
    assert config.batch_size == fused_batch_size(32, 5) and config.n_classes == 10
    assert "the run's dense head (hidden 128, dropout 0.3, max pooling" in head.describe()
    assert not ProbeHead.from_recipe({**recipe, "schedule": "constant"}).plateau


def test_heads_the_fused_trainer_lacks_become_a_dense_head_and_say_so():
    head = ProbeHead.from_recipe({"head": "fcn", "loss": "focal", "schedule": "cosine"})
    assert "the run's fcn head cannot train fused" in head.note
    assert "not the run's focal" in head.note and "not the run's cosine schedule" in head.note
    assert head.plateau and head.note in head.describe()
    merged = ProbeHead.from_recipe({"head": "metadata-merge"})
    assert merged.note == "without its metadata"
    # keys an old record lacks: the head's and trainer's own defaults
    assert (merged.pooling, merged.hidden, merged.epochs) == ("flatten", 256, 30)
    demo = ProbeHead.from_recipe({k: getattr(DEMO_RECIPE, k) for k in (
        "head", "pooling", "hidden", "dropout", "epochs", "patience")})
    assert (demo.pooling, demo.hidden, demo.patience) == ("max", 128, DEMO_RECIPE.patience)


@pytest.mark.parametrize("pooling", ["avg", "max", "flatten"])
@pytest.mark.parametrize("in_memory", [True, False])
def test_pooled_reader_pools_the_chosen_rows_as_the_head_does(pooling: str, in_memory: bool,
                                                              monkeypatch):
    if not in_memory:
        monkeypatch.setattr(kit.cv.data, "IN_MEMORY_BYTES", 0)
    maps = np.random.default_rng(0).normal(size=(7, 2, 3, 4)).astype(np.float32)
    index = np.array([5, 0, 3])
    reader, width = pooled_reader(maps, pooling, index)
    expected = pool(maps[index], pooling)
    assert width == expected.shape[1] == {"avg": 4, "max": 4, "flatten": 24}[pooling]
    assert np.allclose(reader(np.array([2, 0])), expected[[2, 0]])
    with pytest.raises(ValueError, match="pooled_reader needs at least one row; received none"):
        pooled_reader(maps, pooling, np.array([], np.int64))
