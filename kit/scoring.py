"""Score a submission against a solution file laid out like Kaggle's.

The solution holds the submission's id and value columns with the truth (one-hot per class, or
0/1 for a positive-class column) plus a `Usage` column (`Public` / `Private`). Rows are matched by
id, columns by name; each subset is scored with Kaggle's log loss (`kit.metrics.log_loss`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit.competition import Competition
from kit.metrics import log_loss, prior_probs
from kit.submission import SubmissionError, read_submission, validate_submission

USAGE = "Usage"
USAGES = ("Public", "Private")


@dataclass(frozen=True, kw_only=True)
class ScoreResult:
    """Local leaderboard figures: log loss on the public and private rows (None where empty)."""

    public: float | None
    private: float | None
    overall: float
    n_rows: int
    n_public: int
    n_private: int

    def to_dict(self) -> dict:
        return asdict(self)


def read_solution(path: Path, competition: Competition) -> pd.DataFrame:
    id_column = competition.submission.id_column
    try:
        solution = pd.read_csv(path, dtype={id_column: str})
    except FileNotFoundError as error:
        raise ValueError(f"solution file {path} does not exist; pass --solution FILE") from error
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"cannot read solution file {path}: {error}") from error
    expected = [id_column, *competition.submission_columns(), USAGE]
    missing = [c for c in expected if c not in solution.columns]
    if missing:
        raise ValueError(
            f"solution file {path} lacks columns {missing}; expected {expected}"
        )
    bad = sorted(set(solution[USAGE].astype(str)) - set(USAGES))
    if bad:
        raise ValueError(f"solution file {path}: Usage must be Public or Private; found {bad}")
    return solution


def truth_indices(solution: pd.DataFrame, competition: Competition) -> np.ndarray:
    """Class index per solution row."""
    if competition.submission.kind == "per_class":
        onehot = solution[list(competition.classes)].to_numpy(dtype=np.float64)
        return onehot.argmax(axis=1)
    positive = competition.classes.index(competition.submission.positive_class)
    values = solution[competition.submission.value_column].to_numpy(dtype=np.float64)
    negative = 1 - positive
    return np.where(values >= 0.5, positive, negative)


def submission_probs(frame: pd.DataFrame, competition: Competition) -> np.ndarray:
    """Submission values as an (n, n_classes) probability matrix in class order."""
    if competition.submission.kind == "per_class":
        return frame[list(competition.classes)].to_numpy(dtype=np.float64)
    p = frame[competition.submission.value_column].to_numpy(dtype=np.float64)
    positive = competition.classes.index(competition.submission.positive_class)
    probs = np.empty((len(p), 2))
    probs[:, positive] = p
    probs[:, 1 - positive] = 1 - p
    return probs


def probs_to_submission(probs: np.ndarray, ids: list[str], competition: Competition) -> pd.DataFrame:
    """An (n, n_classes) probability matrix as a submission frame (ids first)."""
    sub = competition.submission
    frame = pd.DataFrame({sub.id_column: pd.array(ids, dtype=object)})
    if sub.kind == "per_class":
        for i, name in enumerate(competition.classes):
            frame[name] = probs[:, i]
    else:
        frame[sub.value_column] = probs[:, competition.classes.index(sub.positive_class)]
    return frame


def score_frame(submission: pd.DataFrame, solution: pd.DataFrame, competition: Competition,
                *, source: str = "submission") -> ScoreResult:
    """Score a submission frame against a solution frame."""
    id_column = competition.submission.id_column
    reference = solution.drop(columns=[USAGE])[[id_column, *competition.submission_columns()]]
    validate_submission(submission, reference, id_column=id_column, source=source)
    merged = solution.merge(submission, on=id_column, suffixes=("_truth", ""), how="left")
    truth_frame = solution.set_index(id_column).loc[merged[id_column]].reset_index()
    y = truth_indices(truth_frame, competition)
    probs = submission_probs(merged, competition)
    usage = merged[USAGE].astype(str).to_numpy()
    scores = {}
    for name in USAGES:
        mask = usage == name
        scores[name] = log_loss(y[mask], probs[mask]) if mask.any() else None
    return ScoreResult(public=scores["Public"], private=scores["Private"],
                       overall=log_loss(y, probs), n_rows=len(merged),
                       n_public=int((usage == "Public").sum()),
                       n_private=int((usage == "Private").sum()))


def score_file(submission_path: Path, solution_path: Path, competition: Competition) -> ScoreResult:
    """Score a submission CSV against a solution CSV."""
    solution = read_solution(solution_path, competition)
    submission = read_submission(submission_path, id_column=competition.submission.id_column)
    return score_frame(submission, solution, competition, source=str(submission_path))


def prior_scores(train_labels: np.ndarray, solution: pd.DataFrame,
                 competition: Competition) -> ScoreResult:
    """What always predicting the training class prior would score (the baseline)."""
    prior = prior_probs(train_labels, competition.n_classes)
    probs = np.tile(prior, (len(solution), 1))
    ids = solution[competition.submission.id_column].astype(str).tolist()
    frame = probs_to_submission(probs, ids, competition)
    return score_frame(frame, solution, competition, source="class-prior baseline")


__all__ = [
    "ScoreResult",
    "SubmissionError",
    "prior_scores",
    "probs_to_submission",
    "read_solution",
    "score_file",
    "score_frame",
    "submission_probs",
    "truth_indices",
]
