"""Run every probe on one dataset and gather the results (the engine of `kit probe`).

Data flows one way: layout -> header-only sizes -> one decode per image (image statistics) ->
probes (size, near-duplicates, groups, adversarial validation, attention) -> one
:class:`ProbeReport`, whose ``to_dict()`` is the ``--json`` output. The groups file is written
here (``Paths.groups_file``), atomically, for ``run --folds group``, and the near-duplicate
clusters inside train (``clusters.csv``) for ``run --folds auto``. The groups and the
near-duplicate clusters are judged by what they do to the CV of one model, the run's own head
where a finished run exists, measured together (:mod:`kit.probes.leakcv`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kit.competition import Competition
from kit.core.atomic import atomic_write_text
from kit.core.errors import InputError
from kit.core.paths import Paths
from kit.data.layout import TRAIN, Layout, read_layout
from kit.probes.adversarial import (
    METADATA,
    AdversarialResult,
    adversarial_validation,
    metadata_matrix,
)
from kit.probes.attention import AttentionResult, skipped_attention
from kit.probes.attention_run import run_attention
from kit.probes.crossval import make_folds, usable_folds
from kit.probes.duplicates import (
    DuplicatesResult,
    calibrate,
    duplicate_clusters,
    find_duplicates,
)
from kit.probes.evidence import CLUSTERS_CSV
from kit.probes.groups import GroupsResult
from kit.probes.groups_run import (
    GroupsFound,
    HoldoutRows,
    TrainRows,
    cluster_grouping,
    duplicates_with_cv,
    group_grouping,
    groups_result,
    infer_and_write,
)
from kit.probes.headcv import ProbeHead
from kit.probes.imagestats import ImageStats, Unreadable, read_image_stats
from kit.probes.leakcv import ProbeFeatures, measure_cv
from kit.probes.runs import FinishedRun, feature_rows, find_run, pool_features, pooled_in_chunks
from kit.probes.settings import ProbeSettings
from kit.probes.size import SizeReading, SizeResult, read_sizes, size_probe

__all__ = ["ProbeReport", "ProbeRequest", "run_probes"]

Log = Callable[[str], None]
IMAGE_STATISTICS = "image statistics (colour histograms and grid colours)"


@dataclass(frozen=True, kw_only=True)
class ProbeRequest:
    """What to probe.

    Attributes:
        competition: The competition (classes, layout, annotations).
        root: The data root, in the competition's Kaggle layout.
        paths: Work folders (feature cache, probe outputs) and the submissions folder (run
            records).
        run_id: The run whose features and heads to use; None: the newest run on `root`.
        settings: Significance level, resamples, folds, seed, workers.
        attention: Whether to run the attention probe (imports TensorFlow when a run exists).
    """

    competition: Competition
    root: Path
    paths: Paths
    run_id: str | None = None
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    attention: bool = True


@dataclass(frozen=True, kw_only=True)
class ProbeReport:
    """Every probe's result on one dataset."""

    competition: str
    root: Path
    settings: ProbeSettings
    size: SizeResult
    duplicates: DuplicatesResult
    groups: GroupsResult
    adversarial: AdversarialResult
    attention: AttentionResult
    unreadable: tuple[Unreadable, ...]
    run_id: str | None
    n_train: int
    n_test: int
    timings: dict[str, float]
    size_images_per_s: float

    @property
    def leaks(self) -> dict[str, bool]:
        """Probe name -> whether it found a leak."""
        return {"size": self.size.leak, "duplicates": self.duplicates.leak,
                "groups": self.groups.leak, "adversarial": self.adversarial.leak,
                "attention": self.attention.leak}

    @property
    def leak(self) -> bool:
        return any(self.leaks.values())

    def to_dict(self) -> dict:
        return {
            "competition": self.competition,
            "data_root": str(self.root),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "run_id": self.run_id,
            "leak": self.leak,
            "leaks": self.leaks,
            "size": self.size.to_dict(),
            "duplicates": self.duplicates.to_dict(),
            "groups": self.groups.to_dict(),
            "adversarial": self.adversarial.to_dict(),
            "attention": self.attention.to_dict(),
            "unreadable": [u.to_dict() for u in self.unreadable],
            "settings": self.settings.to_dict(),
            "timings": self.timings,
            "size_images_per_s": self.size_images_per_s,
        }


def _merge_unreadable(*lists: tuple[Unreadable, ...]) -> tuple[Unreadable, ...]:
    seen: dict[str, Unreadable] = {}
    for items in lists:
        for item in items:
            seen.setdefault(item.path, item)
    return tuple(sorted(seen.values(), key=lambda u: u.path))


