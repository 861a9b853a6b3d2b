"""Tests for kit.probes.leakcv: stratified vs grouped CV of the run's head or the probe model,
on synthetic features where a group effect exists and where it does not."""

from __future__ import annotations

import numpy as np
import pytest

from kit.probes.cvgap import PROBE_MODEL, RUN_HEAD
from kit.probes.headcv import ProbeHead
from kit.probes.leakcv import Grouping, ProbeFeatures, measure_cv
from kit.probes.settings import ProbeSettings

FAST = ProbeSettings(n_resamples=300, folds=4)
HEAD = ProbeHead(pooling="max", hidden=16, dropout=0.1, learning_rate=1e-2, epochs=15,
                 patience=3, batch_size=16, plateau=True, seed=0)


def _data(seed: int, *, effect: bool, n_groups: int = 8, per: int = 24, k: int = 3):
    """Feature maps (n, 2, 2, 6) of `n_groups` groups plus 20 test rows.

    With `effect` each group has its own look and mostly one class, so a model that has seen
    the group knows the class; without, groups are arbitrary labels over the images and the
    features carry the class alone.
    """
    rng = np.random.default_rng(seed)
    n = n_groups * per
    group = np.repeat(np.arange(n_groups), per)
    if effect:
        mix = rng.dirichlet(np.full(k, 0.3), n_groups)
        y = np.array([rng.choice(k, p=mix[g]) for g in group])
        look = rng.normal(0, 3, (n_groups, 4))[group]
    else:
        y = np.arange(n) % k
        look = np.zeros((n, 4))
        group = rng.permutation(group)
    classes = np.eye(k)[y][:, :2] * (0.6 if effect else 2.0)
    vectors = np.concatenate([look, classes], axis=1)
    maps = vectors[:, None, None, :] + rng.normal(0, 0.5, (n, 2, 2, 6))
    test = rng.normal(0, 1, (20, 2, 2, 6))
    return np.concatenate([maps, test]).astype(np.float32), y, group.astype(str)


def _measure(maps: np.ndarray, y: np.ndarray, group: np.ndarray, head: ProbeHead | None):
    is_train = np.arange(len(maps)) < len(y)
    matrix = np.concatenate([maps.mean(axis=(1, 2)), maps.max(axis=(1, 2))], axis=1)
    features = ProbeFeatures(matrix=matrix, source="synthetic", rows=maps, head=head,
                             cache="synthetic maps")
    return measure_cv(features, is_train, y, [Grouping(name="groups", labels=group,
                                                       text="synthetic groups")],
                      n_classes=3, settings=FAST)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_probe_model_finds_a_group_effect(seed: int):
    maps, y, group = _data(seed, effect=True)
    c = _measure(maps, y, group, head=None)
    comparison = c.comparisons["groups"]
    assert comparison.model_kind == PROBE_MODEL and comparison.regularization is not None
    assert comparison.leak and comparison.group_log_loss > comparison.stratified_log_loss
    assert c.test.shape == (20, 3)


def test_the_probe_model_stays_quiet_without_a_group_effect():
    leaks = [_measure(*_data(seed, effect=False), head=None).comparisons["groups"].leak
             for seed in range(6)]
    assert sum(leaks) <= 1  # alpha = 0.05: a false alarm in six is already unlikely


def test_no_grouping_measures_nothing():
    maps, y, _ = _data(0, effect=True)
    features = ProbeFeatures(matrix=maps.mean(axis=(1, 2)), source="synthetic")
    out = measure_cv(features, np.arange(len(maps)) < len(y), y, [], n_classes=3,
                     settings=FAST)
    assert out.comparisons == {} and out.test is None


@pytest.mark.slow
def test_the_runs_head_finds_a_group_effect_and_stays_quiet_without_one():
    maps, y, group = _data(0, effect=True)
    found = _measure(maps, y, group, head=HEAD)
    c = found.comparisons["groups"]
    assert c.model_kind == RUN_HEAD and c.regularization is None
    assert "24 branches (3 repeats of stratified and grouped folds) in one pass" in c.model
    assert len(c.repeat_optimism) == 3 and c.model_noise > 0
    assert c.feature_source == "synthetic maps, max pooled as the run's head pools them"
    assert c.leak and c.optimism.low > 0
    assert found.test.shape == (20, 3) and np.allclose(found.test.sum(axis=1), 1, atol=1e-4)
    quiet = _measure(*_data(1, effect=False), head=HEAD).comparisons["groups"]
    assert not quiet.leak


@pytest.mark.slow
def test_two_groupings_share_the_stratified_folds_in_one_pass():
    maps, y, group = _data(2, effect=True)
    is_train = np.arange(len(maps)) < len(y)
    features = ProbeFeatures(matrix=maps.mean(axis=(1, 2)), source="s", rows=maps, head=HEAD,
                             cache="c")
    clusters = np.array([f"{g}/{i // 3}" for i, g in enumerate(group)])
    out = measure_cv(features, is_train, y,
                     [Grouping(name="groups", labels=group, text="g"),
                      Grouping(name="duplicates", labels=clusters, text="c")],
                     n_classes=3, settings=FAST)
    a, b = out.comparisons["groups"], out.comparisons["duplicates"]
    assert a.stratified_log_loss == b.stratified_log_loss  # the same stratified branches
    assert "36 branches" in a.model and a.model == b.model
