"""A finished `kit run` on a dataset, read from the files the pipeline writes.

The run record ``<submissions>/<competition>/<run-id>.json`` names the data root, the recipe,
the backbone (name, preprocessing, weights identity) and the run folder, which holds
``folds.csv`` and ``seed<S>/fold<K>/{model.weights.h5, oof.npy, test.npy, done.json}``. The
plain-variant features live in the FeatureStore keyed exactly as :mod:`kit.pipeline` keys it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.features import FeatureKey, FeatureStore
from kit.images import UnreadableImageError, file_digest
from kit.paths import Paths

__all__ = ["FinishedRun", "cached_features", "find_run", "pool_features"]

PLAIN = "plain"


@dataclass(frozen=True, kw_only=True)
class FinishedRun:
    """A run record and where its artefacts are."""

    run_id: str
    record_file: Path
    record: dict
    run_dir: Path

    @property
    def recipe(self) -> dict:
        return self.record["config"]["recipe"]

    def feature_key(self, variant: str = PLAIN) -> FeatureKey:
        backbone = self.record["backbone"]
        return FeatureKey(backbone=backbone["name"], weights=backbone["weights"],
                          input_size=tuple(self.record["config"]["input_size"]),
                          preprocess=backbone["preprocess"], variant=variant)

    def finished_folds(self) -> list[Path]:
        """Fold folders with ``done.json`` and weights, sorted."""
        return sorted(d.parent for d in self.run_dir.glob("seed*/fold*/done.json")
                      if (d.parent / "model.weights.h5").is_file())


def _records(folder: Path) -> list[tuple[str, Path, dict]]:
    out = []
    for file in sorted(folder.glob("*.json")):
        try:
            record = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            continue
        if isinstance(record, dict) and {"run_id", "run_dir", "config", "backbone"} <= set(record):
            out.append((record["run_id"], file, record))
    return out


def find_run(competition: str, data_root: Path, paths: Paths, *,
             run_id: str | None = None) -> FinishedRun | None:
    """The run `run_id`, or else the newest run of `competition` on `data_root`; None if none.

    Raises:
        ValueError: If `run_id` is given but no record of that id exists (the message lists
            the run ids that do), or its record belongs to another data folder.
    """
    folder = paths.submission_dir(competition)
    records = _records(folder) if folder.is_dir() else []
    root = str(Path(data_root).resolve())
    if run_id is not None:
        for rid, file, record in records:
            if rid == run_id:
                if str(Path(record.get("data", {}).get("root", "")).resolve()) != root:
                    raise ValueError(
                        f"run {run_id} was made on {record['data']['root']}, not on {root}; "
                        "pass the same --data/--demo as that run"
                    )
                return FinishedRun(run_id=rid, record_file=file, record=record,
                                   run_dir=Path(record["run_dir"]))
        known = ", ".join(r for r, _, _ in records[-5:]) or "none"
        raise ValueError(
            f"no run record {run_id}.json in {folder}; recent runs: {known}. Use --run with one "
            "of them, or --submissions-dir where that run wrote its record"
        )
    mine = [(r.get("created", ""), rid, file, r) for rid, file, r in records
            if str(Path(r.get("data", {}).get("root", "")).resolve()) == root]
    if not mine:
        return None
    _, rid, file, record = max(mine, key=lambda item: (item[0], item[1]))
    return FinishedRun(run_id=rid, record_file=file, record=record, run_dir=Path(record["run_dir"]))


def cached_features(run: FinishedRun, files: Sequence[Path], paths: Paths
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """The run's plain-variant features of `files`, and a mask of the files that have them.

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
    return store.get([d for d, ok in zip(digests, present, strict=True) if ok]), present


def pool_features(features: np.ndarray) -> np.ndarray:
    """Spatial feature maps (n, h, w, c) as (n, 2c) global average and max; vectors unchanged."""
    if features.ndim == 4:
        return np.concatenate([features.mean(axis=(1, 2)), features.max(axis=(1, 2))], axis=1)
    return features.reshape(len(features), -1)
