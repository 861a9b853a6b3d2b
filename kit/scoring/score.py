"""Score a submission against a solution file laid out like Kaggle's.

The solution holds the submission's id and value columns with the truth (one-hot per class, 0/1
for a positive-class column, or the class name for a label submission) plus a `Usage` column
(`Public` / `Private`). Rows are matched by id in any order, columns by name; each subset is
scored with the competition's metric (`kit.scoring.metric`; log loss by default: rows rescaled
to sum 1, clipped, float64).

A bad submission raises :class:`SubmissionError` naming the file and the id, column or row: an
empty file or one with only a header, a missing or extra id (with a hint when the ids belong to
another stage, e.g. fisheries' `test_stg2/...` rows scored against a stage-1 solution), a
duplicate id, a missing or unknown column, NaN, a non-numeric or negative value, a row that sums
to 0 (it cannot be rescaled), for a single-probability submission (dogs-vs-cats) a value
above 1, and for a label submission a value that is not a class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit.competition import Competition
from kit.core.errors import InputError
from kit.scoring.metric import get_metric
from kit.scoring.metrics import prior_probs
from kit.scoring.submission import (
    SubmissionError,
    check_ids,
    read_submission,
    validate_labels,
    validate_submission,
)

USAGE = "Usage"
USAGES = ("Public", "Private")


@dataclass(frozen=True, kw_only=True)
class ScoreResult:
    """Local leaderboard figures: the metric on the public and private rows (None where empty)."""

    public: float | None
    private: float | None
    overall: float
    n_rows: int
    n_public: int
    n_private: int
    metric: str = "log_loss"

    def to_dict(self) -> dict:
        return asdict(self)


def read_solution(path: Path, competition: Competition) -> pd.DataFrame:
    id_column = competition.submission.id_column
    try:
        solution = pd.read_csv(path, dtype={id_column: str})
    except FileNotFoundError as error:
        raise InputError(f"solution file {path} does not exist; pass --solution FILE") from error
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"cannot read solution file {path}: {error}") from error
    expected = [id_column, *competition.submission_columns(), USAGE]
    missing = [c for c in expected if c not in solution.columns]
    if missing:
        raise InputError(
            f"solution file {path} lacks columns {missing}; expected {expected}"
        )
    bad = sorted(set(solution[USAGE].astype(str)) - set(USAGES))
    if bad:
        raise InputError(f"solution file {path}: Usage must be Public or Private; found {bad}")
    _check_solution_rows(solution, competition, path)
    return solution


def _check_solution_rows(solution: pd.DataFrame, competition: Competition, path: Path) -> None:
    id_column = competition.submission.id_column
    if len(solution) == 0:
        raise InputError(f"solution file {path} has no rows; expected one row per test id")
    ids = solution[id_column].astype(str)
    duplicated = ids[ids.duplicated()].unique().tolist()
    if duplicated:
        raise InputError(f"solution file {path} has duplicate ids: {duplicated[:5]}")
    columns = list(competition.submission_columns())
    if competition.submission.kind == "label":
        _check_label_truth(solution, competition, path)
        return
    try:
        truth = solution[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InputError(f"solution file {path}: truth columns {columns} must be numbers "
                         f"({error})") from error
    if competition.submission.kind == "per_class":
        bad = ~(np.isin(truth, (0.0, 1.0)).all(axis=1) & (truth.sum(axis=1) == 1))
        what = "exactly one 1 among the class columns"
    else:
        bad = ~np.isin(truth[:, 0], (0.0, 1.0))
        what = f"0 or 1 in column {columns[0]!r}"
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"solution file {path}: the truth for id {ids.iloc[row]!r} is not one class: "
            f"expected {what}; found {truth[row].tolist()}"
        )


def _check_label_truth(solution: pd.DataFrame, competition: Competition, path: Path) -> None:
    column = competition.submission.value_column
    bad = ~solution[column].astype(str).isin(competition.classes)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"solution file {path}: the truth for id "
            f"{str(solution[competition.submission.id_column].iloc[row])!r} is "
            f"{solution[column].iloc[row]!r}, not a class of {competition.name}")


def _prefix(template: str) -> str:
    return template.split("{", 1)[0]


def stage_hint(competition: Competition) -> Callable[[list[str], list[str]], str]:
    """Explains id mismatches caused by test splits whose ids carry a folder prefix.

    Fisheries writes stage-2 ids as `test_stg2/<file>`: a stage-2 submission scored against a
    stage-1 solution has them as extra ids, a stage-1 submission scored against a stage-2
    solution misses them, and ids written without the prefix match nothing.
    """
    prefixes = [(split.name, _prefix(split.id_template)) for split in competition.test_splits
                if "/" in _prefix(split.id_template)]

    def hint(missing: list[str], extra: list[str]) -> str:
        for name, prefix in prefixes:
            missing_split = [i for i in missing if i.startswith(prefix)]
            extra_split = [i for i in extra if i.startswith(prefix)]
            if missing and len(missing_split) == len(missing) and not extra:
                return (f"The submission has no {name} rows (ids {prefix}<file>), which the "
                        f"solution has: score it against a solution of the same stage, or "
                        f"predict {name} too.")
            if extra and len(extra_split) == len(extra) and not missing:
                return (f"The solution has no {name} rows: score a submission with "
                        f"{prefix}<file> ids against a solution that has them (a {name} "
                        "solution).")
            bare = {i[len(prefix):] for i in missing_split}
            if bare and any(i in bare for i in extra):
                return (f"Ids of {name} must be written {prefix}<file>, e.g. "
                        f"{missing_split[0]!r}.")
        return ""

    return hint


def truth_indices(solution: pd.DataFrame, competition: Competition) -> np.ndarray:
    """Class index per solution row."""
    if competition.submission.kind == "label":
        index = {c: i for i, c in enumerate(competition.classes)}
        return np.array([index[str(v)] for v in solution[competition.submission.value_column]])
    if competition.submission.kind == "per_class":
        onehot = solution[list(competition.classes)].to_numpy(dtype=np.float64)
        return onehot.argmax(axis=1)
    positive = competition.classes.index(competition.submission.positive_class)
    values = solution[competition.submission.value_column].to_numpy(dtype=np.float64)
    negative = 1 - positive
    return np.where(values >= 0.5, positive, negative)


def submission_probs(frame: pd.DataFrame, competition: Competition) -> np.ndarray:
    """Submission values as an (n, n_classes) probability matrix in class order (a label
    submission: the one-hot matrix of its classes)."""
    if competition.submission.kind == "label":
        index = {c: i for i, c in enumerate(competition.classes)}
        labels = [index[str(v)] for v in frame[competition.submission.value_column]]
        return np.eye(competition.n_classes)[labels]
    if competition.submission.kind == "per_class":
        return frame[list(competition.classes)].to_numpy(dtype=np.float64)
    p = frame[competition.submission.value_column].to_numpy(dtype=np.float64)
    positive = competition.classes.index(competition.submission.positive_class)
    probs = np.empty((len(p), 2))
    probs[:, positive] = p
    probs[:, 1 - positive] = 1 - p
    return probs


def probs_to_submission(probs: np.ndarray, ids: list[str], competition: Competition) -> pd.DataFrame:
    """An (n, n_classes) probability matrix as a submission frame (ids first); a label
    submission gets each row's most probable class."""
    sub = competition.submission
    columns: dict[str, object] = {sub.id_column: pd.array(ids, dtype=object)}
    if sub.kind == "label":
        columns[sub.value_column] = [competition.classes[i] for i in probs.argmax(axis=1)]
    elif sub.kind == "per_class":
        # All class columns at once: inserting them one by one fragments the frame (pandas
        # warns past 100 columns, e.g. dog-breed's 120 classes).
        columns.update({name: probs[:, i] for i, name in enumerate(competition.classes)})
    else:
        columns[sub.value_column] = probs[:, competition.classes.index(sub.positive_class)]
    return pd.DataFrame(columns)


