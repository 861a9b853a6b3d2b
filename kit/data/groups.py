"""Groups of training images (the boat, person or camera an image shows), read from a CSV.

A groups file has `path,group` rows, `path` relative to the data root as in the image table;
group K-fold keeps each group in one fold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.core.errors import InputError, MissingFileError


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


__all__ = ["read_groups"]
