"""Tests for kit.probes.adversarial."""

from __future__ import annotations

import numpy as np
import pytest

from kit.probes.adversarial import (
    METADATA,
    adversarial_validation,
    metadata_matrix,
    ridge_oof_scores,
)
from kit.probes.settings import ProbeSettings
from kit.probes.stats import rank_auc, sign_flip_test

FAST = ProbeSettings(n_permutations=199, folds=4)


def _data(seed: int, shift: float, n_train: int = 80, n_test: int = 40):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train + n_test, 6))
    x[n_train:, 0] += shift
    splits = ["train"] * n_train + ["test"] * n_test
    paths = [f"train/{i}.jpg" for i in range(n_train)] + [f"test/{i}.jpg" for i in range(n_test)]
    return x, splits, paths


def test_same_distribution_shows_no_shift():
    x, splits, paths = _data(0, shift=0.0)
    result = adversarial_validation({"features": x}, splits, paths, feature_source="synthetic",
                                    settings=FAST)
    assert not result.leak
    assert result.auc_low < 0.5 < result.auc_high
    assert result.sources[0].p_value > FAST.alpha


def test_shifted_test_set_is_found_with_its_most_test_like_training_images():
    x, splits, paths = _data(1, shift=2.5)
    x[[3, 7], 0] += 4.0  # two training images that look like the test set
    result = adversarial_validation({"features": x}, splits, paths, feature_source="synthetic",
                                    settings=FAST)
    assert result.leak and result.auc > 0.8 and result.auc_low > 0.5
    assert result.p_value == pytest.approx(1 / 200)
    assert {p for p, _ in result.most_test_like[:2]} == {"train/3.jpg", "train/7.jpg"}
    data = result.to_dict()
    assert data["auc"] == result.auc and data["sources"]["features"]["per_split"]["test"] > 0.8


def test_metadata_separates_new_camera_sizes_per_split():
    n = 60
    width = np.r_[np.full(n, 1280), np.full(20, 1280), np.full(20, 1732)]
    height = np.r_[np.full(n, 720), np.full(20, 720), np.full(20, 974)]
    n_bytes = width * height * 0.2
    splits = ["train"] * n + ["test_stg1"] * 20 + ["test_stg2"] * 20
    paths = [f"img_{i}.jpg" for i in range(len(splits))]
    meta = metadata_matrix(width, height, n_bytes)
    result = adversarial_validation({METADATA: meta}, splits, paths, feature_source="none",
                                    settings=FAST)
    per_split = result.sources[0].per_split
    assert per_split["test_stg2"] == pytest.approx(1.0)
    assert per_split["test_stg1"] == pytest.approx(0.5, abs=0.1)
    assert result.leak


def test_ridge_scores_fit_all_label_columns_at_once():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(float)
    folds = np.arange(40) % 4
    both = ridge_oof_scores(x, np.stack([y, 1 - y], axis=1), folds)
    alone = ridge_oof_scores(x, y[:, None], folds)
    assert np.allclose(both[:, :1], alone)
    assert np.allclose(both[:, 0] + both[:, 1], 1.0)  # linear in the targets
    assert rank_auc(y, both[:, 0])[0] > 0.9


def test_sign_flip_test_is_exact_over_few_groups():
    values = np.array([1.0, 2.0, 1.5, 0.5])
    result = sign_flip_test(values, ["a", "b", "c", "d"])
    assert result.p_value == pytest.approx(1 / 16) and result.n_permutations == 16
    assert sign_flip_test(values, ["a", "a", "b", "b"]).p_value == pytest.approx(1 / 4)


def test_adversarial_validation_checks_its_input():
    with pytest.raises(ValueError, match="has 3 rows for 4 images"):
        adversarial_validation({"f": np.zeros((3, 2))}, ["train"] * 2 + ["test"] * 2,
                               ["a", "b", "c", "d"], feature_source="x")
    with pytest.raises(ValueError, match="at least 2 training and 2 test images"):
        adversarial_validation({"f": np.zeros((3, 2))}, ["train", "train", "test"],
                               ["a", "b", "c"], feature_source="x")