def validate_for_scoring(submission: pd.DataFrame, solution: pd.DataFrame,
                         competition: Competition, *, source: str = "submission") -> None:
    """All the checks :func:`score_frame` makes before scoring; see the module docstring.

    Raises:
        SubmissionError: naming `source` and the offending id, column or value.
    """
    id_column = competition.submission.id_column
    reference = solution[[id_column, *competition.submission_columns()]]
    if isinstance(submission, pd.DataFrame) and id_column in submission.columns:
        check_ids(submission, reference, id_column=id_column, source=source,
                  reference_name="the solution", hint=stage_hint(competition))
    if competition.submission.kind == "label":
        validate_labels(submission, reference, id_column=id_column,
                        classes=competition.classes, source=source,
                        reference_name="the solution")
        return
    per_class = competition.submission.kind == "per_class"
    validate_submission(submission, reference, id_column=id_column, source=source,
                        upper=None if per_class else 1.0, reference_name="the solution")
    if per_class:
        values = submission[list(competition.classes)].to_numpy(dtype=np.float64)
        zero = np.flatnonzero(~(values > 0).any(axis=1))
        if len(zero):
            row = int(zero[0])
            raise SubmissionError(
                f"{source}: the row of id {str(submission[id_column].iloc[row])!r} sums to 0; "
                "Kaggle rescales each row to sum 1, so at least one value must be positive."
            )


def score_frame(submission: pd.DataFrame, solution: pd.DataFrame, competition: Competition,
                *, source: str = "submission") -> ScoreResult:
    """Score a submission frame against a solution frame (rows matched by id, columns by name).

    Raises:
        SubmissionError: see :func:`validate_for_scoring`.
    """
    validate_for_scoring(submission, solution, competition, source=source)
    id_column = competition.submission.id_column
    submitted_ids = pd.Index([str(v) for v in submission[id_column].tolist()])
    order = submitted_ids.get_indexer([str(v) for v in solution[id_column].tolist()])
    probs = submission_probs(submission, competition)[order]
    y = truth_indices(solution, competition)
    usage = solution[USAGE].astype(str).to_numpy()
    metric = get_metric(competition.metric)
    scores = {}
    for name in USAGES:
        mask = usage == name
        scores[name] = metric.score(y[mask], probs[mask]) if mask.any() else None
    return ScoreResult(public=scores["Public"], private=scores["Private"],
                       overall=metric.score(y, probs), n_rows=len(solution),
                       n_public=int((usage == "Public").sum()),
                       n_private=int((usage == "Private").sum()), metric=metric.name)


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
    "stage_hint",
    "submission_probs",
    "truth_indices",
    "validate_for_scoring",
]
