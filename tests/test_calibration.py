"""Tests for kit.scoring.calibration."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from kit.scoring.calibration import DEFAULT_CLIP_GRID, ClipChoice, choose_clip, clip_probs
from kit.scoring.metrics import log_loss


def test_default_grid() -> None:
    assert DEFAULT_CLIP_GRID == (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.02, 0.03, 0.05)


def test_clip_probs_2d_returns_float64_copy() -> None:
    probs = np.array([[1.0, 0.0], [0.3, 0.7]], dtype=np.float32)
    clipped = clip_probs(probs, 0.05)
    assert clipped.dtype == np.float64
    np.testing.assert_allclose(clipped, [[0.95, 0.05], [0.3, 0.7]], rtol=1e-6)
    assert probs[0, 0] == 1.0  # input untouched


def test_clip_probs_zero_is_identity_copy() -> None:
    probs = np.array([[1.0, 0.0]])
    clipped = clip_probs(probs, 0.0)
    np.testing.assert_array_equal(clipped, probs)
    assert clipped is not probs


def test_clip_probs_binary_1d() -> None:
    assert clip_probs([0.0, 0.5, 1.0], 0.02).tolist() == [0.02, 0.5, 0.98]


@pytest.mark.parametrize(
    ("probs", "clip", "match"),
    [
        (
            np.full((1, 8), 1 / 8),
            0.2,
            r"^clip must be in \[0, 1/8\) for 8 classes; received clip=0\.2\.",
        ),
        (np.full((1, 8), 1 / 8), 0.125, r"for 8 classes; received clip=0\.125\."),
        ([0.5], 0.5, r"clip must be in \[0, 1/2\) for 2 classes; received clip=0\.5\."),
        ([0.5], -0.01, r"received clip=-0\.01\."),
        ([0.5], math.nan, r"received clip=nan\."),
        ([0.5], np.float64(0.7), r"received clip=0\.7\."),
    ],
)
def test_clip_bound_depends_on_class_count(probs: object, clip: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        clip_probs(probs, clip)  # type: ignore[arg-type]


def test_clip_just_below_bound_is_valid_for_8_classes() -> None:
    clipped = clip_probs(np.eye(8), 0.12)
    assert clipped.min() == pytest.approx(0.12)
    assert clipped.max() == pytest.approx(0.88)


def test_clip_type_and_shape_errors() -> None:
    with pytest.raises(TypeError, match=r"clip must be a float; received clip='0.1' of type str"):
        clip_probs([0.5], "0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"received clip=True of type bool"):
        clip_probs([0.5], True)
    with pytest.raises(ValueError, match=r"probs must be 2-D .*shape \(1, 1, 2\)"):
        clip_probs([[[0.5, 0.5]]], 0.0)


def test_overconfident_wrong_predictions_pick_positive_clip() -> None:
    y = [0, 1, 1, 0]
    probs = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]  # one confident mistake
    choice = choose_clip(y, probs)
    assert choice.clip > 0.0
    assert choice.clip == 0.05  # the largest grid value helps most here
    assert choice.log_loss < choice.unclipped_log_loss
    assert choice.unclipped_log_loss == pytest.approx(log_loss(y, probs))
    assert choice.log_loss == pytest.approx(log_loss(y, clip_probs(probs, 0.05)))


def test_perfect_predictions_pick_zero() -> None:
    choice = choose_clip([0, 1, 2], np.eye(3))
    assert choice.clip == 0.0
    assert choice.log_loss == choice.unclipped_log_loss
    assert choice.log_loss < 1e-12


def test_ties_go_to_the_smaller_clip() -> None:
    # Uniform predictions are unchanged by any clip below 1/k: every score ties.
    choice = choose_clip([0, 1], np.full((2, 2), 0.5), grid=(0.03, 0.01, 0.02))
    assert choice.clip == 0.01
    assert len(set(choice.scores)) == 1


def test_grid_values_at_or_above_one_over_k_are_skipped() -> None:
    probs = np.full((2, 8), 1 / 8)
    choice = choose_clip([0, 7], probs, grid=(0.0, 0.05, 0.125, 0.2))
    assert choice.grid == (0.0, 0.05)
    assert len(choice.scores) == 2


def test_binary_1d_probs() -> None:
    y = np.array([0, 1, 1, 0])
    p = np.array([0.0, 1.0, 0.0, 0.1])  # row 2 is confidently wrong
    choice = choose_clip(y, p, grid=(0.0, 0.01, 0.4))
    assert choice.clip == 0.4
    two_col = np.stack([1 - p, p], axis=1)
    assert choice == choose_clip(y, two_col, grid=(0.0, 0.01, 0.4))


def test_grid_is_evaluated_sorted_and_deduplicated() -> None:
    choice = choose_clip([0, 1], [[0.9, 0.1], [0.2, 0.8]], grid=(0.01, 0.0, 0.01))
    assert choice.grid == (0.0, 0.01)


@pytest.mark.parametrize(
    ("grid", "error", "match"),
    [
        ((), ValueError, r"grid must hold at least one clip value; received grid=\(\)"),
        ((0.0, math.inf), ValueError, r"finite and >= 0; received inf in grid=\(0\.0, inf\)"),
        ((0.0, math.nan), ValueError, r"finite and >= 0; received nan"),
        ((-0.1,), ValueError, r"received -0\.1 in grid"),
        (
            (0.5, 0.6),
            ValueError,
            r"no clip value below 1/2 for 2 classes; received grid=\(0\.5, 0\.6\)",
        ),
        (("a",), TypeError, r"grid values must be floats; received 'a'"),
    ],
)
def test_bad_grid(grid: tuple, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        choose_clip([0, 1], [[0.9, 0.1], [0.2, 0.8]], grid=grid)


def test_invalid_labels_propagate_log_loss_errors() -> None:
    with pytest.raises(ValueError, match="same number of rows; received 3 labels and 2"):
        choose_clip([0, 1, 0], [[0.9, 0.1], [0.2, 0.8]])


def test_clip_choice_is_frozen_kw_only_and_serialisable() -> None:
    choice = choose_clip([0, 1], [[0.9, 0.1], [0.2, 0.8]], grid=(0.0, 0.01))
    with pytest.raises(dataclasses.FrozenInstanceError):
        choice.clip = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        ClipChoice(0.0, 0.1, 0.1, (0.0,), (0.1,))  # type: ignore[misc]
    data = choice.to_dict()
    assert data == {
        "clip": choice.clip,
        "log_loss": choice.log_loss,
        "unclipped_log_loss": choice.unclipped_log_loss,
        "grid": [0.0, 0.01],
        "scores": list(choice.scores),
    }
    assert json.loads(json.dumps(data)) == data


def test_choose_clip_does_not_modify_input() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    before = probs.copy()
    choose_clip([0, 0], probs)
    np.testing.assert_array_equal(probs, before)
