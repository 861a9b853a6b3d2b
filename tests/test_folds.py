"""Tests for kit.data.folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.data.folds import assign_folds, load_folds, save_folds

# 30 samples: 15 'ALB', 9 'YFT', 6 'LAG'.
LABELS = ["ALB"] * 15 + ["YFT"] * 9 + ["LAG"] * 6


def _shuffled_labels(seed: int = 0) -> list[str]:
    return list(np.random.default_rng(seed).permutation(LABELS))


# -- contract without groups -----------------------------------------------------------------


@pytest.mark.parametrize("n_splits", [2, 3, 5])
def test_every_sample_in_exactly_one_fold(n_splits: int) -> None:
    folds = assign_folds(_shuffled_labels(), n_splits=n_splits, seed=0)
    assert folds.dtype == np.int64
    assert folds.shape == (30,)
    assert set(folds.tolist()) == set(range(n_splits))


@pytest.mark.parametrize("n_splits", [2, 3, 4, 5])
def test_fold_sizes_differ_by_at_most_one(n_splits: int) -> None:
    sizes = np.bincount(assign_folds(_shuffled_labels(1), n_splits=n_splits, seed=3))
    assert sizes.max() - sizes.min() <= 1


@pytest.mark.parametrize("n_splits", [2, 3, 4, 5])
def test_class_counts_per_fold_differ_by_at_most_one(n_splits: int) -> None:
    labels = np.array(_shuffled_labels(2))
    folds = assign_folds(labels, n_splits=n_splits, seed=7)
    for label in np.unique(labels):
        counts = np.bincount(folds[labels == label], minlength=n_splits)
        assert counts.max() - counts.min() <= 1, (label, counts)


def test_deterministic_for_a_seed_and_seeds_differ() -> None:
    labels = _shuffled_labels()
    first = assign_folds(labels, n_splits=5, seed=42)
    np.testing.assert_array_equal(first, assign_folds(labels, n_splits=5, seed=42))
    assert not np.array_equal(first, assign_folds(labels, n_splits=5, seed=43))


def test_accepts_series_and_integer_labels() -> None:
    series = pd.Series([0, 1] * 5)
    folds = assign_folds(series, n_splits=5, seed=0)
    np.testing.assert_array_equal(folds, assign_folds([0, 1] * 5, n_splits=5, seed=0))


def test_singleton_class_cannot_be_stratified() -> None:
    with pytest.raises(
        ValueError,
        match=(
            r"^n_splits=2 is greater than the number of samples in class 'b': 1\. "
            r"A class with 1 sample cannot be stratified; merge or drop it\.$"
        ),
    ):
        assign_folds(["a", "a", "b"], n_splits=2)


def test_too_few_samples_in_a_class_names_class_and_numbers() -> None:
    with pytest.raises(
        ValueError,
        match=(
            r"^n_splits=7 is greater than the number of samples in class 'LAG': 6\. "
            r"Use --folds 6 or fewer, or merge rare classes\.$"
        ),
    ):
        assign_folds(LABELS, n_splits=7)


@pytest.mark.parametrize(
    ("n_splits", "error", "match"),
    [
        (1, ValueError, r"^n_splits must be an integer >= 2; received n_splits=1\. Use --folds 2"),
        (0, ValueError, r"received n_splits=0\."),
        (2.0, TypeError, r"n_splits must be an integer >= 2; received n_splits=2\.0 of type float"),
        (True, TypeError, r"received n_splits=True of type bool"),
        (np.int64(1), ValueError, r"received n_splits=1\."),
    ],
)
def test_n_splits_validated(n_splits: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        assign_folds(LABELS, n_splits=n_splits)  # type: ignore[arg-type]


def test_seed_validated() -> None:
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0; received seed=-1\."):
        assign_folds(LABELS, seed=-1)
    with pytest.raises(TypeError, match=r"seed must be an integer >= 0; received seed=None"):
        assign_folds(LABELS, seed=None)  # type: ignore[arg-type]


def test_labels_validated() -> None:
    with pytest.raises(ValueError, match=r"labels is empty"):
        assign_folds([])
    with pytest.raises(
        ValueError, match=r"labels must not contain missing values; position 1 is None"
    ):
        assign_folds(["a", None, "b"])
    with pytest.raises(ValueError, match=r"labels must be 1-D .*shape \(2, 2\)"):
        assign_folds([[0, 1], [1, 0]])
    with pytest.raises(TypeError, match=r"labels must be a sequence .*received the string 'ab'"):
        assign_folds("ab")


# -- groups ----------------------------------------------------------------------------------


def _grouped_data() -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(0)
    labels, groups = [], []
    for boat in range(8):
        size = int(rng.integers(3, 7))
        labels += list(rng.choice(["ALB", "YFT", "NoF"], size=size))
        groups += [f"boat{boat}"] * size
    return labels, groups


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_groups_never_straddle_folds(seed: int) -> None:
    labels, groups = _grouped_data()
    folds = assign_folds(labels, n_splits=4, seed=seed, groups=groups)
    assert folds.dtype == np.int64
    assert set(folds.tolist()) == {0, 1, 2, 3}
    per_group = pd.Series(folds).groupby(pd.Series(groups)).nunique()
    assert (per_group == 1).all()


def test_groups_deterministic_for_a_seed() -> None:
    labels, groups = _grouped_data()
    first = assign_folds(labels, n_splits=4, seed=5, groups=groups)
    np.testing.assert_array_equal(first, assign_folds(labels, n_splits=4, seed=5, groups=groups))


def test_groups_allow_rare_classes_without_warning(recwarn: pytest.WarningsRecorder) -> None:
    labels = ["a"] * 5 + ["b"]
    folds = assign_folds(labels, n_splits=2, seed=0, groups=[1, 1, 2, 2, 3, 3])
    assert set(folds.tolist()) == {0, 1}
    assert not [w for w in recwarn if "least populated" in str(w.message)]


def test_fewer_groups_than_splits() -> None:
    with pytest.raises(
        ValueError,
        match=r"^n_splits=5 is greater than the number of groups: n_groups=3\. Use --folds 3",
    ):
        assign_folds(["a", "b"] * 3, n_splits=5, groups=[1, 1, 2, 2, 3, 3])


def test_groups_length_and_missing_values() -> None:
    with pytest.raises(ValueError, match=r"received len\(groups\)=2 and len\(labels\)=4\."):
        assign_folds(["a", "b", "a", "b"], n_splits=2, groups=[1, 2])
    with pytest.raises(ValueError, match=r"groups must not contain missing values; position 0"):
        assign_folds(["a", "b"], n_splits=2, groups=[np.nan, 1])


def test_empty_fold_is_reported() -> None:
    # 4 groups for 4 folds, yet StratifiedGroupKFold (balancing class proportions) puts two
    # groups together and leaves fold 2 empty, whatever the seed.
    labels = [0, 1, 1, 1, 2, 0, 1, 1, 2, 0, 1, 2]
    groups = [3, 1, 3, 0, 3, 2, 1, 0, 1, 2, 1, 1]
    with pytest.raises(
        ValueError,
        match=(
            r"^fold 2 is empty with n_splits=4 and seed=0: grouped splitting balances class "
            r"proportions, not fold sizes, and left no group for that fold\. Use --folds 3 or "
            r"fewer, or split without groups\.$"
        ),
    ):
        assign_folds(labels, n_splits=4, seed=0, groups=groups)
    folds = assign_folds(labels, n_splits=3, seed=0, groups=groups)
    assert set(folds.tolist()) == {0, 1, 2}


def test_groups_with_every_class_smaller_than_n_splits() -> None:
    with pytest.raises(
        ValueError,
        match=(
            r"^n_splits=3 is greater than the number of samples in every class "
            r"\(the largest, 'a', has 2\)\. Use fewer folds\.$"
        ),
    ):
        assign_folds(["a", "a", "b"], n_splits=3, groups=[1, 2, 3])


def test_group_split_across_folds_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class LeakySplitter:
        def __init__(self, **kwargs: object) -> None:
            pass

        def split(self, x, y, groups):
            yield np.array([2, 3]), np.array([0, 1])
            yield np.array([0, 1]), np.array([2, 3])

    monkeypatch.setattr("kit.data.folds.StratifiedGroupKFold", LeakySplitter)
    with pytest.raises(RuntimeError, match=r"^group 'g1' was split across folds; refusing"):
        assign_folds(["a", "b", "a", "b"], n_splits=2, groups=["g0", "g1", "g1", "g2"])


# -- save / load -----------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "work" / "folds.csv"
    ids = ["img_001.jpg", "NA", "0012"]
    save_folds(path, ids, np.array([0, 1, 0]), groups=[7, 8, 7])
    assert path.read_text().splitlines() == [
        "id,fold,group",
        "img_001.jpg,0,7",
        "NA,1,8",
        "0012,0,7",
    ]
    df = load_folds(path)
    assert list(df.columns) == ["id", "fold", "group"]
    assert df["id"].tolist() == ids
    assert df["fold"].dtype == np.int64
    assert df["group"].tolist() == ["7", "8", "7"]


def test_save_without_groups(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    save_folds(path, ["a", "b"], np.array([1, 0]))
    df = load_folds(path)
    assert list(df.columns) == ["id", "fold"]
    assert df["fold"].tolist() == [1, 0]
    assert [p.name for p in tmp_path.iterdir()] == ["folds.csv"]


def test_save_validates(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    with pytest.raises(ValueError, match=r"one entry per id; received folds of shape \(1,\) for 2"):
        save_folds(path, ["a", "b"], np.array([0]))
    with pytest.raises(
        ValueError, match=r"folds must be non-negative integers; received dtype float64"
    ):
        save_folds(path, ["a", "b"], np.array([0.0, 1.0]))
    with pytest.raises(
        ValueError, match=r"non-negative integers; received dtype int64 with values \[-1, 0\]"
    ):
        save_folds(path, ["a", "b"], np.array([0, -1]))
    with pytest.raises(ValueError, match=r"ids must be unique; received duplicates \['a'\]"):
        save_folds(path, ["a", "a"], np.array([0, 1]))
    with pytest.raises(ValueError, match=r"received len\(groups\)=1 and len\(ids\)=2"):
        save_folds(path, ["a", "b"], np.array([0, 1]), groups=["g"])
    assert not path.exists()


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    with pytest.raises(FileNotFoundError, match=rf"^folds file {path} does not exist; create it"):
        load_folds(path)


def test_load_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    path.write_text("")
    with pytest.raises(ValueError, match=rf"^folds file {path} is empty; expected columns id,fold"):
        load_folds(path)


def test_load_wrong_columns(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    path.write_text("image,fold,boat\na,0,1\n")
    with pytest.raises(
        ValueError,
        match=(
            rf"^folds file {path} has columns \['image', 'fold', 'boat'\]; expected id,fold with an "
            r"optional group column \(missing: \['id'\], unknown: \['image', 'boat'\]\)\.$"
        ),
    ):
        load_folds(path)


def test_load_bad_fold_values_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    path.write_text("id,fold\na,0\nb,x\n")
    with pytest.raises(
        ValueError, match=r"column fold must hold non-negative integers; found \['0', 'x'\]"
    ):
        load_folds(path)
    path.write_text("id,fold\na,0\nb,\n")
    with pytest.raises(ValueError, match=r"column fold must hold non-negative integers"):
        load_folds(path)
    path.write_text("id,fold\na,0\na,1\n")
    with pytest.raises(ValueError, match=rf"^folds file {path} has duplicate ids: \['a'\]\.$"):
        load_folds(path)


def test_assign_save_load_matches(tmp_path: Path) -> None:
    labels = _shuffled_labels()
    ids = [f"img_{i:03d}.jpg" for i in range(len(labels))]
    folds = assign_folds(labels, n_splits=3, seed=0)
    save_folds(tmp_path / "folds.csv", ids, folds)
    np.testing.assert_array_equal(load_folds(tmp_path / "folds.csv")["fold"].to_numpy(), folds)