def _labels(competition: Competition, table: pd.DataFrame) -> np.ndarray:
    return np.array([competition.classes.index(c) for c in table["label"]], dtype=np.int64)


def _run_size(layout: Layout, sizes: SizeReading, competition: Competition,
              settings: ProbeSettings) -> SizeResult:
    table = layout.table
    train = (table["split"] == TRAIN).to_numpy() & sizes.readable
    tests = {}
    for split in layout.test_splits:
        rows = (table["split"] == split).to_numpy() & sizes.readable
        tests[split] = (sizes.width[rows], sizes.height[rows])
    return size_probe(sizes.width[train], sizes.height[train],
                      _labels(competition, table[train]), competition.classes,
                      test_sizes=tests, settings=settings)


def _run_duplicates(good: pd.DataFrame, stats: ImageStats, competition: Competition,
                    settings: ProbeSettings) -> DuplicatesResult:
    thresholds = calibrate(list(good["file"]), settings=settings)
    train = good[good["split"] == TRAIN]
    labels = _labels(competition, train)
    folds = None
    if usable_folds(labels, settings.folds):
        fold = make_folds(labels, wanted=settings.folds, seed=settings.seed)
        folds = dict(zip(train["path"], fold.tolist(), strict=True))
    return find_duplicates(list(good["path"]), list(good["split"]), stats.phash, stats.gray,
                           thresholds, folds=folds)


def _write_clusters(request: ProbeRequest, layout: Layout,
                    duplicates: DuplicatesResult) -> None:
    """`clusters.csv` (path,group) of every training image: what `run --folds auto` keeps in
    one fold when there are near-duplicates inside train."""
    paths = list(layout.train["path"])
    pairs = [(p.a, p.b) for p in duplicates.pairs if p.kind == "within_train"]
    frame = pd.DataFrame({"path": paths, "group": duplicate_clusters(paths, pairs)})
    folder = request.paths.probe_dir(request.competition.name, layout.root)
    atomic_write_text(folder / CLUSTERS_CSV, frame.to_csv(index=False, lineterminator="\n"))


def _restrict(stats: ImageStats, usable: np.ndarray) -> ImageStats:
    """`stats` cut down to the rows of `usable` (a mask over all images)."""
    keep = usable[stats.readable]
    return ImageStats(readable=np.ones(int(usable.sum()), dtype=bool), phash=stats.phash[keep],
                      gray=stats.gray[keep], grid=stats.grid[keep],
                      histogram=stats.histogram[keep], unreadable=stats.unreadable)


def _features(run: FinishedRun | None, good: pd.DataFrame, stats: ImageStats,
              paths: Paths) -> ProbeFeatures:
    """The probes' features: the run's cached features (read lazily, average- and max-pooled a
    chunk at a time) with its head, else image statistics."""
    statistics = np.concatenate([stats.histogram, stats.grid], axis=1)
    if run is None:
        return ProbeFeatures(matrix=statistics, source=f"{IMAGE_STATISTICS}: no finished run")
    found = feature_rows(run, list(good["file"]), paths)
    if found is None or not found[1].all():
        missing = len(good) if found is None else int((~found[1]).sum())
        return ProbeFeatures(matrix=statistics,
                             source=f"{IMAGE_STATISTICS}: {missing} images lack cached "
                                    f"features of run {run.run_id}")
    key = run.feature_key()
    cache = (f"cached features of run {run.run_id} ({key.backbone} "
             f"{key.input_size[0]}x{key.input_size[1]}")
    return ProbeFeatures(matrix=pooled_in_chunks(found[0], pool_features),
                         source=f"{cache}, average+max pooled)", rows=found[0],
                         head=ProbeHead.from_recipe(run.recipe), cache=f"{cache})")


@dataclass(frozen=True, kw_only=True)
class _CVProbes:
    """The groups and duplicates probes' results, measured together."""

    groups: GroupsResult
    duplicates: DuplicatesResult


