"""kit.scoring.temperature: temperature scaling."""

from __future__ import annotations

import numpy as np
import pytest

from kit.scoring.metrics import row_log_losses
from kit.scoring.temperature import T_BOUNDS, fit_temperature, temper


def overconfident(n: int = 4000, k: int = 4, true_t: float = 2.5, seed: int = 0):
    """Labels drawn from calibrated probabilities q; the model reports q sharpened by 1/T."""
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(k), size=n)
    y = np.array([rng.choice(k, p=row) for row in q])
    return y, temper(q, 1 / true_t)


def test_temper_is_a_softmax_of_scaled_logits():
    p = np.array([[0.7, 0.2, 0.1]])
    assert np.allclose(temper(p, 1.0), p)
    assert temper(p, 3.0)[0, 0] < 0.7 < temper(p, 0.5)[0, 0]
    assert np.allclose(temper(p, 1e6), 1 / 3, atol=1e-4)
    assert np.allclose(temper(p, 2.0).sum(axis=1), 1)
    assert temper(np.array([[1.0, 0.0]]), 2.0)[0, 1] > 0  # zeros are floored, not kept


def test_the_fitted_temperature_undoes_overconfidence():
    y, probs = overconfident()
    t = fit_temperature(y, probs)
    assert t == pytest.approx(2.5, rel=0.1)
    assert row_log_losses(y, temper(probs, t)).mean() < row_log_losses(y, probs).mean() - 0.1
    y, timid = overconfident(true_t=0.5, seed=1)
    assert fit_temperature(y, timid) == pytest.approx(0.5, rel=0.1)


def test_the_temperature_stays_in_its_bounds():
    y = np.array([0, 1, 0, 1])
    perfect = np.eye(2)[y] * 0.98 + 0.01
    t = fit_temperature(y, perfect)  # sharpening all the way: bounded, loss about 0
    assert T_BOUNDS[0] <= t < 0.2
    assert row_log_losses(y, temper(perfect, t)).mean() < 1e-6
    wrong = perfect[:, ::-1]  # every row confidently wrong: as soft as allowed
    assert fit_temperature(y, wrong) == pytest.approx(T_BOUNDS[1], rel=0.01)
