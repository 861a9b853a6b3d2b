from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.competition import load_competition
from kit.scoring.score import (
    prior_scores,
    probs_to_submission,
    read_solution,
    score_file,
    score_frame,
    submission_probs,
)
from kit.scoring.submission import SubmissionError

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


# ---------------------------------------------------------------- every bad submission, named


def _stage_solution() -> pd.DataFrame:
    """Two stage-1 rows (Public) and two stage-2 rows (Private), as fisheries' stage 2."""
    ids = ["img_1.jpg", "img_2.jpg", "test_stg2/image_1.jpg", "test_stg2/image_2.jpg"]
    truth = np.eye(8)[[0, 7, 4, 1]]
    frame = pd.DataFrame({"image": ids, **{c: truth[:, i] for i, c in enumerate(FISH.classes)}})
    frame["Usage"] = ["Public", "Public", "Private", "Private"]
    return frame


def _good(solution: pd.DataFrame) -> pd.DataFrame:
    return probs_to_submission(np.full((len(solution), 8), 0.125), list(solution["image"]), FISH)


def _score_csv(tmp_path: Path, submission: pd.DataFrame | str, solution=None):
    solution = _stage_solution() if solution is None else solution
    solution.to_csv(tmp_path / "solution.csv", index=False)
    path = tmp_path / "sub.csv"
    if isinstance(submission, str):
        path.write_text(submission)
    else:
        submission.to_csv(path, index=False)
    return score_file(path, tmp_path / "solution.csv", FISH)


def _edited(edit) -> pd.DataFrame:
    frame = _good(_stage_solution())
    edit(frame)
    return frame


@pytest.mark.parametrize(("submission", "message"), [
    (lambda: _good(_stage_solution()).iloc[[0, 2, 3]],
     r"ids do not match the solution \(3 rows, expected 4\); missing ids: 'img_2\.jpg'; "
     r"extra ids: none\.$"),
    (lambda: pd.concat([_good(_stage_solution()), _good(_stage_solution()).iloc[[0]].assign(
        image="img_9.jpg")]),
     r"ids do not match the solution \(5 rows, expected 4\); missing ids: none; extra ids: "
     r"'img_9\.jpg'\.$"),
    (lambda: _edited(lambda f: f.__setitem__("image", ["img_1.jpg", "img_1.jpg",
                                                       "test_stg2/image_1.jpg",
                                                       "test_stg2/image_2.jpg"])),
     r"duplicate ids: 'img_1\.jpg'\.$"),
    (lambda: _edited(lambda f: f.__setitem__("BET", [0.1, np.nan, 0.1, 0.1])),
     r"missing value \(NaN\) for id 'img_2\.jpg' in column 'BET'\.$"),
    (lambda: _edited(lambda f: f.__setitem__("SHARK", [0.1, 0.1, -0.2, 0.1])),
     r"value -0\.2 for id 'test_stg2/image_1\.jpg' in column 'SHARK' is negative; expected "
     r"probabilities >= 0\.$"),
    (lambda: _edited(lambda f: f.__setitem__("LAG", ["0.1", "0.1", "0.1", "lots"])),
     r"non-numeric value 'lots' for id 'test_stg2/image_2\.jpg' in column 'LAG'"),
    (lambda: _good(_stage_solution()).drop(columns=["YFT"]),
     r"columns do not match the solution; missing columns: \['YFT'\]; unknown columns: \[\]"),
    (lambda: _good(_stage_solution()).assign(TUNA=0.1),
     r"columns do not match the solution; missing columns: \[\]; unknown columns: \['TUNA'\]"),
    (lambda: _edited(lambda f: f.loc.__setitem__((1, list(FISH.classes)), 0.0)),
     r"the row of id 'img_2\.jpg' sums to 0; Kaggle rescales each row to sum 1, so at least "
     r"one value must be positive\.$"),
])
def test_bad_submissions_name_the_row_column_or_id(tmp_path: Path, submission, message) -> None:
    with pytest.raises(SubmissionError, match=rf"^{tmp_path / 'sub.csv'}: {message}"):
        _score_csv(tmp_path, submission())


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match=r"sub\.csv: empty file; expected a CSV with a "
                                              r"header row\.$"):
        _score_csv(tmp_path, "")
    with pytest.raises(SubmissionError, match=r"sub\.csv: has no rows \(only a header\); expected "
                                              r"4 rows, one per id of the solution\.$"):
        _score_csv(tmp_path, "image," + ",".join(FISH.classes) + "\n")


def test_missing_id_column(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match=r"sub\.csv: id column 'image' is missing"):
        _score_csv(tmp_path, _good(_stage_solution()).rename(columns={"image": "id"}))


def test_rows_are_rescaled_and_matched_by_id_in_any_order(tmp_path: Path) -> None:
    solution = _stage_solution()
    probs = np.full((4, 8), 0.05)
    for row, label in enumerate([0, 7, 4, 1]):
        probs[row, label] = 0.65
    exact = score_frame(probs_to_submission(probs, list(solution["image"]), FISH), solution, FISH)
    scaled = probs_to_submission(probs * 7.0, list(solution["image"]), FISH)  # values above 1
    shuffled = scaled.iloc[[3, 1, 0, 2]][["image", *FISH.classes[::-1]]]
    result = _score_csv(tmp_path, shuffled, solution)
    assert result.public == pytest.approx(exact.public) == pytest.approx(-np.log(0.65))
    assert (result.n_public, result.n_private) == (2, 2)


