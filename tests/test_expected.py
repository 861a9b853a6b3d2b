"""kit.scoring.expected: the averaging gain and the expected private score's interval."""

from __future__ import annotations

import numpy as np
import pytest

from kit.core.errors import InputError
from kit.scoring.expected import diversity, expected_score, row_scores
from kit.scoring.metrics import row_log_losses


def test_diversity_is_zero_for_agreeing_models_and_the_gain_under_the_average():
    rng = np.random.default_rng(1)
    same = np.repeat(rng.dirichlet(np.ones(3), size=(1, 50)), 4, axis=0)
    assert diversity(same) == pytest.approx(0, abs=1e-12)
    models = rng.dirichlet(np.ones(3) * 0.7, size=(5, 2000))
    avg = models.mean(axis=0)
    y = np.array([rng.choice(3, p=row / row.sum()) for row in avg])
    single = np.mean([row_log_losses(y, m).mean() for m in models])
    gain = single - row_log_losses(y, avg).mean()
    assert diversity(models) == pytest.approx(gain, rel=0.1)  # labels drawn from the average
    assert diversity(models[:1]) == 0.0


def _probs_with_loss(losses: np.ndarray) -> np.ndarray:
    p = np.exp(-losses)
    return np.stack([p, 1 - p], axis=1)


def test_the_interval_adds_the_cv_and_the_private_spread():
    rng = np.random.default_rng(2)
    losses = rng.exponential(0.5, 500)
    y, probs = np.zeros(500, int), _probs_with_loss(losses)
    plain = expected_score("log_loss", y, probs, clusters=None, n_private=200,
                           averaging_gain=0.1)
    assert plain.value == pytest.approx(losses.mean() - 0.1)
    sd = losses.std(ddof=1)
    se = np.hypot(sd / np.sqrt(500), sd / np.sqrt(200))
    assert plain.high - plain.value == pytest.approx(1.96 * se, rel=1e-3)
    assert plain.holds(plain.value) and not plain.holds(plain.high + 1e-9)
    # the same rows in 5 clusters of one loss level each: far less certain, both ways
    clustered = expected_score("log_loss", y, _probs_with_loss(np.sort(losses)),
                               clusters=np.arange(500) // 100, n_private=200)
    assert clustered.cv_se > 3 * plain.cv_se and clustered.private_se > 3 * plain.private_se
    assert clustered.n_clusters == 5
    assert set(plain.to_dict()) == {"metric", "value", "low", "high", "cv", "averaging_gain",
                                    "size_shift", "cv_se", "private_se", "n_private",
                                    "n_clusters"}


def test_a_metric_that_is_not_a_mean_is_bootstrapped_by_cluster():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 600)
    probs = np.where(rng.random(600)[:, None] < 0.6, np.eye(3)[y], np.eye(3)[(y + 1) % 3])
    assert row_scores("f1_macro", y, probs) is None
    macro = expected_score("f1_macro", y, probs, clusters=np.arange(600) // 6, n_private=600)
    accuracy = expected_score("accuracy", y, probs, clusters=np.arange(600) // 6, n_private=600)
    assert macro.value == pytest.approx(accuracy.value, abs=0.03)
    assert macro.cv_se == pytest.approx(accuracy.cv_se, rel=0.35)  # both about 0.02 here
    assert expected_score("f1_macro", y, probs, clusters=np.arange(600) // 6, n_private=600,
                          seed=0) == macro  # fixed seed, fixed interval


def test_the_interval_stays_within_what_the_metric_can_score():
    perfect = expected_score("log_loss", np.array([0, 1, 1]), np.array([[0.99, 0.01], [0.2, 0.8],
                                                                         [0.01, 0.99]]),
                             clusters=None, n_private=3)
    assert perfect.low == 0.0 < perfect.value
    sure = expected_score("accuracy", np.array([0, 1, 1]), np.eye(2)[[0, 1, 0]],
                          clusters=None, n_private=3)
    assert (sure.low, sure.value, sure.high) == (0.0, pytest.approx(2 / 3), 1.0)


def test_no_rows_or_no_private_rows_is_an_error():
    with pytest.raises(InputError, match="needs out-of-fold rows and n_private >= 1; received "
                                         "3 rows, n_private=0"):
        expected_score("log_loss", np.zeros(3, int), np.full((3, 2), 0.5), clusters=None,
                       n_private=0)


def test_the_size_shift_moves_the_value_and_its_interval_alike():
    y = np.arange(200) % 2
    probs = np.where(np.eye(2)[y] == 1, 0.8, 0.2)
    base = expected_score("log_loss", y, probs, clusters=None, n_private=100)
    moved = expected_score("log_loss", y, probs, clusters=None, n_private=100, size_shift=-0.05)
    assert moved.value == pytest.approx(base.value - 0.05)
    assert moved.low == pytest.approx(base.low - 0.05)
    assert moved.high == pytest.approx(base.high - 0.05)
    assert moved.to_dict()["size_shift"] == -0.05 and moved.cv == base.cv
