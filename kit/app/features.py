"""Stage 3 of a run: what the heads read. Cached conv features (or, to fine-tune, decoded images)
of every row, per TTA variant; then the rows that have them.

Features are computed once per (backbone, weights, input size, preprocessing, variant) and image
content (`kit.features.cache`); a re-run reads them back. Box heads also train on other views of
the training images (`RunSetup.box_views`), extracted for the training rows only. A row without
features (an unreadable file) is left out of training, and a test row without them is predicted
with the class prior; both are named in the run record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kit.app.setup import Log, RunSetup
from kit.app.table import Digests, ImageTable
from kit.features.backbones import ResolvedWeights
from kit.features.cache import FeatureKey, FeatureStore


class RowStore(Protocol):
    """Rows by digest: a `FeatureStore`, or decoded images in memory."""

    def get(self, digests: Sequence[str]) -> np.ndarray: ...

    def rows(self, digests: Sequence[str]) -> Any: ...


class ArrayStore:
    """Decoded images by digest, read like a FeatureStore (`get`, `rows`)."""

    def __init__(self, rows: dict[str, np.ndarray]) -> None:
        self._rows = rows

    def get(self, digests: Sequence[str]) -> np.ndarray:
        return np.stack([self._rows[d] for d in digests])

    def rows(self, digests: Sequence[str]) -> np.ndarray:
        return self.get(digests)


@dataclass(frozen=True, kw_only=True)
class FeatureSet:
    """Rows per TTA variant (and box view), which digests have all of theirs, and why not."""

    stores: Mapping[str, RowStore]
    present: frozenset[str]
    unreadable: dict[str, str]  # file -> reason
    stats: dict[str, Any]  # computed, reused (ints); cluster: where a cluster extracted them


def feature_store(setup: RunSetup, weights: ResolvedWeights, variant: str,
                  input_size: tuple[int, int] | None = None) -> FeatureStore:
    """The cache of one variant's features for this run's base, weights and input size."""
    return FeatureStore(setup.paths.features(), FeatureKey(
        backbone=setup.backbone.name, weights=weights.identity,
        input_size=input_size or setup.input_size, preprocess=setup.backbone.preprocess,
        variant=variant))


def _forward(setup: RunSetup, weights: ResolvedWeights):
    from kit.features.backbones import build_model, preprocess_function
    from kit.features.extract import compiled_forward

    model = build_model(setup.backbone, weights, setup.input_size)
    return compiled_forward(model, preprocess_function(setup.backbone), setup.input_size)


@contextmanager
def _extractor(setup: RunSetup, weights: ResolvedWeights, executor: Any = None) -> Iterator:
    """(`run(store, items, progress)`, pool) with one built base: in this process (pool None),
    or on the actors of a cluster executor's `extraction_pool` (kit.features.ray_extract)."""
    batch = setup.recipe.batch_size
    pool_of = getattr(executor, "extraction_pool", None)
    if pool_of is None:
        from kit.features.extract import extract

        forward = _forward(setup, weights)
        yield (lambda store, items, progress: extract(
            store, items, forward=forward, batch_size=batch, progress=progress)), None
        return
    from kit.features.ray_extract import ForwardSpec

    with pool_of(ForwardSpec(backbone=setup.backbone, weights=weights,
                             input_size=setup.input_size)) as pool:
        yield (lambda store, items, progress: pool.extract(
            store, items, batch_size=batch, progress=progress)), pool


def _extract_missing(setup: RunSetup, weights: ResolvedWeights,
                     stores: dict[str, FeatureStore], jobs: dict[str, list[tuple[str, str]]],
                     todo: dict[str, list[str]], executor: Any = None
                     ) -> tuple[dict[str, str], int, dict[str, Any]]:
    """Extract every missing row of every store with one built base (here, or on a cluster's
    actors); (unreadable, computed, where the cluster extracted them: {} here)."""
    unreadable: dict[str, str] = {}
    computed = 0
    with _extractor(setup, weights, executor) as (run, pool):
        for variant, store in stores.items():
            wanted = set(todo[variant])
            pending = [(d, f) for d, f in jobs[variant] if d in wanted]
            with tqdm(total=len(pending), desc=f"features {variant}", unit="img", disable=None,
                      leave=False) as bar:
                report = run(store, pending, bar.update)
            computed += report.computed
            unreadable.update(dict(report.unreadable))
    return unreadable, computed, (pool.summary() if pool is not None else {})


