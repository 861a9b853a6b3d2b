"""Tests for kit.probes.groups: group inference and stratified vs group CV."""

from __future__ import annotations

import numpy as np
import pytest

from kit.probes.groups import (
    GroupInference,
    compare_cv,
    infer_groups,
    merge_pairs,
    prior_corrected,
    split_block,
)
from kit.probes.imagestats import describe
from kit.probes.settings import ProbeSettings

FAST = ProbeSettings(n_resamples=300, folds=3)


def _boats(seed: int, n_boats: int = 4, per_boat: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Colour statistics of `n_boats` decks (each its own signature, per-image noise)."""
    rng = np.random.default_rng(seed)
    deck = rng.normal(0, 0.5, (n_boats, 12))
    boat = np.repeat(np.arange(n_boats), per_boat)
    return deck[boat] + rng.normal(0, 0.05, (len(boat), 12)), boat


def _deck_photo(rng: np.random.Generator, gain: float) -> np.ndarray:
    """One deck (a fixed pattern) photographed under light `gain`, with sensor noise."""
    base = np.kron(np.array([[60, 140], [200, 90]], np.float32), np.ones((24, 32)))
    rgb = np.stack([base, base * 0.8 + 20, base * 0.6 + 40], axis=-1)
    noisy = rgb * gain + rng.normal(0, 2, rgb.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def test_distinct_decks_are_split():
    colour, boat = _boats(0, n_boats=3)
    labels, silhouette, p_value = split_block(colour, alpha=0.05, seed=0)
    assert len(set(labels.tolist())) == 3 and p_value <= 0.05
    assert all(len(set(labels[boat == b].tolist())) == 1 for b in range(3))


def test_one_deck_under_changing_light_stays_one_group():
    rng = np.random.default_rng(1)
    grid = np.stack([describe(_deck_photo(rng, gain)).grid for gain in rng.uniform(0.6, 1.2, 40)])
    labels, _, p_value = split_block(grid, alpha=0.05, seed=0)
    assert not labels.any() and p_value > 0.05


def test_split_block_keeps_tiny_blocks_whole_and_checks_n_null():
    labels, silhouette, p_value = split_block(np.zeros((3, 4)), alpha=0.05, seed=0)
    assert labels.tolist() == [0, 0, 0] and silhouette is None and p_value is None
    with pytest.raises(ValueError, match="n_null must be an integer >= 3; received n_null=1"):
        split_block(np.zeros((8, 4)), alpha=0.05, seed=0, n_null=1)


def test_camera_sizes_and_colours_become_groups():
    colour, boat = _boats(2, n_boats=4)
    sizes = np.array([(1280, 720), (1280, 720), (1518, 854), (1192, 670)])[boat]
    inference = infer_groups(sizes[:, 0], sizes[:, 1], colour, settings=FAST)
    assert inference.n_groups == 4  # 1280x720 holds two boats, told apart by colour
    for b in range(4):
        assert len(set(inference.groups[boat == b].tolist())) == 1
    assert sorted(inference.sizes().values()) == [20, 20, 20, 20]


def test_random_sizes_are_not_cameras():
    rng = np.random.default_rng(3)
    n = 40
    colour = rng.normal(100, 5, (n, 12))
    inference = infer_groups(rng.integers(150, 500, n), rng.integers(150, 500, n), colour,
                             settings=FAST)
    assert inference.n_groups == 1
    assert [b.block for b in inference.blocks] == ["unique-size"]


def test_merge_pairs_unites_groups_of_near_duplicates():
    inference = GroupInference(groups=np.array(["a", "b", "c", "c"]), blocks=())
    merged = merge_pairs(inference, [(0, 1), (1, 0), (2, 3)])
    assert merged.groups.tolist() == ["a", "a", "c", "c"]
    assert merged.merged_by_duplicates == 1 and merged.n_groups == 2


def test_prior_correction_moves_a_fold_to_the_full_prior():
    y = np.array([0, 0, 0, 1, 1, 1])
    folds = np.array([0, 0, 1, 1, 1, 1])  # fold 0 trains on y = [0, 1, 1, 1]
    probs = np.full((6, 2), 0.5)
    out = prior_corrected(probs, y, folds, 2)
    assert out[0].tolist() == pytest.approx([0.75, 0.25])  # 0.5*0.5/0.25 vs 0.5*0.5/0.75
    assert np.allclose(out.sum(axis=1), 1)


def test_stratified_cv_is_optimistic_when_features_recognise_the_boat():
    rng = np.random.default_rng(4)
    n_boats, per_boat = 6, 30
    boat = np.repeat(np.arange(n_boats), per_boat)
    mix = rng.dirichlet(np.full(3, 0.3), n_boats)  # each boat lands mostly one class
    y = np.array([rng.choice(3, p=mix[b]) for b in boat])
    signature = rng.normal(0, 3, (n_boats, 8))[boat] + rng.normal(0, 0.3, (len(boat), 8))
    x = np.concatenate([signature, rng.normal(size=(len(boat), 2)) + y[:, None] * 0.3], axis=1)
    result = compare_cv(x, y, boat.astype(str), 3, feature_source="synthetic", settings=FAST)
    assert result.group_log_loss > result.stratified_log_loss
    assert result.leak and result.optimism.low > 0
    assert result.regularization in (0.1, 0.01, 0.001, 0.0001)
    assert result.to_dict()["leak"] is True


def test_compare_cv_needs_two_groups():
    with pytest.raises(ValueError, match="group CV needs at least 2 groups"):
        compare_cv(np.zeros((6, 2)), np.array([0, 1] * 3), np.array(["g"] * 6), 2,
                   feature_source="x")