def _run_cv_probes(request: ProbeRequest, layout: Layout, good: pd.DataFrame,
                   stats: ImageStats, features: ProbeFeatures,
                   duplicates: DuplicatesResult) -> _CVProbes:
    """Groups (inferred, written; declared where the competition has them) and near-duplicate
    clusters, each judged by what it does to the CV of one model (kit.probes.leakcv)."""
    competition, settings = request.competition, request.settings
    is_train = (good["split"] == TRAIN).to_numpy()
    table = good[is_train].reset_index(drop=True)
    train = TrainRows(table=table, y=_labels(competition, table))
    groups_file = request.paths.groups_file(competition.name, layout.root)
    inference = infer_and_write(train, stats.grid[is_train], duplicates,
                                all_train=layout.train, groups_file=groups_file,
                                settings=settings)
    grouping, declared, note = group_grouping(competition, layout.root, train, inference,
                                              settings=settings)
    clusters, spread, cluster_note = cluster_grouping(train, duplicates, settings=settings)
    chosen = [g for g in (grouping, clusters) if g is not None]
    cv = measure_cv(features, is_train, train.y, chosen, n_classes=competition.n_classes,
                    settings=settings)
    found = GroupsFound(inference=inference, groups_file=groups_file, declared=declared,
                        note=note)
    holdout = HoldoutRows(root=layout.root, competition=competition,
                          test=layout.test.reset_index(drop=True),
                          readable=list(good.loc[~is_train, "path"]))
    return _CVProbes(groups=groups_result(found, train, cv, holdout),
                     duplicates=duplicates_with_cv(duplicates, spread, cv, cluster_note))


def _run_adversarial(good: pd.DataFrame, features: ProbeFeatures,
                     settings: ProbeSettings) -> AdversarialResult:
    n_bytes = np.array([os.stat(f).st_size for f in good["file"]], dtype=np.float64)
    meta = metadata_matrix(good["width"].to_numpy(np.float64),
                           good["height"].to_numpy(np.float64), n_bytes)
    name = "features" if features.source.startswith("cached") else "image_statistics"
    return adversarial_validation({name: features.matrix, METADATA: meta},
                                  list(good["split"]), list(good["path"]),
                                  feature_source=features.source, settings=settings)


def run_probes(request: ProbeRequest, *, log: Log = print) -> ProbeReport:
    """Run every probe on `request.root`; see the module docstring.

    The probes' models are small, so BLAS and OpenMP run single-threaded here: measured on
    2 shared cores, a threaded BLAS made the logistic regressions 13x slower.

    Raises:
        ValueError: If the folder is not in the competition's layout, `run_id` names no run of
            this data, or too few images are readable to probe.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _run_probes(request, log=log)


def _run_probes(request: ProbeRequest, *, log: Log) -> ProbeReport:
    competition, settings = request.competition, request.settings
    timings: dict[str, float] = {}

    def timed(name: str, fn):
        start = time.perf_counter()
        out = fn()
        timings[name] = round(time.perf_counter() - start, 3)
        return out

    layout = timed("read_layout", lambda: read_layout(competition, request.root))
    table = layout.table
    run = find_run(competition.name, layout.root, request.paths, run_id=request.run_id)
    log(f"probing {competition.name}: {len(layout.train)} train and {len(layout.test)} test "
        f"images in {layout.root}" + (f"; run {run.run_id}" if run else "; no finished run"))
    sizes = timed("sizes", lambda: read_sizes(list(table["file"]), list(table["path"])))
    stats = timed("image_statistics", lambda: read_image_stats(
        list(table["file"]), list(table["path"]), workers=settings.workers))
    usable = stats.readable & sizes.readable
    stats = _restrict(stats, usable)
    good = table[usable].reset_index(drop=True)
    good = good.assign(width=good["width"].astype(np.int64),
                       height=good["height"].astype(np.int64))
    if (good["split"] == TRAIN).sum() < 2 or (good["split"] != TRAIN).sum() < 2:
        raise InputError(f"too few readable images in {layout.root} to probe: need at least "
                         "2 training and 2 test images")
    size = timed("size", lambda: _run_size(layout, sizes, competition, settings))
    duplicates = timed("duplicates", lambda: _run_duplicates(good, stats, competition, settings))
    _write_clusters(request, layout, duplicates)
    features = timed("features", lambda: _features(run, good, stats, request.paths))
    probed = timed("groups", lambda: _run_cv_probes(request, layout, good, stats, features,
                                                    duplicates))
    groups, duplicates = probed.groups, probed.duplicates
    adversarial = timed("adversarial", lambda: _run_adversarial(good, features, settings))
    if request.attention:
        attention = timed("attention", lambda: run_attention(
            run, good[good["split"] == TRAIN], competition, layout.root, request.paths,
            settings=settings))
    else:
        attention = skipped_attention("attention probe turned off (--no-attention)")
    return ProbeReport(
        competition=competition.name, root=layout.root, settings=settings, size=size,
        duplicates=duplicates, groups=groups, adversarial=adversarial, attention=attention,
        unreadable=_merge_unreadable(sizes.unreadable, stats.unreadable),
        run_id=run.run_id if run else None, n_train=len(layout.train), n_test=len(layout.test),
        timings=timings, size_images_per_s=round(sizes.images_per_s, 1),
    )
