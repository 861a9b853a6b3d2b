"""Validated, atomically written submission CSVs, checked against Kaggle's sample submission.

A submission is matched to the sample by column NAME and by id, never by position: columns and
rows may come in any order, and :func:`write_submission` puts them in the sample's order.

Example:
    >>> import pandas as pd
    >>> sample = pd.DataFrame({"id": ["1", "2"], "label": [0.5, 0.5]})
    >>> df = pd.DataFrame({"label": [0.9, 0.1], "id": ["2", "1"]})
    >>> validate_submission(df, sample, id_column="id")  # columns and rows may be reordered
    >>> write_submission(df, Path("submission.csv"), sample=sample, id_column="id")  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from kit.core.atomic import atomic_write_text
from kit.core.errors import DeclarationError, InputError

__all__ = [
    "FLOAT_FORMAT",
    "SubmissionError",
    "check_ids",
    "read_submission",
    "validate_labels",
    "validate_submission",
    "write_submission",
]

FLOAT_FORMAT: str = "%.9g"
"""How probabilities are written: 9 significant digits, so that a small but positive
probability (say 1e-7) is never rounded to 0, which Kaggle would then clip to 1e-15."""

_MAX_LISTED = 5


class SubmissionError(InputError):
    """A submission does not match its sample, or cannot be read; the message starts with its
    source (usually the file name)."""


def _listed(values: list) -> str:
    """Formats up to five values, with a count of the rest ("none" for no values)."""
    if not values:
        return "none"
    shown = ", ".join(repr(v) for v in values[:_MAX_LISTED])
    extra = len(values) - _MAX_LISTED
    return f"{shown} (and {extra} more)" if extra > 0 else shown


def _id_strings(series: pd.Series) -> list[str]:
    return [str(value) for value in series.tolist()]


def _check_frame(name: str, value: object) -> pd.DataFrame:
    if not isinstance(value, pd.DataFrame):
        raise DeclarationError(
            f"{name} must be a pandas DataFrame; received {type(value).__name__}. "
            "Use read_submission to read a CSV."
        )
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


IdHint = Callable[[list[str], list[str]], str]
"""Given the missing and the extra ids, returns a sentence to append to the error (or "")."""


def check_ids(
    df: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    id_column: str,
    source: str = "submission",
    reference_name: str = "the sample",
    hint: IdHint | None = None,
) -> None:
    """Checks the ids of ``df`` against those of ``reference``, naming every bad id.

    Checks, in order: ``df`` has rows; no id is missing (empty); no id is duplicated; ids,
    compared as strings, equal the reference's as sets (missing and extra ids are listed, up to
    five each). Unlike :func:`validate_submission`, a wrong row count is reported by its ids.

    Args:
        df: The submission; must have ``id_column``.
        reference: The frame whose ids are expected (a sample submission or a solution).
        id_column: Name of the id column.
        source: Where ``df`` comes from; every message starts with it.
        reference_name: How messages name ``reference``, e.g. ``"the solution"``.
        hint: Optional explanation appended to an id-mismatch message.

    Raises:
        SubmissionError: Describing the first failed check.
        ValueError: If ``id_column`` is not a column of both frames.
    """
    df = _check_frame("df", df)
    reference = _check_frame("reference", reference)
    for name, frame in (("df", df), ("reference", reference)):
        if id_column not in frame.columns:
            raise InputError(
                f"id_column={id_column!r} is not a column of {name}; its columns are "
                f"{[str(c) for c in frame.columns]}. Pass the id column name."
            )
    if len(df) == 0:
        raise SubmissionError(
            f"{source}: has no rows (only a header); expected {len(reference)} rows, one per id "
            f"of {reference_name}."
        )
    id_strings = _unique_ids(df[id_column], id_column, source)
    expected = _id_strings(reference[id_column])
    got = set(id_strings)
    wanted = set(expected)
    absent = [i for i in expected if i not in got]
    extra = [i for i in id_strings if i not in wanted]
    if absent or extra:
        note = hint(absent, extra) if hint is not None else ""
        raise SubmissionError(
            f"{source}: ids do not match {reference_name} ({len(df)} rows, expected "
            f"{len(reference)}); missing ids: {_listed(absent)}; extra ids: {_listed(extra)}."
            f"{' ' + note if note else ''}"
        )


def _unique_ids(ids: pd.Series, id_column: str, source: str) -> pd.Series:
    """The ids as strings, none missing and none twice."""
    missing_values = np.flatnonzero(ids.isna().to_numpy())
    if len(missing_values):
        raise SubmissionError(
            f"{source}: id column {id_column!r} has a missing value at row "
            f"{int(missing_values[0])}."
        )
    id_strings = pd.Series(_id_strings(ids), dtype=object)
    duplicated = id_strings.duplicated()
    if duplicated.any():
        duplicates = list(dict.fromkeys(id_strings[duplicated]))
        raise SubmissionError(f"{source}: duplicate ids: {_listed(duplicates)}.")
    return id_strings


def validate_submission(
    df: pd.DataFrame,
    sample: pd.DataFrame,
    *,
    id_column: str,
    source: str = "submission",
    upper: float | None = 1.0,
    reference_name: str = "the sample",
) -> None:
    """Checks ``df`` against the competition's ``sample`` submission.

    Checks, in order (the first failure raises): the id column exists; the column NAMES equal
    the sample's (order free; missing and unknown columns are listed); the row count equals
    the sample's; ids are not missing and not duplicated; ids, compared as strings, equal the
    sample's as sets; no value is NaN; every value is a (non-boolean) number; every value is
    in [0, ``upper``] (with ``upper=None``: finite and not negative).

    Args:
        df: The submission.
        sample: Kaggle's sample submission (defines the columns and ids).
        id_column: Name of the id column, e.g. ``"image"`` or ``"id"``.
        source: Where ``df`` comes from, e.g. a file name; every message starts with it.
        upper: The largest value allowed; None where any non-negative value is (Kaggle rescales
            each row of a per-class submission to sum 1).
        reference_name: How messages name ``sample``, e.g. ``"the solution"`` when scoring.

    Raises:
        SubmissionError: Describing the first failed check precisely (row ids, columns, values).
        TypeError: If ``df`` or ``sample`` is not a DataFrame.
        ValueError: If ``id_column`` is not a column of ``sample``.
    """
    if upper is not None and (isinstance(upper, bool) or not isinstance(upper, numbers.Real)
                              or not upper > 0):
        raise InputError(f"upper must be a positive number or None; received upper={upper!r}.")
    id_strings = _check_columns_and_ids(df, sample, id_column=id_column, source=source,
                                        reference_name=reference_name)
    value_columns = [c for c in sample.columns if c != id_column]
    _check_values(df[value_columns], id_strings, source, upper)


def validate_labels(df: pd.DataFrame, sample: pd.DataFrame, *, id_column: str,
                    classes: Sequence[str], source: str = "submission",
                    reference_name: str = "the sample") -> None:
    """Checks a label submission (the predicted class name per row) against ``sample``.

    The same column and id checks as :func:`validate_submission`; then every value must be one
    of ``classes``.

    Raises:
        SubmissionError: Naming the id, the column and the value that is not a class.
    """
    id_strings = _check_columns_and_ids(df, sample, id_column=id_column, source=source,
                                        reference_name=reference_name)
    known = set(classes)
    for column in (c for c in sample.columns if c != id_column):
        for row, value in enumerate(df[column].tolist()):
            if str(value) not in known or (isinstance(value, float) and np.isnan(value)):
                close = difflib.get_close_matches(str(value), list(classes), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SubmissionError(
                    f"{source}: value {value!r} for id {id_strings[row]!r} in column "
                    f"{column!r} is not a class{hint}; expected one of {_listed(list(classes))}."
                )


def _check_columns_and_ids(df: pd.DataFrame, sample: pd.DataFrame, *, id_column: str,
                           source: str, reference_name: str) -> pd.Series:
    """Frames, the id column, the sample's columns by name, the row count and the ids; returns
    the submission's ids as strings."""
    df = _check_frame("df", df)
    sample = _check_frame("sample", sample)
    if id_column not in sample.columns:
        raise InputError(
            f"id_column={id_column!r} is not a column of the sample submission; its columns are "
            f"{list(sample.columns)}. Pass the sample's id column name."
        )
    _check_columns(df, sample, id_column, source, reference_name)
    if len(df) != len(sample):
        raise SubmissionError(
            f"{source}: has {len(df)} rows but {reference_name} has {len(sample)} rows."
        )
    id_strings = _unique_ids(df[id_column], id_column, source)
    sample_ids = _id_strings(sample[id_column])
    got = set(id_strings)
    absent = [i for i in sample_ids if i not in got]
    if absent:
        wanted = set(sample_ids)
        extra = [i for i in id_strings if i not in wanted]
        raise SubmissionError(
            f"{source}: ids do not match {reference_name}; missing ids: {_listed(absent)}; "
            f"extra ids: {_listed(extra)}."
        )
    return id_strings


