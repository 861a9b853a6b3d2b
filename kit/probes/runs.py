"""A finished `kit run` on a dataset, for the probes: its record and its cached features.

The run and its files are read through `kit.runs` (`RunRecord`, `RunFolder`); the plain-variant
features live in the FeatureStore keyed exactly as the run keyed it (`run_feature_key`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.core.errors import InputError
from kit.core.paths import Paths
from kit.data.images import UnreadableImageError, file_digest
from kit.features.cache import FeatureKey, FeatureRows, FeatureStore
from kit.runs.find import run_on_data
from kit.runs.layout import FoldFolder, RunFolder
from kit.runs.record import RunRecord

__all__ = ["FinishedRun", "cached_features", "feature_rows", "find_run", "pool_features",
           "pooled_in_chunks", "run_feature_key"]

#: Feature maps pooled at a time: memory grows with this, not with the dataset.
POOL_CHUNK = 256


def run_feature_key(record: RunRecord, variant: str | None = None) -> FeatureKey:
    """The feature cache key a run read `variant` (default: its plain pass) with."""
    backbone = record.backbone
    return FeatureKey(backbone=backbone["name"], weights=backbone["weights"],
                      input_size=record.input_size, preprocess=backbone["preprocess"],
                      variant=variant or record.tta_variants[0])


@dataclass(frozen=True, kw_only=True)
class FinishedRun:
    """A run record and where it is."""

    record_file: Path
    record: RunRecord

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def run_dir(self) -> Path:
        return Path(self.record.run_dir)

    @property
    def folder(self) -> RunFolder:
        return self.record.folder

    @property
    def recipe(self) -> dict:
        return dict(self.record.recipe)

    def feature_key(self, variant: str | None = None) -> FeatureKey:
        return run_feature_key(self.record, variant)

    def finished_folds(self) -> list[FoldFolder]:
        return self.folder.finished_folds()


def find_run(competition: str, data_root: Path, paths: Paths, *,
             run_id: str | None = None) -> FinishedRun | None:
    """The run `run_id`, or else the newest run of `competition` on `data_root`; None if none.

    Raises:
        InputError: If `run_id` is given but no record of that id exists (the message lists
            the run ids that do), or its record belongs to another data folder.
    """
    found = run_on_data(paths.submission_dir(competition), data_root, run_id=run_id)
    if found is None:
        return None
    return FinishedRun(record_file=found[0], record=found[1])


def feature_rows(run: FinishedRun, files: Sequence[Path], paths: Paths
                 ) -> tuple[FeatureRows, np.ndarray] | None:
    """The run's plain-variant features of `files` as lazy rows (read from the memory-mapped
    cache when indexed), and a mask of the files that have them.

    Returns None when the store holds none of them (e.g. another work folder).
    """
    store = FeatureStore(paths.features(), run.feature_key())
    digests = []
    for file in files:
        try:
            digests.append(file_digest(Path(file)))
        except UnreadableImageError:
            digests.append(None)
    present = np.array([d is not None and d in store for d in digests], dtype=bool)
    if not present.any():
        return None
    return store.rows([d for d, ok in zip(digests, present, strict=True) if ok]), present


def cached_features(run: FinishedRun, files: Sequence[Path], paths: Paths
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """The run's plain-variant features of `files` (one array), and a mask of the files that
    have them; None when the store holds none of them."""
    found = feature_rows(run, files, paths)
    if found is None:
        return None
    rows, present = found
    return rows[np.arange(len(rows))], present


def pool_features(features: np.ndarray) -> np.ndarray:
    """Spatial feature maps (n, h, w, c) as (n, 2c) global average and max; vectors unchanged."""
    if features.ndim == 4:
        return np.concatenate([features.mean(axis=(1, 2)), features.max(axis=(1, 2))], axis=1)
    return features.reshape(len(features), -1)


def pooled_in_chunks(rows, pool: Callable[[np.ndarray], np.ndarray], *,
                     chunk: int = POOL_CHUNK) -> np.ndarray:
    """`pool` applied to `rows` (an array or lazy `FeatureRows`) `chunk` rows at a time, so at
    most `chunk` feature maps are in memory at once; the pooled rows stacked."""
    if not len(rows):
        raise InputError("pooled_in_chunks needs at least one row; received none")
    return np.concatenate([pool(np.asarray(rows[np.arange(i, min(i + chunk, len(rows)))]))
                           for i in range(0, len(rows), chunk)])
