"""Run every probe on one dataset and gather the results (the engine of `kit probe`).

Data flows one way: layout -> header-only sizes -> one decode per image (image statistics) ->
probes (size, near-duplicates, groups, adversarial validation, attention) -> one
:class:`ProbeReport`, whose ``to_dict()`` is the ``--json`` output. The groups file is written
here (``Paths.groups_file``), atomically, for ``run --folds group``.
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
from kit.data.groups import declared_groups
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
from kit.probes.duplicates import DuplicatesResult, calibrate, find_duplicates
from kit.probes.evidence import CLUSTERS_CSV
from kit.probes.groups import GroupsResult, compare_cv, fit_predict, infer_groups, merge_pairs
from kit.probes.imagestats import ImageStats, Unreadable, read_image_stats
from kit.probes.runs import FinishedRun, cached_features, find_run, pool_features
from kit.probes.settings import ProbeSettings
from kit.probes.size import SizeReading, SizeResult, read_sizes, size_probe

__all__ = ["ProbeReport", "ProbeRequest", "run_probes"]

Log = Callable[[str], None]
IMAGE_STATISTICS = "image statistics (colour histograms and grid colours)"
UNREADABLE_GROUP = "unreadable"
DEMO_META = "demo_meta.csv"


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


def duplicate_clusters(paths: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    """A cluster id per path: paths joined by a near-duplicate pair share one (union-find);
    a path in no pair is its own cluster."""
    parent = {p: p for p in paths}

    def find(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in pairs:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    return [find(p) for p in paths]


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


@dataclass(frozen=True, kw_only=True)
class _Features:
    """The non-metadata features of the readable images, and where they came from."""

    matrix: np.ndarray
    source: str


def _features(run: FinishedRun | None, good: pd.DataFrame, stats: ImageStats,
              paths: Paths) -> _Features:
    statistics = np.concatenate([stats.histogram, stats.grid], axis=1)
    if run is None:
        return _Features(matrix=statistics, source=f"{IMAGE_STATISTICS}: no finished run")
    found = cached_features(run, list(good["file"]), paths)
    if found is None or not found[1].all():
        missing = len(good) if found is None else int((~found[1]).sum())
        return _Features(matrix=statistics,
                         source=f"{IMAGE_STATISTICS}: {missing} images lack cached features "
                                f"of run {run.run_id}")
    key = run.feature_key()
    return _Features(matrix=pool_features(found[0]),
                     source=f"cached features of run {run.run_id} ({key.backbone} "
                            f"{key.input_size[0]}x{key.input_size[1]}, average+max pooled)")


def _true_groups(root: Path, paths: list[str]) -> np.ndarray | None:
    meta_file = root / DEMO_META
    if not meta_file.is_file():
        return None
    meta = pd.read_csv(meta_file)
    if not {"path", "boat"} <= set(meta.columns):
        return None
    boats = dict(zip(meta["path"].astype(str), meta["boat"].astype(str), strict=True))
    if not all(p in boats for p in paths):
        return None
    return np.array([boats[p] for p in paths], dtype=object)


def _holdout(root: Path, competition: Competition, train: pd.DataFrame, test: pd.DataFrame,
             probs: np.ndarray) -> dict | None:
    """Public/private log loss of `probs` for `test` (and of the prior) against solution.csv.

    Log loss whatever the competition's metric: the probes compare probabilities."""
    solution_file = root / "solution.csv"
    if not solution_file.is_file():
        return None
    from kit.scoring.metrics import log_loss
    from kit.scoring.score import read_solution, truth_indices

    solution = read_solution(solution_file, competition)
    row_of = {str(i): k for k, i in enumerate(test["id"])}
    order = np.array([row_of[str(i)] for i in solution[competition.submission.id_column]])
    y, p = truth_indices(solution, competition), probs[order]
    prior = np.bincount(_labels(competition, train), minlength=competition.n_classes) / len(train)
    out: dict = {"solution": str(solution_file)}
    for usage in ("Public", "Private"):
        mask = (solution["Usage"].astype(str) == usage).to_numpy()
        out[usage.lower()] = log_loss(y[mask], p[mask]) if mask.any() else None
        out[f"prior_{usage.lower()}"] = (log_loss(y[mask], np.tile(prior, (mask.sum(), 1)))
                                         if mask.any() else None)
    return out


