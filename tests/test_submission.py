"""Tests for kit.scoring.submission."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.scoring.submission import (
    FLOAT_FORMAT,
    SubmissionError,
    read_submission,
    validate_submission,
    write_submission,
)

CLASSES = ["ALB", "BET", "NoF"]


def _sample() -> pd.DataFrame:
    ids = ["img_003.jpg", "img_001.jpg", "img_002.jpg"]
    return pd.DataFrame({"image": ids, **{c: [1 / 3] * 3 for c in CLASSES}})


def _submission() -> pd.DataFrame:
    """Valid, but with columns and rows in a different order than the sample."""
    return pd.DataFrame(
        {
            "NoF": [0.1, 0.2, 0.3],
            "image": ["img_001.jpg", "img_002.jpg", "img_003.jpg"],
            "ALB": [0.8, 0.7, 0.6],
            "BET": [0.1, 0.1, 0.1],
        }
    )


def _check(df: pd.DataFrame, match: str, sample: pd.DataFrame | None = None) -> None:
    with pytest.raises(SubmissionError, match=match):
        validate_submission(
            df, _sample() if sample is None else sample, id_column="image", source="sub.csv"
        )


def test_valid_submission_in_any_order_passes() -> None:
    validate_submission(_submission(), _sample(), id_column="image")
    validate_submission(_sample(), _sample(), id_column="image")


def test_submission_error_is_value_error() -> None:
    assert issubclass(SubmissionError, ValueError)


def test_id_column_missing() -> None:
    df = _submission().rename(columns={"image": "id"})
    _check(
        df, r"^sub\.csv: id column 'image' is missing; columns are \['NoF', 'id', 'ALB', 'BET'\]\.$"
    )


def test_id_column_not_in_sample_is_a_caller_error() -> None:
    with pytest.raises(
        ValueError, match=r"^id_column='id' is not a column of the sample submission"
    ):
        validate_submission(_submission(), _sample(), id_column="id")


def test_missing_and_unknown_columns_are_listed() -> None:
    df = _submission().rename(columns={"BET": "bet"}).assign(extra=0.0)
    _check(
        df,
        r"^sub\.csv: columns do not match the sample; missing columns: \['BET'\]; "
        r"unknown columns: \['bet', 'extra'\]\. Expected \['image', 'ALB', 'BET', 'NoF'\] "
        r"\(in any order\)\.$",
    )


def test_duplicate_columns() -> None:
    df = pd.concat([_submission(), _submission()[["ALB"]]], axis=1)
    _check(df, r"^sub\.csv: duplicate columns \['ALB'\]\.$")


def test_row_count() -> None:
    _check(_submission().iloc[:2], r"^sub\.csv: has 2 rows but the sample has 3 rows\.$")


def test_duplicate_ids_named() -> None:
    df = _submission()
    df.loc[2, "image"] = "img_001.jpg"
    _check(df, r"^sub\.csv: duplicate ids: 'img_001\.jpg'\.$")


def test_at_most_five_ids_listed() -> None:
    sample = pd.DataFrame({"image": [str(i) for i in range(10)], "ALB": 0.5})
    df = pd.DataFrame({"image": [f"x{i}" for i in range(10)], "ALB": 0.5})
    _check(
        df,
        r"missing ids: '0', '1', '2', '3', '4' \(and 5 more\); "
        r"extra ids: 'x0', 'x1', 'x2', 'x3', 'x4' \(and 5 more\)\.$",
        sample=sample,
    )
    df["image"] = list("aabbccddee")
    _check(df, r"duplicate ids: 'a', 'b', 'c', 'd', 'e'\.$", sample=sample)
    df["image"] = list("aabbccddef")
    df.loc[9, "image"] = "e"
    _check(df, r"duplicate ids: 'a', 'b', 'c', 'd', 'e'\.$", sample=sample)
    many = pd.DataFrame({"image": list("aabbccddeeff"), "ALB": 0.5})
    many_sample = pd.DataFrame({"image": [str(i) for i in range(12)], "ALB": 0.5})
    _check(many, r"duplicate ids: 'a', 'b', 'c', 'd', 'e' \(and 1 more\)\.$", sample=many_sample)


def test_id_sets_compared_as_strings() -> None:
    sample = pd.DataFrame({"id": ["1", "2", "3"], "label": [0.5] * 3})
    df = pd.DataFrame({"id": [3, 1, 2], "label": [0.1, 0.2, 0.3]})  # int ids are fine
    validate_submission(df, sample, id_column="id")
    df = pd.DataFrame({"id": [1.0, 2.0, 3.0], "label": [0.1, 0.2, 0.3]})
    with pytest.raises(
        SubmissionError, match=r"missing ids: '1', '2', '3'; extra ids: '1\.0', '2\.0', '3\.0'\.$"
    ):
        validate_submission(df, sample, id_column="id")


def test_wrong_ids_named() -> None:
    df = _submission()
    df.loc[0, "image"] = "img_999.jpg"
    _check(
        df,
        r"^sub\.csv: ids do not match the sample; missing ids: 'img_001\.jpg'; "
        r"extra ids: 'img_999\.jpg'\.$",
    )


def test_missing_id_value() -> None:
    df = _submission()
    df["image"] = ["img_001.jpg", None, "img_003.jpg"]
    _check(df, r"^sub\.csv: id column 'image' has a missing value at row 1\.$")


def test_nan_named_by_id_and_column() -> None:
    df = _submission()
    df.loc[1, "BET"] = np.nan
    df.loc[2, "ALB"] = np.nan
    _check(df, r"^sub\.csv: missing value \(NaN\) for id 'img_002\.jpg' in column 'BET'\.$")


def test_non_numeric_values() -> None:
    df = _submission()
    df["BET"] = ["0.1", "0.1", "high"]
    _check(
        df,
        r"^sub\.csv: non-numeric value '0\.1' for id 'img_001\.jpg' in column 'BET'; "
        r"expected probabilities in \[0, 1\]\.$",
    )
    df["BET"] = pd.Series([0.1, 0.2, "x"], dtype=object)
    _check(df, r"non-numeric value 'x' for id 'img_003\.jpg' in column 'BET'")
    df["BET"] = pd.Series([0.1, 0.2, 0.3], dtype=object)  # numbers in an object column are fine
    validate_submission(df, _sample(), id_column="image")


def test_boolean_values_rejected() -> None:
    df = _submission()
    df["BET"] = [True, False, True]
    _check(df, r"^sub\.csv: column 'BET' holds booleans; expected probabilities in \[0, 1\]\.$")


@pytest.mark.parametrize(
    ("value", "shown"), [(1.5, r"1\.5"), (-0.01, r"-0\.01"), (np.inf, "inf"), (-np.inf, "-inf")]
)
def test_values_outside_unit_interval(value: float, shown: str) -> None:
    df = _submission()
    df.loc[2, "NoF"] = value
    _check(
        df,
        rf"^sub\.csv: value {shown} for id 'img_003\.jpg' in column 'NoF' is outside \[0, 1\]\.$",
    )


def test_default_source_and_type_errors() -> None:
    with pytest.raises(SubmissionError, match=r"^submission: has 2 rows"):
        validate_submission(_submission().iloc[:2], _sample(), id_column="image")
    with pytest.raises(TypeError, match=r"df must be a pandas DataFrame; received dict"):
        validate_submission({}, _sample(), id_column="image")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sample must be a pandas DataFrame; received list"):
        validate_submission(_submission(), [], id_column="image")  # type: ignore[arg-type]


# -- write / read ----------------------------------------------------------------------------


def test_write_reorders_to_sample_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "out" / "run1.csv"
    assert write_submission(_submission(), path, sample=_sample(), id_column="image") == path
    lines = path.read_text().splitlines()
    assert lines == [
        "image,ALB,BET,NoF",
        "img_003.jpg,0.6,0.1,0.3",
        "img_001.jpg,0.8,0.1,0.1",
        "img_002.jpg,0.7,0.1,0.2",
    ]
    back = read_submission(path, id_column="image")
    validate_submission(back, _sample(), id_column="image", source=str(path))
    assert back["image"].tolist() == _sample()["image"].tolist()
    assert [p.name for p in path.parent.iterdir()] == ["run1.csv"]


def test_write_keeps_ids_exactly_and_small_probabilities(tmp_path: Path) -> None:
    sample = pd.DataFrame({"id": ["007", "010"], "label": [0.5, 0.5]})
    df = pd.DataFrame({"id": ["010", "007"], "label": [1e-7, 0.123456789123]})
    path = write_submission(df, tmp_path / "s.csv", sample=sample, id_column="id")
    assert FLOAT_FORMAT == "%.9g"
    assert path.read_text().splitlines() == ["id,label", "007,0.123456789", "010,1e-07"]
    back = read_submission(path, id_column="id")
    assert back["id"].tolist() == ["007", "010"]
    assert back["label"].tolist() == [0.123456789, 1e-7]


def test_write_integer_probabilities_as_floats(tmp_path: Path) -> None:
    sample = pd.DataFrame({"id": [1, 2], "label": [0.5, 0.5]})
    df = pd.DataFrame({"id": [2, 1], "label": [1, 0]})
    path = write_submission(df, tmp_path / "s.csv", sample=sample, id_column="id")
    assert path.read_text().splitlines() == ["id,label", "1,0", "2,1"]


def test_write_invalid_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    df = _submission()
    df.loc[0, "ALB"] = 2.0
    with pytest.raises(SubmissionError, match=rf"^{path}: value 2\.0 for id 'img_001\.jpg'"):
        write_submission(df, path, sample=_sample(), id_column="image")
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("old")
    write_submission(_submission(), path, sample=_sample(), id_column="image")
    assert path.read_text().startswith("image,ALB,BET,NoF\n")


def test_read_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(
        SubmissionError, match=rf"^{path}: no such file; expected a submission CSV\.$"
    ):
        read_submission(path, id_column="image")
    with pytest.raises(SubmissionError, match=r": is a directory; expected a submission CSV\.$"):
        read_submission(tmp_path, id_column="image")


def test_read_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(
        SubmissionError, match=rf"^{path}: empty file; expected a CSV with a header row\.$"
    ):
        read_submission(path, id_column="image")


def test_read_unparsable_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("image,ALB\na.jpg,0.5\nb.jpg,0.5,0.1,0.2\n")
    with pytest.raises(
        SubmissionError, match=rf"^{path}: not a parsable CSV: Error tokenizing data"
    ):
        read_submission(path, id_column="image")
    path.write_bytes(b"image,ALB\n\xff\xfe\x00a,0.5\n")
    with pytest.raises(SubmissionError, match=rf"^{path}: not a parsable CSV"):
        read_submission(path, id_column="image")


def test_read_without_id_column(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,ALB\na,0.5\n")
    with pytest.raises(
        SubmissionError,
        match=rf"^{path}: id column 'image' is missing; columns are \['id', 'ALB'\]\.$",
    ):
        read_submission(path, id_column="image")


def test_read_keeps_numeric_looking_ids_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,label\n001,0.5\n2,0.25\n")
    df = read_submission(path, id_column="id")
    assert df["id"].tolist() == ["001", "2"]
    assert df["label"].tolist() == [0.5, 0.25]


# -- ids checked first, unbounded values, mixed CSV columns (used by kit.scoring.score) ----------------


def test_check_ids_names_missing_and_extra_ids_with_the_row_counts() -> None:
    from kit.scoring.submission import check_ids

    with pytest.raises(
        SubmissionError,
        match=r"^sub\.csv: ids do not match the solution \(2 rows, expected 3\); missing ids: "
        r"'img_003\.jpg'; extra ids: none\. See the hint\.$",
    ):
        check_ids(_submission().iloc[:2], _sample(), id_column="image", source="sub.csv",
                  reference_name="the solution", hint=lambda missing, extra: "See the hint.")
    with pytest.raises(SubmissionError, match=r"^sub\.csv: has no rows \(only a header\); "
                                              r"expected 3 rows, one per id of the sample\.$"):
        check_ids(_submission().iloc[:0], _sample(), id_column="image", source="sub.csv")
    with pytest.raises(ValueError, match=r"id_column='id' is not a column of df"):
        check_ids(_submission(), _sample(), id_column="id")
    check_ids(_submission(), _sample(), id_column="image")


@pytest.mark.parametrize(("value", "message"), [
    (-0.01, r"value -0\.01 for id 'img_003\.jpg' in column 'NoF' is negative; expected "
            r"probabilities >= 0\.$"),
    (np.inf, r"value inf for id 'img_003\.jpg' in column 'NoF' is not finite"),
])
def test_unbounded_values_must_be_finite_and_not_negative(value: float, message: str) -> None:
    df = _submission()
    df.loc[2, "NoF"] = 7.5  # above 1 is fine without an upper bound (rows are rescaled)
    validate_submission(df, _sample(), id_column="image", upper=None)
    df.loc[2, "NoF"] = value
    with pytest.raises(SubmissionError, match=rf"^sub\.csv: {message}"):
        validate_submission(df, _sample(), id_column="image", source="sub.csv", upper=None)
    with pytest.raises(ValueError, match=r"upper must be a positive number or None; received "
                                         r"upper=0"):
        validate_submission(df, _sample(), id_column="image", upper=0)


def test_reference_name_appears_in_messages() -> None:
    with pytest.raises(SubmissionError, match=r"has 2 rows but the solution has 3 rows\.$"):
        validate_submission(_submission().iloc[:2], _sample(), id_column="image",
                            reference_name="the solution")


def test_read_names_the_text_cell_of_a_numeric_column(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("image,ALB,BET,NoF\nimg_001.jpg,0.8,0.1,0.1\nimg_002.jpg,0.7,high,0.2\n"
                    "img_003.jpg,0.6,0.1,0.3\n")
    df = read_submission(path, id_column="image")
    assert df["BET"].tolist() == [0.1, "high", 0.1]
    with pytest.raises(SubmissionError, match=r"non-numeric value 'high' for id 'img_002\.jpg' in "
                                              r"column 'BET'"):
        validate_submission(df, _sample(), id_column="image", source=str(path))
