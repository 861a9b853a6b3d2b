"""Out-of-fold predictions of the probes' small scikit-learn models (no I/O).

Folds come from :func:`kit.data.folds.assign_folds` (stratified, or grouped), with fewer folds
when the smallest class or the number of groups cannot fill the requested number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kit.core.errors import InputError
from kit.data.folds import assign_folds

__all__ = ["fold_prior", "make_folds", "oof_probabilities", "usable_folds"]

ModelFactory = Callable[[], Any]


def usable_folds(labels: np.ndarray, wanted: int, groups: np.ndarray | None = None) -> int:
    """The largest fold count <= `wanted` that the labels (and groups) allow; 0 if none (< 2)."""
    counts = np.bincount(np.unique(labels, return_inverse=True)[1])
    # assign_folds' own limits: the smallest class without groups; with groups, the number of
    # groups and the largest class.
    limit = (int(counts.min()) if groups is None
             else min(len(np.unique(groups)), int(counts.max())))
    n = min(int(wanted), limit)
    return n if n >= 2 else 0


def make_folds(labels: np.ndarray, *, wanted: int, seed: int,
               groups: np.ndarray | None = None) -> np.ndarray:
    """Fold per sample: stratified K-fold, or stratified group K-fold when `groups` is given.

    Raises:
        ValueError: If fewer than two folds are possible (a class with one image, or one group).
    """
    n = usable_folds(labels, wanted, groups)
    if n == 0:
        what = "groups" if groups is not None else "images in the smallest class"
        raise InputError(f"cross-validation needs at least 2 {what}; cannot split these labels.")
    while True:
        try:
            return assign_folds(labels, n_splits=n, seed=seed, groups=groups)
        except ValueError:
            # Grouped splitting can leave a fold empty; fewer folds always work down to 2.
            if groups is None or n <= 2:
                raise
            n -= 1


def fold_prior(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies of a fold's training labels; an absent class gets ``1 / (n + k)``
    (Laplace's rule of succession) and the row is renormalised, so no held-out image is scored
    at probability 0."""
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
    prior = counts / counts.sum()
    absent = counts == 0
    if absent.any():
        prior[absent] = 1.0 / (counts.sum() + n_classes)
        prior /= prior.sum()
    return prior


def oof_probabilities(make_model: ModelFactory, x: np.ndarray, y: np.ndarray,
                      folds: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) out-of-fold probabilities of a fresh `make_model()` per fold.

    Classes missing from a fold's training rows get their :func:`fold_prior` probability.
    A fold whose training rows hold a single class predicts its prior.
    """
    out = np.zeros((len(y), n_classes))
    for fold in np.unique(folds):
        test = folds == fold
        train = ~test
        prior = fold_prior(y[train], n_classes)
        seen = np.unique(y[train])
        if len(seen) < 2:
            out[test] = prior
            continue
        model = make_model().fit(x[train], y[train])
        probs = np.tile(prior, (int(test.sum()), 1))
        known = model.predict_proba(x[test])
        missing_mass = prior[np.setdiff1d(np.arange(n_classes), seen)].sum()
        probs[:, seen] = known * (1.0 - missing_mass)
        out[test] = probs
    return out
