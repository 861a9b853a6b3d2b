"""Stage of a run: which fold holds each training image out (`folds.csv` in the run folder).

The run folder is keyed by the config hash (fold count, seed, groups file content and data), so a
saved `folds.csv` belongs to this exact configuration; its ids are re-checked all the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.data.folds import assign_folds, load_folds, save_folds
from kit.data.groups import read_groups
from kit.runs.layout import RunFolder


def choose_folds(folder: RunFolder, train: pd.DataFrame, labels: np.ndarray, *, n_folds: int,
                 seed: int, groups_file: Path | None) -> np.ndarray:
    """The saved folds of this run folder, or new seeded (group) stratified folds, saved."""
    path = folder.folds_csv
    if path.is_file():
        saved = load_folds(path)
        if (list(saved["id"].astype(str)) == list(train["id"])
                and saved["fold"].nunique() == n_folds):
            return saved["fold"].to_numpy()
    groups = read_groups(groups_file, train) if groups_file else None
    folds = assign_folds(labels, n_splits=n_folds, seed=seed, groups=groups)
    save_folds(path, list(train["id"]), folds, groups=groups)
    return folds


__all__ = ["choose_folds"]
