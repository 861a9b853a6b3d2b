"""kit.cv.nested: ensemble out-of-fold rows from nested folds, as honest as the folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kit.core.errors import InputError
from kit.cv.nested import average_by_outer, ensemble_oof, nested_branches, nested_pairs
from kit.scoring.metrics import log_loss
from tests.test_fused import FOLDS, _data, _fused


def test_pairs_are_every_ordered_pair_of_distinct_folds():
    assert nested_pairs(np.array([0, 1, 2, 1])) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0),
                                                    (2, 1)]


def test_an_inner_head_never_sees_its_pairs_rows_or_labels():
    y = np.arange(60) % 3
    branches, pairs = nested_branches(FOLDS, y, seed=2)
    assert len(pairs) == 6 and len(set(branches.seeds)) == 6
    for b, (j, k) in enumerate(pairs):
        held = (j == FOLDS) | (k == FOLDS)
        assert not (branches.fit[b] | branches.stop[b])[held].any()
        assert (branches.labels[b, held] == -1).all()
        assert (branches.fit[b] | branches.stop[b])[~held].all()
    again, _ = nested_branches(FOLDS, y, seed=2)
    assert np.array_equal(again.fit, branches.fit)  # seeded


def test_each_row_averages_the_heads_of_its_outer_fold():
    folds = np.array([0, 0, 1, 1, 2, 2])
    pairs = nested_pairs(folds)
    probs = np.zeros((len(pairs), 6, 2))
    for b, (j, k) in enumerate(pairs):
        probs[b, :, 0] = 10 * j + k  # a value naming the head
        probs[b, :, 1] = 1
    out = average_by_outer(probs, pairs, folds)
    assert out[0, 0] == pytest.approx((1 + 2) / 2)  # fold 0: heads (0, 1), (0, 2)
    assert out[5, 0] == pytest.approx((20 + 21) / 2)


def test_two_folds_are_too_few(tmp_path: Path):
    with pytest.raises(InputError, match="need at least 3 folds; received 2"):
        ensemble_oof(_fused(_data()), np.arange(60) % 2, seed=0, path=tmp_path / "n.npz")


@pytest.mark.slow
def test_ensemble_rows_learn_are_saved_and_never_read_their_folds_labels(tmp_path: Path):
    data = _data()
    path = tmp_path / "a" / "nested_oof.npz"
    nested = ensemble_oof(_fused(data), FOLDS, seed=0, path=path)
    rows, singles = nested.ensemble, nested.singles
    assert rows.shape == (60, 3) and np.allclose(rows.sum(axis=1), 1)
    assert singles.shape == (len(np.unique(FOLDS)) - 1, 60, 3)
    assert np.allclose(singles.mean(axis=0), rows)  # the ensemble is their average
    assert log_loss(data.y_train, rows) < 0.8 * np.log(3)  # it learnt
    again = ensemble_oof(_fused(data), FOLDS, seed=0, path=path)
    assert np.array_equal(again.ensemble, rows) and np.array_equal(again.singles, singles)
    moved = data.y_train.copy()
    moved[FOLDS == 0] = (moved[FOLDS == 0] + 1) % 3  # fold 0's labels
    other = ensemble_oof(_fused(_data(y=moved)), FOLDS, seed=0, path=tmp_path / "b.npz")
    zero = FOLDS == 0
    assert np.array_equal(rows[zero], other.ensemble[zero])
    assert np.array_equal(singles[:, zero], other.singles[:, zero])
    assert not np.allclose(rows[~zero], other.ensemble[~zero])


def test_the_nested_budget_counts_every_inner_heads_first_layer():
    from kit.cv.nested import NESTED_MAX_BYTES, fits_nested, nested_bytes

    # 5 folds: 20 inner heads x (weights, two Adam moments, best snapshot)
    assert nested_bytes(n_folds=5, width=100, hidden=8) == 20 * 100 * 8 * 16
    # flatten features of a 224 base (28,224 floats) at hidden 256: past the budget
    assert nested_bytes(n_folds=5, width=28_224, hidden=256) > NESTED_MAX_BYTES
    fused = _fused(_data())
    assert fits_nested(fused, 3)


def test_single_rows_take_each_outer_folds_inner_heads_in_turn():
    from kit.cv.nested import single_by_outer

    folds = np.array([0, 0, 1, 1, 2, 2])
    pairs = nested_pairs(folds)  # (0,1) (0,2) (1,0) (1,2) (2,0) (2,1)
    probs = np.zeros((len(pairs), 6, 2))
    for b in range(len(pairs)):
        probs[b, :, 0] = b
    singles = single_by_outer(probs, pairs, folds)
    assert singles.shape == (2, 6, 2)
    assert list(singles[0, :, 0]) == [0, 0, 2, 2, 4, 4]
    assert list(singles[1, :, 0]) == [1, 1, 3, 3, 5, 5]