def extract_features(setup: RunSetup, weights: ResolvedWeights, table: ImageTable,
                     digests: Digests, *, executor: Any = None) -> FeatureSet:
    """Extract (or reuse) features of every row for every TTA variant, and of the training rows
    for the box heads' other training views; on a cluster executor's actors when it has them
    (`--executor ray`: the stats say where, under `cluster`)."""
    items = digests.items(table)
    train_items = items[:len(digests.train)]
    jobs = {v: items for v in setup.variants}
    for view in setup.box_views:
        jobs.setdefault(view, train_items)
    stores = {v: feature_store(setup, weights, v) for v in jobs}
    todo = {v: s.missing([d for d, _ in jobs[v]]) for v, s in stores.items()}
    unreadable: dict[str, str] = {}
    computed, where = 0, {}
    if any(todo.values()):
        unreadable, computed, where = _extract_missing(setup, weights, stores, jobs, todo,
                                                       executor)
    reused = sum(len(jobs[v]) - len(t) for v, t in todo.items())
    present = {d for d, _ in items if all(d in stores[v] for v in setup.variants)}
    present -= {d for d, _ in train_items if not all(d in stores[v] for v in setup.box_views)}
    return FeatureSet(stores=stores, present=frozenset(present), unreadable=unreadable,
                      stats={"computed": computed, "reused": reused,
                             **({"cluster": where} if where else {})})


def decode_images(setup: RunSetup, table: ImageTable, digests: Digests) -> FeatureSet:
    """--mode finetune: every image decoded at the input size, per TTA variant (no cache: the
    base trains, so its features change every step)."""
    from kit.features.extract import load_images

    unique = list(dict(digests.items(table)).items())
    loaded: dict[str, dict[str, np.ndarray]] = {}
    unreadable: dict[str, str] = {}
    for variant in setup.variants:
        decoded = load_images(unique, size=setup.input_size, variant=variant,
                              batch_size=setup.recipe.batch_size)
        loaded[variant] = {d: img for (d, _), img, ok in
                           zip(unique, decoded.images, decoded.ok, strict=True) if ok}
        unreadable.update({f: "cannot be decoded" for (_, f), ok in
                           zip(unique, decoded.ok, strict=True) if not ok})
    present = {d for d, _ in unique if all(d in rows for rows in loaded.values())}
    return FeatureSet(stores={v: ArrayStore(rows) for v, rows in loaded.items()},
                      present=frozenset(present), unreadable=unreadable,
                      stats={"computed": 0, "reused": 0, "decoded": len(unique)})


@dataclass(frozen=True, kw_only=True)
class Rows:
    """The rows a run trains on and predicts: training rows with features, their labels, and
    which test rows have features (the others get the class prior)."""

    train: pd.DataFrame
    labels: np.ndarray
    train_digests: list[str]
    train_ok: np.ndarray  # which rows of the image table's train are in `train`
    test_ok: np.ndarray
    test_digests: list[str]  # of the test rows with features
    unreadable: dict[str, list[dict[str, str | None]]]  # split -> [{file, reason}]

    @property
    def test_index(self) -> np.ndarray:
        return np.flatnonzero(self.test_ok)


def usable_rows(table: ImageTable, digests: Digests, features: FeatureSet,
                classes: Sequence[str], log: Log) -> Rows:
    """The rows with features; each row without them is logged with its reason."""
    reasons = dict(features.unreadable)
    for digest, file in digests.items(table):
        if digest not in features.present and file not in reasons:
            reasons[file] = "no features"
    train_ok = np.array([d in features.present for d in digests.train], dtype=bool)
    test_ok = np.array([d in features.present for d in digests.test], dtype=bool)
    bad_train = [f for f, ok in zip(table.train["file"], train_ok, strict=True) if not ok]
    bad_test = [f for f, ok in zip(table.test["file"], test_ok, strict=True) if not ok]
    for file in bad_train:
        log(f"skipping unreadable training image {file}: {reasons.get(file)}")
    for file in bad_test:
        log(f"unreadable test image {file} ({reasons.get(file)}): predicting the class prior "
            "for it")
    train = table.train[train_ok].reset_index(drop=True)
    return Rows(
        train=train, labels=np.array([list(classes).index(c) for c in train["label"]]),
        train_digests=[d for d, ok in zip(digests.train, train_ok, strict=True) if ok],
        train_ok=train_ok, test_ok=test_ok,
        test_digests=[d for d, ok in zip(digests.test, test_ok, strict=True) if ok],
        unreadable={"train": [{"file": f, "reason": reasons.get(f)} for f in bad_train],
                    "test": [{"file": f, "reason": reasons.get(f)} for f in bad_test]})


__all__ = ["ArrayStore", "FeatureSet", "Rows", "decode_images", "extract_features",
           "feature_store", "usable_rows"]
