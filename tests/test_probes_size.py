"""Tests for kit.probes.size and the statistics it rests on (kit.probes.stats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kit.demo import fisheries
from kit.probes.settings import ProbeSettings
from kit.probes.size import read_sizes, size_probe
from kit.probes.stats import (
    auc_interval,
    bootstrap_mean_interval,
    mutual_information,
    mutual_information_test,
    quantile_upper_bound,
)
from tests.conftest import write_jpeg

FAST = ProbeSettings(n_permutations=199, n_resamples=300, folds=3)
CLASSES = ("a", "b", "c")


# -- statistics ------------------------------------------------------------------------------


def test_mutual_information_of_identical_and_independent_variables():
    assert mutual_information([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(np.log(2))
    assert mutual_information([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.0)


def test_permutation_test_of_mi_separates_signal_from_unique_values():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    linked = mutual_information_test(y * 10 + (rng.random(120) < 0.1), y, n_permutations=199)
    assert linked.p_value == pytest.approx(1 / 200)
    unique = mutual_information_test(np.arange(120), y, n_permutations=199)
    assert unique.statistic == pytest.approx(unique.null_mean)  # all distinct: MI = H(y)
    assert unique.p_value == 1.0


def test_bootstrap_interval_covers_the_mean_and_cluster_bootstrap_is_wider():
    rng = np.random.default_rng(1)
    clusters = np.repeat(np.arange(6), 20)
    values = rng.normal(size=6)[clusters] + rng.normal(scale=0.1, size=120)
    plain = bootstrap_mean_interval(values, level=0.95, n_resamples=500)
    grouped = bootstrap_mean_interval(values, level=0.95, n_resamples=500, clusters=clusters)
    assert plain.low < values.mean() < plain.high
    assert grouped.high - grouped.low > 2 * (plain.high - plain.low)


def test_auc_interval_matches_the_mann_whitney_auc():
    y = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.9])
    result = auc_interval(y, scores, level=0.9)
    assert result.auc == pytest.approx((3 + 3 + 2.5) / 9)
    assert 0 <= result.low < result.auc < result.high <= 1
    with pytest.raises(ValueError, match="at least 2 positives and 2 negatives"):
        auc_interval([0, 1, 1], [0.1, 0.2, 0.3])


def test_quantile_upper_bound_is_an_order_statistic_and_names_the_minimum_count():
    values = np.arange(1, 401, dtype=float)
    assert quantile_upper_bound(values, quantile=0.98, level=0.95) == 397.0  # 4th largest
    with pytest.raises(ValueError, match="needs at least 299 values; received 10"):
        quantile_upper_bound(np.arange(10), quantile=0.99, level=0.95)


def test_settings_reject_a_bad_alpha():
    with pytest.raises(ValueError, match="alpha must be a significance level strictly between 0 "
                                         "and 1; received alpha=1.5"):
        ProbeSettings(alpha=1.5)


# -- the size probe ----------------------------------------------------------------------------


def _camera_data(seed: int, n: int = 90) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three cameras, each mostly one class: size leaks the class."""
    rng = np.random.default_rng(seed)
    camera = rng.integers(0, 3, n)
    labels = np.where(rng.random(n) < 0.8, camera, rng.integers(0, 3, n))
    widths = np.array([1280, 1192, 1518])[camera]
    heights = np.array([720, 670, 854])[camera]
    return widths, heights, labels


def test_size_leak_is_found_with_its_gain():
    w, h, y = _camera_data(0)
    result = size_probe(w, h, y, CLASSES, settings=FAST,
                        test_sizes={"test": (np.array([1280, 1732]), np.array([720, 974]))})
    assert result.leak
    assert result.gain_nats > 0.3 and result.gain_interval.low > 0
    assert result.metadata_log_loss < result.prior_log_loss
    assert result.gain_percent == pytest.approx(100 * result.gain_nats / result.prior_log_loss)
    assert result.mi_p_value <= 0.01 and result.mutual_information > result.mutual_information_null
    shift = result.shift[0]
    assert (shift.n_unseen, shift.unseen_share, shift.unseen_sizes) == (1, 0.5, {"1732x974": 1})
    table = {row["size"]: row for row in result.table}
    assert sum(table["1280x720"][c] for c in CLASSES) == table["1280x720"]["n"]
    data = result.to_dict()
    for key in ("leak", "mutual_information", "gain_nats", "prior_log_loss", "metadata_log_loss"):
        assert key in data


def test_fisheries_demo_plan_leaks_the_class_through_the_size():
    """The full fisheries demo's boats and camera sizes (its plan, without rendering images)."""
    plan = fisheries._plan(0, fisheries.PRESETS["full"])["train"]
    sizes = fisheries._camera_sizes(fisheries.PRESETS["full"].scale)
    w, h = (np.array([sizes[boat][i] for _, _, boat in plan]) for i in (0, 1))
    labels = np.array([cls for _, cls, _ in plan])
    result = size_probe(w, h, labels, fisheries.CLASSES, settings=ProbeSettings())
    assert result.leak and result.n_sizes == 6
    assert result.gain_nats == pytest.approx(0.373, abs=0.005)  # as measured through `kit probe`
    assert result.mi_p_value == pytest.approx(0.001)


def test_random_sizes_do_not_leak():
    rng = np.random.default_rng(3)
    n = 90
    result = size_probe(rng.integers(150, 500, n), rng.integers(150, 500, n),
                        rng.integers(0, 3, n), CLASSES, settings=FAST)
    assert not result.leak
    assert result.gain_interval.low <= 0


def test_size_probe_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one entry per image; received 2, 2 and 3"):
        size_probe(np.array([1, 2]), np.array([1, 2]), np.array([0, 1, 2]), CLASSES)


def test_read_sizes_reads_headers_and_lists_unreadable_files(tmp_path: Path):
    good = write_jpeg(tmp_path / "a.jpg", size=(40, 30))
    empty = tmp_path / "b.jpg"
    empty.write_bytes(b"")
    garbage = tmp_path / "c.jpg"
    garbage.write_bytes(b"not an image at all")
    reading = read_sizes([good, empty, garbage], ["a.jpg", "b.jpg", "c.jpg"])
    assert (reading.width.tolist(), reading.height.tolist()) == ([40, -1, -1], [30, -1, -1])
    assert [(u.path, u.reason) for u in reading.unreadable] == [("b.jpg", "empty file"),
                                                                 ("c.jpg", "not an image")]
