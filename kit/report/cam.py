"""Class activation maps of a finished run's own heads on its out-of-fold images.

Each training image is explained by the head of the fold that held it out (so the map shows
what a model that never saw the image looks at), over the cached features of the plain pass
(the first TTA variant). Heads are rebuilt from the run record's recipe and the fold's weights.
The maps themselves are the attention probe's (`kit.probes.attention.class_maps`: the fcn
head's own class activation maps, Grad-CAM for the others), so the report
and `python -m kit probe` show the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.core.errors import InputError
from kit.data.images import UnreadableImageError, file_digest
from kit.features.cache import FeatureStore
from kit.models.heads import HeadConfig, load_head
from kit.probes.runs import run_feature_key
from kit.report.data import RunData


class CamUnavailableError(InputError):
    """Maps cannot be computed for this run (the reason says why and what to do)."""


@dataclass(frozen=True, kw_only=True)
class RunCams:
    """Maps (n, h, w), each scaled to [0, 1], of the predicted class of OOF rows `rows`."""

    rows: tuple[int, ...]
    maps: np.ndarray

    def map_of(self, row: int) -> np.ndarray:
        return self.maps[self.rows.index(row)]


def feature_store(data: RunData) -> FeatureStore:
    """The cache the run read its plain-pass features from."""
    return FeatureStore(data.work_dir / "features", run_feature_key(data.record))


def _scaled(maps: np.ndarray) -> np.ndarray:
    peak = maps.reshape(len(maps), -1).max(axis=1) if len(maps) else np.zeros(0)
    return (maps / np.where(peak > 0, peak, 1.0)[:, None, None]).astype(np.float32)


def compute_cams(data: RunData, rows: list[int]) -> RunCams:
    """Grad-CAM maps of the predicted class for OOF rows `rows`, each by its own fold's head.

    Raises:
        CamUnavailableError: The run folder, the data, the folds, the features or the head
            weights are gone, or the features have no spatial axes.
    """
    from kit.probes.attention import class_maps, unmappable_reason

    if data.oof is None or data.folds is None or data.data_root is None:
        raise CamUnavailableError("needs oof.csv, folds.csv and the dataset; missing: "
                                  + "; ".join(data.missing.values()))
    store = feature_store(data)
    fold_of = dict(zip(data.folds["id"].astype(str), data.folds["fold"].astype(int),
                       strict=True))
    seed = data.record.seeds[0]
    recipe = data.record.recipe
    reason = unmappable_reason(recipe)
    if reason:
        raise CamUnavailableError(reason)
    predicted = data.oof[data.classes].to_numpy(dtype=np.float64).argmax(axis=1)
    digests, by_fold = {}, {}
    for row in rows:
        path = str(data.oof["path"].iloc[row])
        if path not in fold_of:
            raise CamUnavailableError(f"{path} is in oof.csv but not in folds.csv")
        try:
            digests[row] = file_digest(data.data_root / path)
        except UnreadableImageError as error:
            raise CamUnavailableError(f"the image of {path} is gone: {error}") from error
        by_fold.setdefault(fold_of[path], []).append(row)
    absent = store.missing(list(digests.values()))
    if absent:
        raise CamUnavailableError(
            f"{len(absent)} images have no cached features in {store.folder}; re-run the same "
            "`python -m kit run` command to compute them"
        )
    maps: dict[int, np.ndarray] = {}
    for fold, fold_rows in sorted(by_fold.items()):
        features = store.get([digests[r] for r in fold_rows])
        weights = data.record.folder.fold(seed=seed, fold=fold).weights
        try:
            head = load_head(weights, head=recipe["head"], feature_shape=features.shape[1:],
                             n_classes=len(data.classes),
                             config=HeadConfig(pooling=recipe["pooling"],
                                               hidden=int(recipe["hidden"]),
                                               dropout=float(recipe["dropout"]),
                                               input_size=data.record.input_size))
            cams = class_maps(head, features, predicted[fold_rows])
        except (FileNotFoundError, ValueError, TypeError, KeyError) as error:
            raise CamUnavailableError(
                f"cannot compute maps with the {recipe['head']!r} head of fold {fold}: {error}"
            ) from error
        maps.update(zip(fold_rows, _scaled(cams), strict=True))
    ordered = tuple(rows)
    return RunCams(rows=ordered, maps=np.stack([maps[r] for r in ordered]) if ordered
                   else np.zeros((0, 1, 1), np.float32))
