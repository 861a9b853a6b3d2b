"""Stage of a run: the groups of the training images, and which fold holds each one out.

Groups come from the competition's declaration (`CsvGroups`), a `path,group` file (`--groups`,
or the groups `kit probe` inferred), or nowhere (stratified folds). The fold count is checked
against the smallest class and the number of groups as soon as the image table is read, before
any feature work. The run folder is keyed by the config hash (fold count, seed, groups file
content and data), so a saved `folds.csv` belongs to this exact configuration; its ids are
re-checked all the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kit.app.setup import RunSetup
from kit.app.table import ImageTable
from kit.data.folds import assign_folds, check_fold_count, load_folds, save_folds
from kit.data.groups import declared_groups, read_groups
from kit.runs.layout import RunFolder


def training_groups(setup: RunSetup, table: ImageTable) -> np.ndarray | None:
    """The group of every training row of the table, or None for stratified folds."""
    options = setup.options
    if options.groups_declared:
        return declared_groups(setup.competition, table.layout.root, table.train)
    if options.groups_file is not None:
        return read_groups(options.groups_file, table.train)
    return None


def check_folds(setup: RunSetup, table: ImageTable, groups: np.ndarray | None) -> None:
    """The recipe's fold count against the smallest class and the number of groups."""
    check_fold_count(table.train["label"].to_numpy(), setup.recipe.folds, groups=groups)


def choose_folds(folder: RunFolder, train: pd.DataFrame, labels: np.ndarray, *, n_folds: int,
                 seed: int, groups: np.ndarray | None) -> np.ndarray:
    """The saved folds of this run folder, or new seeded (group) stratified folds, saved."""
    path = folder.folds_csv
    if path.is_file():
        saved = load_folds(path)
        if (list(saved["id"].astype(str)) == list(train["id"])
                and saved["fold"].nunique() == n_folds):
            return saved["fold"].to_numpy()
    folds = assign_folds(labels, n_splits=n_folds, seed=seed, groups=groups)
    save_folds(path, list(train["id"]), folds, groups=groups)
    return folds


__all__ = ["check_folds", "choose_folds", "training_groups"]