def test_stage_two_names_score_against_a_stage_two_solution(tmp_path: Path) -> None:
    stage2 = _stage_solution()
    result = _score_csv(tmp_path, _good(stage2), stage2)
    assert result.private == pytest.approx(np.log(8)) and result.n_private == 2
    stage1 = stage2.iloc[:2]
    with pytest.raises(SubmissionError, match=r"extra ids: 'test_stg2/image_1\.jpg', "
                                              r"'test_stg2/image_2\.jpg'\. The solution has no "
                                              r"test_stg2 rows: score a submission with "
                                              r"test_stg2/<file> ids against a solution that has "
                                              r"them"):
        _score_csv(tmp_path, _good(stage2), stage1)
    with pytest.raises(SubmissionError, match=r"The submission has no test_stg2 rows \(ids "
                                              r"test_stg2/<file>\), which the solution has"):
        _score_csv(tmp_path, _good(stage1), stage2)
    bare = _good(stage2).assign(image=["img_1.jpg", "img_2.jpg", "image_1.jpg", "image_2.jpg"])
    with pytest.raises(SubmissionError, match=r"Ids of test_stg2 must be written test_stg2/<file>, "
                                              r"e\.g\. 'test_stg2/image_1\.jpg'\.$"):
        _score_csv(tmp_path, bare, stage2)


def test_a_single_probability_above_one_is_refused() -> None:
    solution = pd.DataFrame({"id": ["1", "2"], "label": [1, 0], "Usage": ["Public", "Private"]})
    with pytest.raises(SubmissionError, match=r"value 1\.5 for id '2' in column 'label' is "
                                              r"outside \[0, 1\]\.$"):
        score_frame(pd.DataFrame({"id": ["1", "2"], "label": [0.9, 1.5]}), solution, CATS)
    with pytest.raises(SubmissionError, match=r"missing ids: '2'; extra ids: '3'\.$"):
        score_frame(pd.DataFrame({"id": [1, 3], "label": [0.9, 0.5]}), solution, CATS)


def test_bad_solution_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "solution.csv"
    pd.concat([_stage_solution(), _stage_solution().iloc[[0]]]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"solution\.csv has duplicate ids: \['img_1\.jpg'\]"):
        read_solution(path, FISH)
    _stage_solution().assign(ALB=1.0).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"the truth for id 'img_2\.jpg' is not one class: "
                                         r"expected exactly one 1 among the class columns"):
        read_solution(path, FISH)
    _stage_solution().iloc[:0].to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"solution\.csv has no rows"):
        read_solution(path, FISH)


# ---------------------------------------------------------------- label submissions and metrics


def _plants():
    from kit.competition import Competition, SampleSubmission, SubmissionFormat, TestSplit

    return Competition(
        name="plants", slug="plant-seedlings-classification", title="Plants",
        classes=("Black-grass", "Charlock", "Common wheat"), label_source="folder",
        test_splits=(TestSplit(name="test", folder="test"),), metric="f1_micro",
        submission=SubmissionFormat(id_column="file", kind="label", value_column="species",
                                    samples=(SampleSubmission(file="sample_submission.csv",
                                                              splits=("test",)),)))


def test_a_label_submission_scores_micro_f1_as_sklearn():
    from sklearn.metrics import f1_score

    from kit.scoring.score import score_frame

    plants = _plants()
    truth = ["Charlock", "Black-grass", "Common wheat", "Charlock", "Charlock", "Black-grass"]
    guess = ["Charlock", "Charlock", "Common wheat", "Black-grass", "Charlock", "Black-grass"]
    files = [f"{i}.png" for i in range(6)]
    solution = pd.DataFrame({"file": files, "species": truth,
                             "Usage": ["Public"] * 3 + ["Private"] * 3})
    submission = pd.DataFrame({"file": files[::-1], "species": guess[::-1]})  # any row order
    result = score_frame(submission, solution, plants)
    assert result.metric == "f1_micro"
    assert result.public == pytest.approx(f1_score(truth[:3], guess[:3], average="micro"))
    assert result.private == pytest.approx(f1_score(truth[3:], guess[3:], average="micro"))
    assert result.overall == pytest.approx(f1_score(truth, guess, average="micro"))


def test_a_label_that_is_not_a_class_is_named_with_its_id():
    from kit.scoring.score import score_frame

    solution = pd.DataFrame({"file": ["a.png", "b.png"], "species": ["Charlock", "Charlock"],
                             "Usage": ["Public", "Private"]})
    submission = pd.DataFrame({"file": ["a.png", "b.png"], "species": ["Charlock", "charlock"]})
    with pytest.raises(ValueError, match=r"value 'charlock' for id 'b.png' in column 'species' "
                                         r"is not a class \(did you mean 'Charlock'\?\)"):
        score_frame(submission, solution, _plants())


def test_the_prior_baseline_of_a_label_metric_predicts_the_majority_class():
    from kit.scoring.score import prior_scores

    solution = pd.DataFrame({"file": ["a.png", "b.png", "c.png"],
                             "species": ["Charlock", "Black-grass", "Charlock"],
                             "Usage": ["Public", "Public", "Private"]})
    base = prior_scores(np.array([1, 1, 0]), solution, _plants())
    assert (base.public, base.private) == (0.5, 1.0)
