"""Load a finished run's fold heads and cached feature maps, and measure their attention.

Reads only what the pipeline writes: the run record (recipe, backbone, seeds), ``folds.csv``
(which fold held each training image out), each fold's ``model.weights.h5`` and the
plain-variant FeatureStore. Each annotated image is explained by the head that did not train
on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.competition import Competition
from kit.core.paths import Paths
from kit.data.folds import load_folds
from kit.probes.attention import (
    AttentionResult,
    attention_summary,
    class_maps,
    skipped_attention,
    unmappable_reason,
)
from kit.probes.boxes import read_boxes
from kit.probes.runs import FinishedRun, cached_features
from kit.probes.settings import ProbeSettings

__all__ = ["run_attention"]


def _head(run: FinishedRun, feature_shape: tuple[int, ...], n_classes: int, weights: Path):
    from kit.models.heads import HeadConfig, load_head

    recipe = run.recipe
    config = HeadConfig(pooling=recipe["pooling"], hidden=recipe["hidden"],
                        dropout=recipe["dropout"],
                        input_size=run.record.input_size)
    return load_head(weights, head=recipe["head"], feature_shape=feature_shape,
                     n_classes=n_classes, config=config)


def _fold_cams(run: FinishedRun, features: np.ndarray, annotated: pd.DataFrame,
               folds: np.ndarray, competition: Competition) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of each image's true class by the fold head that held it out; and which images
    had a finished fold."""
    targets = np.array([competition.classes.index(c) for c in annotated["label"]])
    seed = run.record.seeds[0]
    cams = np.zeros(features.shape[:3], np.float32)
    done = np.zeros(len(annotated), dtype=bool)
    for fold in np.unique(folds):
        trained = run.folder.fold(seed=seed, fold=int(fold))
        if not (trained.weights.is_file() and trained.is_finished()):
            continue
        rows = folds == fold
        model = _head(run, tuple(features.shape[1:]), competition.n_classes, trained.weights)
        cams[rows] = class_maps(model, features[rows], targets[rows])
        done[rows] = True
    return cams, done


def run_attention(run: FinishedRun | None, train: pd.DataFrame, competition: Competition,
                  root: Path, paths: Paths, *, settings: ProbeSettings) -> AttentionResult:
    """Grad-CAM share inside the boxes for `run` on the training images of `train`.

    Args:
        run: The finished run, or None (then skipped).
        train: Training rows of the image table (``path``, ``file``, ``label``, ``width``,
            ``height``).
        competition: The competition (classes, annotations folder).
        root: The data root.
        paths: Work folders (the feature cache).
        settings: Significance level, resamples and seed.
    """
    if competition.annotations is None:
        return skipped_attention(f"{competition.name} has no bounding-box annotations")
    if run is None:
        return skipped_attention("no finished run on this data; run `python -m kit run` first "
                                 "(or pass --run RUN_ID)")
    reason = unmappable_reason(run.recipe)
    if reason:
        return skipped_attention(reason, run.run_id)
    boxes = read_boxes(root / competition.annotations, competition.classes,
                       list(train["path"]))
    if not boxes:
        return skipped_attention(f"no boxes in {root / competition.annotations}", run.run_id)
    folds_file = run.folder.folds_csv
    if not folds_file.is_file():
        return skipped_attention(f"run {run.run_id} has no {folds_file}", run.run_id)
    fold_of = dict(zip(*(load_folds(folds_file)[c] for c in ("id", "fold")), strict=True))
    annotated = train[train["path"].isin(list(boxes)) & train["path"].isin(list(fold_of))]
    annotated = annotated[annotated["width"].notna()].reset_index(drop=True)
    found = cached_features(run, list(annotated["file"]), paths)
    if found is None:
        return skipped_attention(
            f"the features of run {run.run_id} are not in {paths.features()}; use the same "
            "--work-dir as the run", run.run_id)
    features, present = found
    annotated = annotated[present].reset_index(drop=True)
    if features.ndim != 4:
        return skipped_attention(f"run {run.run_id} cached pooled features (shape "
                                 f"{features.shape[1:]}); Grad-CAM needs a spatial map",
                                 run.run_id)
    folds = np.array([fold_of[p] for p in annotated["path"]])
    cams, done = _fold_cams(run, features, annotated, folds, competition)
    if not done.any():
        return skipped_attention(f"run {run.run_id} has no finished fold", run.run_id)
    keep = np.flatnonzero(done)
    return attention_summary(
        [cams[i] for i in keep], [boxes[annotated["path"][i]] for i in keep],
        [(int(annotated["width"][i]), int(annotated["height"][i])) for i in keep],
        [str(annotated["label"][i]) for i in keep], [str(annotated["path"][i]) for i in keep],
        run_id=run.run_id, settings=settings,
    )