def _check_columns(df: pd.DataFrame, sample: pd.DataFrame, id_column: str, source: str,
                   reference_name: str) -> None:
    """The id column present, no column twice, the sample's columns by name (any order)."""
    columns = [str(c) for c in df.columns]
    if id_column not in df.columns:
        raise SubmissionError(
            f"{source}: id column {id_column!r} is missing; columns are {columns}."
        )
    duplicated_columns = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if duplicated_columns:
        raise SubmissionError(f"{source}: duplicate columns {duplicated_columns}.")
    expected = list(sample.columns)
    missing_columns = [c for c in expected if c not in df.columns]
    unknown_columns = [c for c in df.columns if c not in sample.columns]
    if missing_columns or unknown_columns:
        raise SubmissionError(
            f"{source}: columns do not match {reference_name}; missing columns: {missing_columns}; "
            f"unknown columns: {unknown_columns}. Expected {expected} (in any order)."
        )


def _check_numbers(values: pd.DataFrame, id_strings: pd.Series, source: str) -> None:
    """No NaN, no booleans, nothing that is not a number."""
    value_columns = list(values.columns)
    nan_rows, nan_cols = np.nonzero(values.isna().to_numpy())
    if len(nan_rows):
        row, col = int(nan_rows[0]), int(nan_cols[0])
        raise SubmissionError(
            f"{source}: missing value (NaN) for id {id_strings[row]!r} in column "
            f"{value_columns[col]!r}."
        )
    for column in value_columns:
        series = values[column]
        if pd.api.types.is_bool_dtype(series):
            raise SubmissionError(
                f"{source}: column {column!r} holds booleans; expected probabilities in [0, 1]."
            )
        if pd.api.types.is_numeric_dtype(series):
            continue
        for row, value in enumerate(series.tolist()):
            if not _is_number(value):
                raise SubmissionError(
                    f"{source}: non-numeric value {value!r} for id {id_strings[row]!r} in "
                    f"column {column!r}; expected probabilities in [0, 1]."
                )