def _declared(competition: Competition, root: Path, train: pd.DataFrame,
              inferred: np.ndarray) -> dict | None:
    """The competition's declared groups against the inferred ones (adjusted Rand index)."""
    if competition.groups is None:
        return None
    from sklearn.metrics import adjusted_rand_score

    declared = declared_groups(competition, root, train)
    return {"file": str(root / competition.groups.file),
            "n_groups": int(len(np.unique(declared))),
            "adjusted_rand_index": float(adjusted_rand_score(declared, inferred))}


def _run_groups(request: ProbeRequest, layout: Layout, good: pd.DataFrame,
                stats: ImageStats, features: _Features,
                duplicates: DuplicatesResult) -> GroupsResult:
    competition, settings = request.competition, request.settings
    is_train = (good["split"] == TRAIN).to_numpy()
    train = good[is_train].reset_index(drop=True)
    inference = infer_groups(train["width"].to_numpy(np.int64),
                             train["height"].to_numpy(np.int64),
                             stats.grid[is_train], settings=settings)
    index = {p: i for i, p in enumerate(train["path"])}
    pairs = [(index[p.a], index[p.b]) for p in duplicates.pairs if p.kind == "within_train"]
    inference = merge_pairs(inference, pairs)
    group_of = dict(zip(train["path"], inference.groups.tolist(), strict=True))
    all_train = layout.train
    frame = pd.DataFrame({"path": all_train["path"].tolist(),
                          "group": [group_of.get(p, UNREADABLE_GROUP) for p in all_train["path"]]})
    groups_file = request.paths.groups_file(competition.name, layout.root)
    atomic_write_text(groups_file, frame.to_csv(index=False, lineterminator="\n"))

    truth = _true_groups(layout.root, list(train["path"]))
    agreement = None
    if truth is not None:
        from sklearn.metrics import adjusted_rand_score

        agreement = float(adjusted_rand_score(truth, inference.groups))
    common = {"n_groups": inference.n_groups, "groups_file": str(groups_file),
              "blocks": inference.blocks, "group_sizes": inference.sizes(),
              "merged_by_duplicates": inference.merged_by_duplicates, "agreement": agreement,
              "declared": _declared(competition, layout.root, train, inference.groups)}
    labels = _labels(competition, train)
    if inference.n_groups < 2 or not usable_folds(labels, settings.folds):
        note = ("one group only: nothing to hold out" if inference.n_groups < 2
                else "a class has a single image: no cross-validation")
        return GroupsResult(leak=False, comparison=None, holdout=None, note=note, **common)
    x = features.matrix
    comparison = compare_cv(x[is_train], labels, inference.groups, competition.n_classes,
                            feature_source=features.source, settings=settings)
    probs = fit_predict(x[is_train], labels, x[~is_train], competition.n_classes,
                        regularization=comparison.regularization)
    test = layout.test.reset_index(drop=True)
    # Unreadable test images get the class prior, as the pipeline's submission gives them.
    full = np.tile(np.bincount(labels, minlength=competition.n_classes) / len(labels),
                   (len(test), 1))
    row_of = {p: i for i, p in enumerate(test["path"])}
    full[[row_of[p] for p in good.loc[~is_train, "path"]]] = probs
    holdout = _holdout(layout.root, competition, train, test, full)
    return GroupsResult(leak=comparison.leak, comparison=comparison, holdout=holdout, **common)


def _run_adversarial(good: pd.DataFrame, features: _Features,
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
    groups = timed("groups", lambda: _run_groups(request, layout, good, stats, features,
                                                 duplicates))
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
