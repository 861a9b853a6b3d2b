"""Tests for kit.scoring.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kit.scoring.metrics import EPS, log_loss, prior_log_loss, prior_probs, row_log_losses

FAST = settings(max_examples=100, deadline=None)


def reference_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """A plain, loop-based reading of Kaggle's definition."""
    total = 0.0
    for label, row in zip(y, p, strict=True):
        rescaled = [float(v) / float(sum(row)) for v in row]
        clipped = [min(max(v, EPS), 1 - EPS) for v in rescaled]
        total += -math.log(clipped[int(label)])
    return total / len(y)


@st.composite
def labelled_probs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Small (n, k) non-negative probability tables with at least one positive per row."""
    n = draw(st.integers(1, 6))
    k = draw(st.integers(2, 5))
    probs = draw(
        hnp.arrays(np.float64, (n, k), elements=st.floats(0.0, 1.0, allow_subnormal=False))
    )
    probs[:, 0] += 1e-3  # keep every row sum positive
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return labels, probs


# -- hand-computed values -------------------------------------------------------------------


def test_hand_computed_two_class() -> None:
    expected = -(math.log(0.9) + math.log(0.8)) / 2
    assert log_loss([0, 1], [[0.9, 0.1], [0.2, 0.8]]) == pytest.approx(expected, abs=1e-15)


def test_rows_are_rescaled_before_clipping() -> None:
    assert log_loss([2], [[1, 1, 2]]) == pytest.approx(math.log(2), abs=1e-15)
    assert log_loss([0], [[2.0, 6.0]]) == pytest.approx(-math.log(0.25), abs=1e-15)


def test_zero_probability_is_clipped_to_eps() -> None:
    assert log_loss([1], [[1.0, 0.0]]) == pytest.approx(-math.log(EPS), rel=1e-12)
    assert log_loss([0], [[1.0, 0.0]]) == pytest.approx(-math.log(1 - EPS), rel=1e-6)


def test_returns_python_float_and_accepts_integer_probs() -> None:
    value = log_loss(np.array([0, 1]), np.array([[3, 1], [1, 3]]))
    assert type(value) is float
    assert value == pytest.approx(-math.log(0.75))


def test_huge_values_do_not_overflow() -> None:
    assert log_loss([0], [[1e308, 1e308]]) == pytest.approx(math.log(2))


def test_integral_float_and_bool_labels_are_accepted() -> None:
    probs = [[0.9, 0.1], [0.2, 0.8]]
    assert log_loss([0.0, 1.0], probs) == log_loss([0, 1], probs)
    assert log_loss([False, True], probs) == log_loss([0, 1], probs)


def test_row_log_losses_are_per_row_values() -> None:
    rows = row_log_losses([0, 1], [[0.5, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(rows, [math.log(2), -math.log(1 - EPS)])


# -- prior ------------------------------------------------------------------------------------


def test_prior_probs() -> None:
    prior = prior_probs([0, 0, 1, 2], 4)
    assert prior.dtype == np.float64
    np.testing.assert_array_equal(prior, [0.5, 0.25, 0.25, 0.0])
    np.testing.assert_array_equal(prior_probs(np.eye(3)[[0, 1, 1]], 3), [1 / 3, 2 / 3, 0])


def test_prior_log_loss() -> None:
    expected = -(math.log(0.25) + math.log(0.75)) / 2
    assert prior_log_loss([0, 1, 1, 1], [0, 1], 2) == pytest.approx(expected)


def test_prior_log_loss_class_absent_from_train_costs_minus_log_eps() -> None:
    value = prior_log_loss([0, 0], [2], 3)
    assert value == pytest.approx(-math.log(EPS / (1 + 2 * EPS)), rel=1e-9)


@pytest.mark.parametrize(
    ("n_classes", "error", "match"),
    [
        (1, ValueError, r"n_classes must be an integer >= 2; received n_classes=1\."),
        (
            2.0,
            TypeError,
            r"n_classes must be an integer >= 2; received n_classes=2.0 of type float",
        ),
        (True, TypeError, r"received n_classes=True of type bool"),
    ],
)
def test_prior_n_classes_validated(n_classes: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        prior_probs([0, 1], n_classes)  # type: ignore[arg-type]


def test_prior_label_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"must be in \[0, 2\) for 2 classes; row 2 has y_true=2"):
        prior_probs([0, 1, 2], 2)


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y_true", "probs", "match"),
    [
        (
            [0, 1, 0],
            [[0.5, 0.5], [0.5, 0.5]],
            r"same number of rows; received 3 labels and 2 probability rows",
        ),
        ([], np.zeros((0, 2)), r"probs is empty \(0 rows\)"),
        ([0], [[0.5, np.nan]], r"probs must be finite; row 0 contains NaN or inf"),
        ([0, 0], [[0.5, 0.5], [np.inf, 0.5]], r"probs must be finite; row 1 contains NaN or inf"),
        ([0, 0], [[0.5, 0.5], [-0.1, 1.1]], r"non-negative; row 1 has a negative value"),
        ([0, 0], [[0.5, 0.5], [0.0, 0.0]], r"positive sum; row 1 sums to 0"),
        (
            [0, 3],
            [[0.5, 0.5], [0.5, 0.5]],
            r"must be in \[0, 2\) for 2 classes; row 1 has y_true=3",
        ),
        ([-1], [[0.5, 0.5]], r"row 0 has y_true=-1"),
        ([0, 0.5], [[0.5, 0.5], [0.5, 0.5]], r"integer class indexes; row 1 is 0.5"),
        ([0, np.nan], [[0.5, 0.5], [0.5, 0.5]], r"y_true must be finite; row 1 contains NaN"),
        ([[1, 0], [1, 1]], [[0.5, 0.5], [0.5, 0.5]], r"rows must sum to 1 .*row 1 sums to 2"),
        ([[1, 0], [0, 0]], [[0.5, 0.5], [0.5, 0.5]], r"row 1 sums to 0"),
        ([[0.5, 0.5]], [[0.5, 0.5]], r"one-hot y_true must hold only 0 and 1; row 0"),
        ([[1, 0, 0]], [[0.5, 0.5]], r"one column per class; received 3 columns for 2 classes"),
        ([0], [[1.0]], r"at least 2 columns"),
        ([0], [[[0.5, 0.5]]], r"probs must be 2-D .*shape \(1, 1, 2\)"),
        ([0, 1], [0.5, 1.5], r"1-D binary probs .* must be in \[0, 1\]; row 1 has p=1.5"),
        ([0, 1], [0.5, -0.5], r"row 1 has p=-0.5"),
        ([[[0]]], [[0.5, 0.5]], r"y_true must be 1-D class indexes .*shape \(1, 1, 1\)"),
    ],
)
def test_invalid_input_raises_value_error(y_true: object, probs: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        log_loss(y_true, probs)  # type: ignore[arg-type]


def test_non_numeric_input_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"y_true must hold integer class indexes .*dtype <U3"):
        log_loss(["cat", "dog"], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(TypeError, match=r"probs must be numeric; received an array of dtype"):
        log_loss([0], [["a", "b"]])


# -- properties ------------------------------------------------------------------------------


@FAST
@given(labelled_probs(), st.floats(1e-3, 1e3))
def test_invariant_to_row_scaling(data: tuple[np.ndarray, np.ndarray], scale: float) -> None:
    labels, probs = data
    assert log_loss(labels, probs * scale) == pytest.approx(log_loss(labels, probs), rel=1e-9)


@FAST
@given(labelled_probs())
def test_equals_mean_of_single_row_losses(data: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probs = data
    singles = [log_loss(labels[i : i + 1], probs[i : i + 1]) for i in range(len(labels))]
    assert log_loss(labels, probs) == pytest.approx(float(np.mean(singles)), rel=1e-12)
    np.testing.assert_allclose(row_log_losses(labels, probs), singles, rtol=1e-12)


@FAST
@given(labelled_probs(), st.randoms(use_true_random=False))
def test_invariant_to_row_permutation(data: tuple[np.ndarray, np.ndarray], rng) -> None:
    labels, probs = data
    order = list(range(len(labels)))
    rng.shuffle(order)
    assert log_loss(labels[order], probs[order]) == pytest.approx(
        log_loss(labels, probs), rel=1e-12
    )


@FAST
@given(st.integers(2, 8), st.lists(st.integers(0, 7), min_size=1, max_size=8))
def test_perfect_predictions_are_near_zero(k: int, raw: list[int]) -> None:
    labels = np.array(raw) % k
    value = log_loss(labels, np.eye(k)[labels])
    assert 0.0 <= value <= 1e-12


@FAST
@given(st.integers(2, 8), st.lists(st.integers(0, 7), min_size=1, max_size=8))
def test_uniform_predictions_give_log_k(k: int, raw: list[int]) -> None:
    labels = np.array(raw) % k
    assert log_loss(labels, np.full((len(labels), k), 1.0 / k)) == pytest.approx(math.log(k))


@FAST
@given(labelled_probs())
def test_never_nan_and_non_negative_and_bounded(data: tuple[np.ndarray, np.ndarray]) -> None:
    value = log_loss(*data)
    assert math.isfinite(value)
    assert 0.0 <= value <= -math.log(EPS) + 1e-9


@FAST
@given(labelled_probs())
def test_matches_plain_reference(data: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probs = data
    assert log_loss(labels, probs) == pytest.approx(reference_log_loss(labels, probs), rel=1e-9)


@FAST
@given(labelled_probs())
def test_one_hot_and_index_forms_agree(data: tuple[np.ndarray, np.ndarray]) -> None:
    labels, probs = data
    one_hot = np.eye(probs.shape[1], dtype=np.int64)[labels]
    assert log_loss(one_hot, probs) == log_loss(labels, probs)
    assert log_loss(one_hot.astype(np.float64), probs) == log_loss(labels, probs)


@FAST
@given(
    hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(0.0, 1.0)),
    st.randoms(use_true_random=False),
)
def test_binary_1d_form_agrees_with_two_columns(p: np.ndarray, rng) -> None:
    labels = np.array([rng.randint(0, 1) for _ in range(len(p))])
    two_columns = np.stack([1.0 - p, p], axis=1)
    assert log_loss(labels, p) == log_loss(labels, two_columns)