def _check_values(values: pd.DataFrame, id_strings: pd.Series, source: str,
                  upper: float | None) -> None:
    """Numbers in [0, upper] (with upper None: finite and not negative)."""
    _check_numbers(values, id_strings, source)
    value_columns = list(values.columns)
    numeric = values.to_numpy(dtype=np.float64)
    if upper is None:
        _check_non_negative(numeric, id_strings, value_columns, source)
        return
    bad_rows, bad_cols = np.nonzero(~((numeric >= 0.0) & (numeric <= upper)))
    if len(bad_rows):
        row, col = int(bad_rows[0]), int(bad_cols[0])
        raise SubmissionError(
            f"{source}: value {float(numeric[row, col])!r} for id {id_strings[row]!r} in column "
            f"{value_columns[col]!r} is outside [0, {upper:g}]."
        )


def _check_non_negative(numeric: np.ndarray, ids: pd.Series, columns: list, source: str) -> None:
    bad_rows, bad_cols = np.nonzero(~np.isfinite(numeric))
    if len(bad_rows):
        row, col = int(bad_rows[0]), int(bad_cols[0])
        raise SubmissionError(
            f"{source}: value {float(numeric[row, col])!r} for id {ids[row]!r} in column "
            f"{columns[col]!r} is not finite; expected probabilities >= 0."
        )
    bad_rows, bad_cols = np.nonzero(numeric < 0.0)
    if len(bad_rows):
        row, col = int(bad_rows[0]), int(bad_cols[0])
        raise SubmissionError(
            f"{source}: value {float(numeric[row, col])!r} for id {ids[row]!r} in column "
            f"{columns[col]!r} is negative; expected probabilities >= 0."
        )


