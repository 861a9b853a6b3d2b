from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.competition import load_competition
from kit.scoring import (
    prior_scores,
    probs_to_submission,
    read_solution,
    score_file,
    score_frame,
    submission_probs,
)
from kit.submission import SubmissionError

FISH = load_competition("fisheries")
CATS = load_competition("dogs-vs-cats-redux")


def _fish_solution():
    ids = ["img_1.jpg", "img_2.jpg", "test_stg2/image_1.jpg"]
    truth = np.eye(8)[[0, 7, 4]]
    frame = pd.DataFrame({"image": ids, **{c: truth[:, i] for i, c in enumerate(FISH.classes)}})
    frame["Usage"] = ["Public", "Public", "Private"]
    return frame


def test_fisheries_public_private_split():
    solution = _fish_solution()
    probs = np.full((3, 8), 0.05)
    probs[0, 0] = probs[1, 7] = probs[2, 4] = 0.65
    submission = probs_to_submission(probs, list(solution["image"]), FISH)
    result = score_frame(submission.iloc[::-1], solution, FISH)  # row order does not matter
    assert result.public == pytest.approx(-np.log(0.65))
    assert result.private == pytest.approx(-np.log(0.65))
    assert (result.n_rows, result.n_public, result.n_private) == (3, 2, 1)


def test_dogs_vs_cats_positive_class_column():
    solution = pd.DataFrame({"id": ["1", "2"], "label": [1, 0], "Usage": ["Public", "Private"]})
    submission = pd.DataFrame({"id": ["2", "1"], "label": [0.2, 0.9]})
    result = score_frame(submission, solution, CATS)
    assert result.public == pytest.approx(-np.log(0.9))
    assert result.private == pytest.approx(-np.log(0.8))
    probs = submission_probs(submission, CATS)
    assert np.allclose(probs, [[0.8, 0.2], [0.1, 0.9]])


def test_prior_baseline():
    solution = _fish_solution()
    result = prior_scores(np.array([0, 0, 7, 4]), solution, FISH)
    assert result.public == pytest.approx(-(np.log(0.5) + np.log(0.25)) / 2)


def test_bad_submission_is_named(tmp_path: Path):
    solution = _fish_solution()
    sub = probs_to_submission(np.full((3, 8), 0.125), list(solution["image"]), FISH)
    with pytest.raises(SubmissionError, match="missing"):
        score_frame(sub.drop(columns=["YFT"]), solution, FISH)
    with pytest.raises(SubmissionError):
        score_frame(sub.iloc[:2], solution, FISH)


def test_solution_file_errors(tmp_path: Path):
    with pytest.raises(ValueError, match="solution file .*nope.csv does not exist"):
        read_solution(tmp_path / "nope.csv", FISH)
    bad = tmp_path / "bad.csv"
    _fish_solution().drop(columns=["Usage"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"lacks columns \['Usage'\]"):
        read_solution(bad, FISH)
    weird = tmp_path / "weird.csv"
    _fish_solution().assign(Usage="Hidden").to_csv(weird, index=False)
    with pytest.raises(ValueError, match=r"Usage must be Public or Private; found \['Hidden'\]"):
        read_solution(weird, FISH)


def test_score_file_round_trip(tmp_path: Path):
    solution = _fish_solution()
    solution.to_csv(tmp_path / "solution.csv", index=False)
    sub = probs_to_submission(np.full((3, 8), 0.125), list(solution["image"]), FISH)
    sub.to_csv(tmp_path / "sub.csv", index=False)
    result = score_file(tmp_path / "sub.csv", tmp_path / "solution.csv", FISH)
    assert result.overall == pytest.approx(np.log(8))
