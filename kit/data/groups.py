"""Groups of training images (the boat, person or camera an image shows), read from a CSV.

Two sources: a `path,group` file (`run --groups CSV`, or the groups `kit probe` inferred), `path`
relative to the data root as in the image table; or the competition's declaration
(`CsvGroups`: State Farm's `driver_imgs_list.csv`, the image's path built from each row). Group
K-fold keeps each group in one fold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.competition import Competition
from kit.core.errors import InputError, MissingFileError
from kit.data.labels import read_csv


def read_groups(path: Path, train: pd.DataFrame) -> np.ndarray:
    """The group of every training row (image-table order) from a `path,group` CSV.

    Raises:
        MissingFileError: The file does not exist.
        InputError: It lacks a column, or a training image has no group (examples named).
    """
    try:
        frame = pd.read_csv(path, dtype={"path": str})
    except FileNotFoundError as error:
        raise MissingFileError(f"groups file {path} does not exist") from error
    missing_cols = {"path", "group"} - set(frame.columns)
    if missing_cols:
        raise InputError(
            f"groups file {path} needs columns path,group; missing {sorted(missing_cols)}"
        )
    mapping = dict(zip(frame["path"].astype(str), frame["group"].astype(str), strict=True))
    absent = [p for p in train["path"] if p not in mapping]
    if absent:
        raise InputError(
            f"groups file {path} has no group for {len(absent)} training images "
            f"(e.g. {absent[:3]}); paths are relative to the data root"
        )
    return np.array([mapping[p] for p in train["path"]])


def declared_groups(competition: Competition, root: Path, train: pd.DataFrame) -> np.ndarray:
    """The group of every training row (image-table order) from the competition's `CsvGroups`.

    Raises:
        InputError: The competition declares no groups, the CSV lacks a column, a row names an
            image twice with two groups, or a training image has no row (file and rows named).
    """
    source = competition.groups
    if source is None:
        raise InputError(f"competition {competition.name} declares no groups (its "
                         "competition.py has no groups=CsvGroups(...))")
    file = root / source.file
    frame = read_csv(file, columns=(source.group_column, *source.template_columns),
                     what="groups file")
    mapping: dict[str, tuple[str, int]] = {}
    for index, row in frame.iterrows():
        line = int(index) + 2  # the header is line 1
        path = Path(source.path_template.format(**row.to_dict())).as_posix()
        group = row[source.group_column]
        if path in mapping and mapping[path][0] != group:
            raise InputError(f"{file} row {line}: {path} is in group {group!r} here and in "
                             f"{mapping[path][0]!r} on row {mapping[path][1]}")
        mapping[path] = (group, line)
    absent = [p for p in train["path"] if p not in mapping]
    if absent:
        raise InputError(f"{file} has no row for {len(absent)} training images (e.g. "
                         f"{absent[:3]}); every training image needs its "
                         f"{source.group_column}")
    return np.array([mapping[p][0] for p in train["path"]])


__all__ = ["declared_groups", "read_groups"]
