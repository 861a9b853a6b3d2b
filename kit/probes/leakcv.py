"""What groups and near-duplicate clusters do to the CV: one model, stratified vs grouped folds.

The groups probe and the near-duplicates probe ask the same question of two groupings of the
training images (the boats or drivers; the clusters of near-duplicates): how much better does
a model score with stratified folds than with folds that keep each group whole? The model is
the run's own head on its cached features when a finished run of this data has them
(:mod:`kit.probes.headcv`: every fold of every fold set of every repeat in ONE fused pass, the
stratified folds shared by both groupings); otherwise the probes' logistic regression
(:func:`kit.probes.groups.compare_cv`) on the features at hand. Each grouping's verdict is
:func:`kit.probes.cvgap.judge_gap`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kit.probes.cvgap import (
    RUN_HEAD,
    CVComparison,
    FoldSets,
    ModelUsed,
    Replicate,
    fold_sets,
    judge_gap,
)
from kit.probes.groups import compare_cv, fit_predict
from kit.probes.headcv import FoldPlan, ProbeHead, head_predictions, pooled_reader
from kit.probes.settings import ProbeSettings

__all__ = ["CVMeasurement", "Grouping", "ProbeFeatures", "measure_cv"]


@dataclass(frozen=True, kw_only=True, eq=False)
class ProbeFeatures:
    """The features of the readable images (train and test rows, in one order).

    Attributes:
        matrix: (n, d) vectors for the probes' own models: the run's cached features average-
            and max-pooled, else image statistics.
        source: Where `matrix` came from (reported as it is).
        rows: The run's cached feature maps of the same rows, read lazily (None without a
            run whose cache holds every image).
        head: The run's head to train on `rows` (None: no run).
        cache: Which run's cache `rows` come from (backbone, input size), for the report.
    """

    matrix: np.ndarray
    source: str
    rows: object | None = None
    head: ProbeHead | None = None
    cache: str = ""


@dataclass(frozen=True, kw_only=True, eq=False)
class Grouping:
    """One grouping of the training rows to keep whole: its name, a label per row, a text."""

    name: str
    labels: np.ndarray
    text: str


@dataclass(frozen=True, kw_only=True, eq=False)
class CVMeasurement:
    """A comparison per grouping (by name), and the model's probabilities for the test rows
    (for the groups probe's public/private scores; None when no grouping was measured)."""

    comparisons: dict[str, CVComparison]
    test: np.ndarray | None


def measure_cv(features: ProbeFeatures, is_train: np.ndarray, y: np.ndarray,
               groupings: Sequence[Grouping], *, n_classes: int,
               settings: ProbeSettings) -> CVMeasurement:
    """Stratified vs grouped CV for each grouping, `settings.repeats` times (see the module
    docstring and :mod:`kit.probes.cvgap`).

    Args:
        features: The readable images' features (train and test rows).
        is_train: Mask of the training rows among them; `y` and every grouping's labels follow
            the training rows in order.
        y: (n_train,) class indexes.
        groupings: What to keep whole, each judged on its own (the same stratified folds).
        n_classes: Number of classes.
        settings: Folds, repeats, seed, alpha and resamples.
    """
    if not groupings:
        return CVMeasurement(comparisons={}, test=None)
    if features.head is not None and features.rows is not None:
        return _with_head(features, is_train, y, groupings, n_classes, settings)
    x = features.matrix
    comparisons = {g.name: compare_cv(x[is_train], y, g.labels, n_classes,
                                      feature_source=features.source, settings=settings,
                                      grouping=g.text) for g in groupings}
    first = comparisons[groupings[0].name]
    test = None
    if (~is_train).any():
        test = fit_predict(x[is_train], y, x[~is_train], n_classes,
                           regularization=first.regularization)
    return CVMeasurement(comparisons=comparisons, test=test)


def _plan(y: np.ndarray, groupings: Sequence[Grouping], settings: ProbeSettings
          ) -> tuple[FoldPlan, dict[str, list[FoldSets]]]:
    """Per repeat: its stratified folds, then each grouping's grouped folds, as one plan."""
    sets = {g.name: [fold_sets(y, g.labels, settings=settings, repeat=r)
                     for r in range(settings.repeats)] for g in groupings}
    folds, repeats = [], []
    for r in range(settings.repeats):
        folds += [sets[groupings[0].name][r].stratified,
                  *(sets[g.name][r].grouped for g in groupings)]
        repeats += [r] * (1 + len(groupings))
    return FoldPlan(fold_sets=tuple(folds), repeats=tuple(repeats)), sets


def _with_head(features: ProbeFeatures, is_train: np.ndarray, y: np.ndarray,
               groupings: Sequence[Grouping], n_classes: int,
               settings: ProbeSettings) -> CVMeasurement:
    head = features.head
    train_index, test_index = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    reader, width = pooled_reader(features.rows, head.pooling, train_index)
    test = (pooled_reader(features.rows, head.pooling, test_index)[0], len(test_index)) \
        if len(test_index) else None
    plan, sets = _plan(y, groupings, settings)
    predictions = head_predictions(reader, y, plan, head, n_classes=n_classes,
                                   n_features=width, test=test)
    model = (f"{head.describe()}: {predictions.n_branches} branches ({settings.repeats} "
             f"repeats of stratified and grouped folds) in one pass, "
             f"{predictions.epochs_run} epochs")
    source = f"{features.cache}, {head.pooling} pooled as the run's head pools them"
    step = 1 + len(groupings)  # fold sets per repeat
    comparisons = {}
    for i, grouping in enumerate(groupings):
        used = ModelUsed(model=model, feature_source=source, grouping=grouping.text,
                         kind=RUN_HEAD)
        replicates = [Replicate(folds=sets[grouping.name][r],
                                stratified=predictions.oof[r * step],
                                grouped=predictions.oof[r * step + 1 + i])
                      for r in range(settings.repeats)]
        comparisons[grouping.name] = judge_gap(y, replicates, n_classes, used=used,
                                               settings=settings)
    on_test = None
    if predictions.test is not None:  # the stratified fold heads of every repeat
        on_test = np.mean([predictions.test[r * step] for r in range(settings.repeats)], axis=0)
    return CVMeasurement(comparisons=comparisons, test=on_test)
