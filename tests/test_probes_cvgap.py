"""Tests for kit.probes.cvgap: the optimism of stratified CV, its interval, test and verdict."""

from __future__ import annotations

import numpy as np
import pytest

from kit.probes.cvgap import (
    PROBE_MODEL,
    RUN_HEAD,
    CVComparison,
    FoldSets,
    ModelUsed,
    Replicate,
    fold_sets,
    judge_gap,
    prior_corrected,
)
from kit.probes.settings import ProbeSettings
from kit.probes.stats import Interval

FAST = ProbeSettings(n_resamples=300, folds=5)
USED = ModelUsed(model="synthetic", feature_source="none", grouping="10 groups", kind=RUN_HEAD)


def _probs(y: np.ndarray, p_true: np.ndarray, k: int = 2) -> np.ndarray:
    """Probabilities with `p_true` on the true class, the rest spread evenly."""
    out = np.tile(((1 - p_true) / (k - 1))[:, None], (1, k))
    out[np.arange(len(y)), y] = p_true
    return out


def _setup(n_groups: int = 10, per: int = 12) -> tuple[np.ndarray, FoldSets]:
    y = np.tile([0, 1], n_groups * per // 2)
    groups = np.repeat([f"g{i}" for i in range(n_groups)], per)
    return y, fold_sets(y, groups, settings=FAST)


def _once(folds: FoldSets, stratified: np.ndarray, grouped: np.ndarray) -> list[Replicate]:
    return [Replicate(folds=folds, stratified=stratified, grouped=grouped)]


def test_a_model_that_loses_on_every_held_out_group_is_a_leak():
    y, folds = _setup()
    stratified = _probs(y, np.full(len(y), 0.8))
    grouped = _probs(y, np.full(len(y), 0.55))
    c = judge_gap(y, _once(folds, stratified, grouped), 2, used=USED, settings=FAST)
    assert c.leak and c.optimism.low > 0 and c.p_value <= 2 ** -10
    assert c.group_log_loss > c.stratified_log_loss
    assert c.optimism.estimate == pytest.approx(np.log(0.8 / 0.55))
    assert c.n_groups == 10 and c.model_kind == RUN_HEAD and c.regularization is None
    assert c.to_dict()["leak"] is True and c.to_dict()["model"] == "synthetic"
    assert "by the run's head" in c.summary()


def test_equal_scores_or_one_bad_group_are_not_a_leak():
    y, folds = _setup()
    same = _probs(y, np.full(len(y), 0.7))
    c = judge_gap(y, _once(folds, same, same), 2, used=USED, settings=FAST)
    assert not c.leak and c.p_value == 1.0 and c.optimism.estimate == pytest.approx(0)
    one_group = np.where(folds.groups == "g0", 0.3, 0.7)  # one of ten groups scores worse
    c = judge_gap(y, _once(folds, same, _probs(y, one_group)), 2, used=USED, settings=FAST)
    assert c.optimism.estimate > 0 and c.p_value == pytest.approx(0.5) and not c.leak


def test_model_noise_across_repeats_widens_the_interval_and_weakens_the_test():
    """Every group looks a little worse under group folds in each repeat, but the repeats'
    CVs (stratified too) disagree by far more than that: the model's own noise, not groups."""
    y, _ = _setup()
    repeats = [Replicate(folds=fold_sets(y, np.repeat([f"g{i}" for i in range(10)], 12),
                                         settings=FAST, repeat=r),
                         stratified=_probs(y, np.full(len(y), s)),
                         grouped=_probs(y, np.full(len(y), s - 0.01)))
               for r, s in enumerate((0.7, 0.52, 0.71))]
    alone = judge_gap(y, repeats[:1], 2, used=USED, settings=FAST)
    # one repeat alone: 0.69 vs 0.7 on every group, a "leak" of 0.014 nats
    assert alone.leak and alone.p_value <= 2 ** -10 and alone.model_noise == 0
    c = judge_gap(y, repeats, 2, used=USED, settings=FAST)
    assert len(c.repeat_optimism) == 3 and c.model_noise > 0.05
    assert c.p_value > 0.05 and c.optimism.low < 0 < c.optimism.high and not c.leak
    assert c.to_dict()["n_repeats"] == 3


def test_a_group_effect_that_varies_with_the_folds_is_still_a_leak():
    """A steady stratified CV and a grouped CV far worse in every repeat, by how much
    depending on which groups share a fold: the spread is the effect's, not model noise."""
    y, _ = _setup()
    stratified = _probs(y, np.full(len(y), 0.7))
    repeats = [Replicate(folds=fold_sets(y, np.repeat([f"g{i}" for i in range(10)], 12),
                                         settings=FAST, repeat=r),
                         stratified=stratified, grouped=_probs(y, np.full(len(y), p)))
               for r, p in enumerate((0.3, 0.15, 0.05))]
    c = judge_gap(y, repeats, 2, used=USED, settings=FAST)
    assert c.model_noise == 0 and c.leak and c.optimism.low > 0.8


def test_the_verdict_needs_the_test_and_the_interval():
    def comparison(p: float, low: float) -> CVComparison:
        return CVComparison(feature_source="", regularization=None, stratified_log_loss=0.5,
                            group_log_loss=0.6, prior_log_loss=0.69,
                            optimism=Interval(estimate=0.1, low=low, high=0.2, level=0.95),
                            p_value=p, alpha=0.05, n_stratified_folds=5, n_group_folds=5)

    assert comparison(0.01, 0.02).leak
    assert not comparison(0.01, -0.01).leak  # significant by the test, interval reaches 0
    assert not comparison(0.2, 0.02).leak
    assert comparison(0.01, 0.02).model_kind == PROBE_MODEL


def test_judge_gap_checks_shapes_and_fold_sets_need_two_groups():
    y, folds = _setup()
    with pytest.raises(ValueError, match=r"must be \(n, n_classes\) = \(120, 2\); received"):
        judge_gap(y, _once(folds, np.zeros((120, 3)), np.zeros((120, 2))), 2, used=USED,
                  settings=FAST)
    with pytest.raises(ValueError, match="judge_gap needs at least one repeat; received none"):
        judge_gap(y, [], 2, used=USED, settings=FAST)
    with pytest.raises(ValueError, match="group CV needs at least 2 groups; the inference found 1"):
        fold_sets(y, np.array(["g"] * 120), settings=FAST)


def test_fold_sets_keep_groups_whole_and_stratify_the_other():
    y, folds = _setup()
    for group in np.unique(folds.groups):
        assert len(np.unique(folds.grouped[folds.groups == group])) == 1
    assert len(np.unique(folds.stratified)) == len(np.unique(folds.grouped)) == 5
    assert {int((y[folds.stratified == f] == 1).sum()) for f in range(5)} == {12}


def test_prior_correction_moves_a_fold_to_the_full_prior():
    y = np.array([0, 0, 0, 1, 1, 1])
    folds = np.array([0, 0, 1, 1, 1, 1])  # fold 0 trains on y = [0, 1, 1, 1]
    out = prior_corrected(np.full((6, 2), 0.5), y, folds, 2)
    assert out[0].tolist() == pytest.approx([0.75, 0.25])