def write_submission(
    df: pd.DataFrame,
    path: Path,
    *,
    sample: pd.DataFrame,
    id_column: str,
    classes: Sequence[str] | None = None,
) -> Path:
    """Validates ``df``, puts it in the sample's column and row order, and writes it atomically.

    Ids are written exactly as they appear in the sample; probabilities as float64 with
    :data:`FLOAT_FORMAT` (``%.9g``). Parent directories are created.

    Args:
        df: The submission; columns and rows in any order.
        path: Destination CSV.
        sample: Kaggle's sample submission.
        id_column: Name of the id column.
        classes: For a label submission (class names in the value column), the classes; None
            for probabilities.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        SubmissionError: If :func:`validate_submission` fails (the message starts with ``path``).
    """
    path = Path(path)
    if classes is None:
        validate_submission(df, sample, id_column=id_column, source=str(path))
    else:
        validate_labels(df, sample, id_column=id_column, classes=classes, source=str(path))
    value_columns = [c for c in sample.columns if c != id_column]
    by_id = df[value_columns] if classes is not None else df[value_columns].astype(np.float64)
    by_id.index = pd.Index(_id_strings(df[id_column]), dtype=object)
    ordered = by_id.loc[_id_strings(sample[id_column])].reset_index(drop=True)
    out = pd.DataFrame({id_column: sample[id_column].reset_index(drop=True)})
    out = pd.concat([out, ordered], axis=1)[list(sample.columns)]
    text = out.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return atomic_write_text(path, text)


def read_submission(path: Path, *, id_column: str) -> pd.DataFrame:
    """Reads a submission CSV, keeping the id column as strings.

    In a value column holding some text, the cells that parse as numbers become numbers (the
    text stays), so that :func:`validate_submission` names the cell that is not a number.

    Raises:
        SubmissionError: Naming the file, if it is missing, empty, not a parsable CSV, or has
            no ``id_column``.
    """
    path = Path(path)
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "no such file"
        raise SubmissionError(f"{path}: {reason}; expected a submission CSV.")
    try:
        df = pd.read_csv(path, dtype={id_column: str})
    except pd.errors.EmptyDataError as error:
        raise SubmissionError(f"{path}: empty file; expected a CSV with a header row.") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise SubmissionError(f"{path}: not a parsable CSV: {error}") from error
    if id_column not in df.columns:
        raise SubmissionError(
            f"{path}: id column {id_column!r} is missing; columns are "
            f"{[str(c) for c in df.columns]}."
        )
    for column in df.columns:
        series = df[column]
        if column != id_column and not (pd.api.types.is_numeric_dtype(series)
                                         or pd.api.types.is_bool_dtype(series)):
            # one bad cell turns a whole CSV column into text: keep the numbers as numbers, so
            # that validation names the cell that is not one
            numbers_ = pd.to_numeric(series, errors="coerce")
            df[column] = series.astype(object).where(numbers_.isna(), numbers_.astype(object))
    return df
