"""Seeded stratified (optionally grouped) K-fold assignment, and the ``folds.csv`` that records it.

:func:`assign_folds` is pure. Its contract:

* every sample is in exactly one fold, numbered ``0 .. n_splits - 1``, and no fold is empty;
* without groups (``StratifiedKFold``): fold sizes differ by at most one, and each class's
  count differs by at most one between any two folds;
* with groups (``StratifiedGroupKFold``): all samples of a group share one fold (checked after
  splitting, so related images, e.g. one boat's, never straddle train and validation); class
  balance is then best effort;
* the same labels, groups and seed give the same folds; different seeds give different folds
  (whenever more than one assignment is possible).

Example:
    >>> assign_folds(["a", "a", "b", "b"], n_splits=2, seed=0).tolist()
    [1, 0, 0, 1]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from kit.core.atomic import atomic_write_text
from kit.core.errors import DeclarationError, InputError, MissingFileError

__all__ = ["FOLD_COLUMNS", "assign_folds", "check_fold_count", "load_folds", "save_folds"]

FOLD_COLUMNS: tuple[str, ...] = ("id", "fold")
"""Required columns of a folds CSV; an optional ``group`` column may follow."""

_GROUP_COLUMN = "group"


def _plain(value: object) -> object:
    """Returns numpy scalars as Python ones, so messages read ``3`` rather than ``np.int64(3)``."""
    return value.item() if isinstance(value, np.generic) else value


def _check_int(name: str, value: object, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DeclarationError(
            f"{name} must be an integer >= {minimum}; received {name}={_plain(value)!r} "
            f"of type {type(value).__name__}. {fix}"
        )
    if value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; received {name}={value}. {fix}")
    return int(value)


def _as_1d(name: str, values: Sequence) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        raise DeclarationError(
            f"{name} must be a sequence with one entry per sample; received the string "
            f"{values!r}. Pass a list, array or pandas Series."
        )
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(
            f"{name} must be 1-D with one entry per sample; received shape {array.shape}."
        )
    missing = pd.isna(array)
    if missing.any():
        position = int(np.flatnonzero(missing)[0])
        raise InputError(
            f"{name} must not contain missing values; position {position} is {_plain(array[position])!r}."
            f" Drop or fill those samples first."
        )
    return array


def assign_folds(
    labels: Sequence,
    *,
    n_splits: int = 5,
    seed: int = 0,
    groups: Sequence | None = None,
) -> np.ndarray:
    """Assigns each sample a fold, stratified by label and, if given, grouped.

    Args:
        labels: One class label per sample (any hashable, comparable values).
        n_splits: Number of folds, >= 2.
        seed: Seed of the shuffle (``random_state`` of the sklearn splitter), >= 0.
        groups: Optional group per sample (e.g. the boat); a group never spans two folds.

    Returns:
        An int64 array of shape (n,) with fold numbers in ``0 .. n_splits - 1``.

    Raises:
        TypeError: If ``n_splits`` or ``seed`` is not an integer.
        ValueError: If ``labels`` is empty or has missing values, ``n_splits < 2``,
            ``groups`` has a different length, ``n_splits`` exceeds the smallest class count
            (without groups), the number of groups or the largest class count (with groups),
            or a fold would be empty (grouped splitting can leave one empty).
        RuntimeError: If the splitter ever put one group into two folds.
    """
    n_splits = _check_int("n_splits", n_splits, 2, "Use --folds 2 or more.")
    seed = _check_int("seed", seed, 0, "Use a non-negative integer seed.")
    y = _as_1d("labels", labels)
    if len(y) == 0:
        raise InputError("labels is empty; assign_folds needs at least one sample per fold.")
    g = None if groups is None else _as_1d("groups", groups)
    splits = (_stratified_splits(y, n_splits, seed) if g is None
              else _grouped_splits(y, g, n_splits, seed))
    folds = np.full(len(y), -1, dtype=np.int64)
    for fold, (_, test_index) in enumerate(splits):
        folds[test_index] = fold
    _check_folds(folds, g, n_splits=n_splits, seed=seed)
    return folds


def _stratified_splits(y: np.ndarray, n_splits: int, seed: int) -> list:
    classes, counts = np.unique(y, return_counts=True)
    smallest = int(np.argmin(counts))
    if counts[smallest] < n_splits:
        fix = (
            f"Use --folds {counts[smallest]} or fewer, or merge rare classes."
            if counts[smallest] >= 2
            else "A class with 1 sample cannot be stratified; merge or drop it."
        )
        raise InputError(
            f"n_splits={n_splits} is greater than the number of samples in class "
            f"{_plain(classes[smallest])!r}: {counts[smallest]}. {fix}"
        )
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros((len(y), 1)), y))


def _grouped_splits(y: np.ndarray, g: np.ndarray, n_splits: int, seed: int) -> list:
    if len(g) != len(y):
        raise InputError(
            f"groups must have one entry per sample; received len(groups)={len(g)} and "
            f"len(labels)={len(y)}."
        )
    n_groups = len(pd.unique(g))
    if n_groups < n_splits:
        raise InputError(
            f"n_splits={n_splits} is greater than the number of groups: n_groups={n_groups}."
            f" Use --folds {n_groups} or fewer, or split without groups."
        )
    classes, counts = np.unique(y, return_counts=True)
    largest = int(np.argmax(counts))
    if counts[largest] < n_splits:
        raise InputError(
            f"n_splits={n_splits} is greater than the number of samples in every class "
            f"(the largest, {_plain(classes[largest])!r}, has {counts[largest]}). "
            "Use fewer folds."
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # With groups, stratification is best effort; a rare class is expected, not news.
        warnings.filterwarnings(
            "ignore", message="The least populated class", category=UserWarning
        )
        return list(splitter.split(np.zeros((len(y), 1)), y, groups=g))


def _check_folds(folds: np.ndarray, g: np.ndarray | None, *, n_splits: int, seed: int) -> None:
    """Every sample in a fold, no fold empty, no group in two folds."""
    if (folds < 0).any():  # pragma: no cover - sklearn always covers every sample
        raise RuntimeError("the splitter left some samples without a fold; this is a bug.")
    sizes = np.bincount(folds, minlength=n_splits)
    if (sizes == 0).any():
        empty = int(np.flatnonzero(sizes == 0)[0])
        raise InputError(
            f"fold {empty} is empty with n_splits={n_splits} and seed={seed}: grouped splitting "
            f"balances class proportions, not fold sizes, and left no group for that fold. "
            f"Use --folds {n_splits - 1} or fewer, or split without groups."
        )
    if g is not None:
        folds_per_group = pd.Series(folds).groupby(pd.Series(g, dtype=object)).nunique()
        straddling = folds_per_group[folds_per_group > 1]
        if len(straddling):  # StratifiedGroupKFold promises this never happens; check anyway
            raise RuntimeError(
                f"group {_plain(straddling.index[0])!r} was split across folds; refusing to return "
                "leaky folds. This is a bug in the splitter."
            )


def check_fold_count(labels: Sequence, n_folds: int, *, groups: Sequence | None = None,
                     option: str = "--folds") -> None:
    """Whether `n_folds` folds can be drawn, said in the user's terms before any work.

    Without groups every class needs `n_folds` images; with groups there must be `n_folds`
    groups.

    Raises:
        InputError: Naming `option`, the class or the group count, and the fix.
    """
    y = np.asarray(labels)
    if groups is not None:
        n_groups = len(pd.unique(np.asarray(groups)))
        if n_groups < n_folds:
            raise InputError(f"{option} {n_folds}: the training images fall into {n_groups} "
                             f"groups, and group folds need one group per fold at least; use "
                             f"{option} {n_groups} or fewer")
        return
    classes, counts = np.unique(y, return_counts=True)
    if not len(counts):
        raise InputError("no training images to fold")
    smallest = int(np.argmin(counts))
    if counts[smallest] < n_folds:
        fix = (f"use {option} {counts[smallest]} or fewer, or merge rare classes"
               if counts[smallest] >= 2 else "a class with one image cannot be stratified: "
               "merge or drop it")
        raise InputError(f"{option} {n_folds}: class {_plain(classes[smallest])!r} has "
                         f"{counts[smallest]} training images, fewer than the folds; {fix}")


def save_folds(
    path: Path,
    ids: Sequence[str],
    folds: np.ndarray,
    *,
    groups: Sequence | None = None,
) -> None:
    """Writes ``id,fold`` (and ``group`` when given) to a CSV, atomically.

    Args:
        path: Destination CSV; parent directories are created.
        ids: Unique sample ids, written as strings.
        folds: Non-negative integer fold per sample, same length as ``ids``.
        groups: Optional group per sample, written as strings.

    Raises:
        ValueError: On mismatched lengths, duplicate ids, or folds that are not non-negative
            integers.
    """
    id_array = _as_1d("ids", ids)
    fold_array = np.asarray(folds)
    if fold_array.ndim != 1 or len(fold_array) != len(id_array):
        raise InputError(
            f"folds must be 1-D with one entry per id; received folds of shape "
            f"{fold_array.shape} for {len(id_array)} ids."
        )
    if not np.issubdtype(fold_array.dtype, np.integer) or (fold_array < 0).any():
        raise InputError(
            f"folds must be non-negative integers; received dtype {fold_array.dtype} "
            f"with values {np.unique(fold_array)[:10].tolist()}. Use assign_folds."
        )
    id_strings = pd.Series([str(i) for i in id_array], dtype=object)
    duplicated = id_strings[id_strings.duplicated()]
    if len(duplicated):
        raise InputError(f"ids must be unique; received duplicates {sorted(set(duplicated))[:5]}.")
    table = {"id": id_strings, "fold": pd.Series(fold_array.astype(np.int64))}
    if groups is not None:
        group_array = _as_1d("groups", groups)
        if len(group_array) != len(id_array):
            raise InputError(
                f"groups must have one entry per id; received len(groups)={len(group_array)} "
                f"and len(ids)={len(id_array)}."
            )
        table[_GROUP_COLUMN] = pd.Series([str(v) for v in group_array], dtype=object)
    atomic_write_text(Path(path), pd.DataFrame(table).to_csv(index=False, lineterminator="\n"))


def load_folds(path: Path) -> pd.DataFrame:
    """Reads a folds CSV written by :func:`save_folds`.

    Returns:
        A DataFrame with columns ``id`` (str), ``fold`` (int64) and, if present, ``group``
        (str: groups come back as strings whatever they were when saved).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is empty, unparsable, lacks ``id``/``fold`` columns, has
            unknown columns, non-integer or negative folds, or duplicate ids. The message
            names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"folds file {path} does not exist; create it with save_folds (or `kit run`)."
        )
    try:
        df = pd.read_csv(path, dtype={"id": str, _GROUP_COLUMN: str}, keep_default_na=False)
    except pd.errors.EmptyDataError as error:
        raise InputError(f"folds file {path} is empty; expected columns id,fold.") from error
    except pd.errors.ParserError as error:
        raise InputError(f"folds file {path} is not a valid CSV: {error}") from error
    columns = list(df.columns)
    allowed = {*FOLD_COLUMNS, _GROUP_COLUMN}
    missing = [c for c in FOLD_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in allowed]
    if missing or unknown:
        raise InputError(
            f"folds file {path} has columns {columns}; expected id,fold with an optional group "
            f"column (missing: {missing}, unknown: {unknown})."
        )
    if not pd.api.types.is_integer_dtype(df["fold"]) or (df["fold"] < 0).any():
        raise InputError(
            f"folds file {path}: column fold must hold non-negative integers; found "
            f"{df['fold'].astype(str).unique()[:5].tolist()}."
        )
    duplicated = df["id"][df["id"].duplicated()]
    if len(duplicated):
        raise InputError(f"folds file {path} has duplicate ids: {sorted(set(duplicated))[:5]}.")
    df["fold"] = df["fold"].astype(np.int64)
    return df
