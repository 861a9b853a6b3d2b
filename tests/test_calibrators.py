"""kit.scoring.calibrators: calibration candidates, cross-fitted and chosen."""

from __future__ import annotations

import numpy as np
import pytest

from kit.core.errors import UnknownNameError
from kit.scoring.calibrators import (
    CANDIDATES,
    Calibration,
    choose_calibration,
    cross_fit,
    fit_calibration,
)
from kit.scoring.metrics import row_log_losses
from tests.test_temperature import overconfident


def test_each_candidate_fits_and_applies():
    y, probs = overconfident(n=600)
    assert fit_calibration("none", y, probs) == Calibration(kind="none")
    clip = fit_calibration("clip", y, probs)
    assert clip.kind == "clip" and clip.value > 0
    assert clip.apply(probs).min() >= clip.value
    temperature = fit_calibration("temperature", y, probs)
    assert temperature.value > 1.5
    assert np.allclose(Calibration(kind="none").apply(probs), probs)
    assert temperature.to_dict() == {"kind": "temperature", "value": temperature.value}
    with pytest.raises(UnknownNameError, match="unknown calibration 'platt'; known: none, clip"):
        fit_calibration("platt", y, probs)


def test_cross_fitting_never_reads_a_folds_own_labels():
    y, probs = overconfident(n=800)
    folds = np.arange(len(y)) % 4
    calibrated = cross_fit("temperature", y, probs, folds)
    moved = y.copy()
    moved[folds == 0] = (moved[folds == 0] + 1) % 4  # fold 0's labels change
    again = cross_fit("temperature", moved, probs, folds)
    assert np.array_equal(calibrated[folds == 0], again[folds == 0])
    assert not np.allclose(calibrated[folds == 1], again[folds == 1])


def test_the_choice_is_the_lowest_cross_fitted_loss():
    y, probs = overconfident(n=2000)
    folds = np.arange(len(y)) % 5
    choice = choose_calibration(y, probs, folds)
    assert set(choice.losses) == set(CANDIDATES)
    assert choice.chosen.kind == "temperature"
    assert choice.losses["temperature"] < choice.losses["clip"] < choice.losses["none"]
    assert row_log_losses(y, choice.calibrated).mean() == pytest.approx(
        choice.losses["temperature"])
    assert choice.z["temperature"] > 5
    # already calibrated probabilities: no gain is significant, so none is kept
    rng = np.random.default_rng(3)
    q = rng.dirichlet(np.ones(3), size=3000)
    yq = np.array([rng.choice(3, p=row) for row in q])
    fair = choose_calibration(yq, q, np.arange(3000) % 5)
    assert fair.chosen.kind == "none"
    assert fair.losses["none"] - min(fair.losses.values()) < 0.005
    assert np.array_equal(fair.calibrated, q)


def test_a_gain_carried_by_one_cluster_is_not_significant():
    rng = np.random.default_rng(5)
    n = 2000
    y, clusters = rng.integers(0, 4, n), np.arange(n) // 500
    right = rng.random(n) < np.where(clusters == 0, 0.6, 0.9)
    predicted = np.where(right, y, (y + 1 + rng.integers(0, 3, n)) % 4)
    sure = np.where(clusters == 0, 0.99, 0.9)[:, None]  # cluster 0 alone is overconfident
    probs = np.where(np.eye(4)[predicted] > 0, sure, (1 - sure) / 3)
    folds = np.arange(n) % 4
    rows_only = choose_calibration(y, probs, folds)
    by_cluster = choose_calibration(y, probs, folds, clusters=clusters)
    assert rows_only.chosen.kind == "clip" and rows_only.z["clip"] > 5
    assert by_cluster.losses == rows_only.losses  # the same gain...
    assert by_cluster.z["clip"] < 1.96 and by_cluster.chosen.kind == "none"  # ...one cluster's


def test_a_forced_calibration_is_kept_and_scored_beside_none():
    y, probs = overconfident(n=600, true_t=1.0)
    forced = choose_calibration(y, probs, np.arange(600) % 3, forced="clip")
    assert forced.chosen.kind == "clip" and set(forced.losses) == set(CANDIDATES)
    only = choose_calibration(y, probs, np.arange(600) % 3, candidates=("none",),
                              forced="temperature")
    assert only.chosen.kind == "temperature" and set(only.losses) == {"none", "temperature"}


def test_the_temperature_candidate_softens_but_never_sharpens():
    from kit.scoring.temperature import fit_temperature

    y = np.arange(40) % 2
    timid = np.where(np.eye(2)[y] == 1, 0.7, 0.3)  # always right, never sure: sharpening pays
    assert fit_temperature(y, timid) < 0.5
    assert fit_calibration("temperature", y, timid).value == pytest.approx(1.0, abs=1e-3)
    bold = np.where(np.eye(2)[y] == 1, 0.99, 0.01)
    bold[:8] = bold[:8, ::-1]  # confidently wrong on a fifth
    assert fit_calibration("temperature", y, bold).value > 1.5
