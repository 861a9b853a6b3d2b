"""The groups and near-duplicate CV probes on one dataset: which groupings to keep whole, the
groups file, and the results.

Reads what the runner gathered (the readable images, their statistics, the near-duplicate
pairs, the features) and writes one file: `groups.csv` (`Paths.groups_file`), the inferred
groups that `run --folds group` reads when the competition declares none. The CV measurements
themselves are :mod:`kit.probes.leakcv`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit.competition import Competition
from kit.core.atomic import atomic_write_text
from kit.data.groups import declared_groups
from kit.probes.crossval import make_folds, usable_folds
from kit.probes.duplicates import (
    ClusterSpread,
    DuplicatesResult,
    cluster_spread,
    duplicate_clusters,
)
from kit.probes.groups import GroupInference, GroupsResult, infer_groups, merge_pairs
from kit.probes.leakcv import CVMeasurement, Grouping
from kit.probes.settings import ProbeSettings

__all__ = ["TrainRows", "cluster_grouping", "duplicates_with_cv", "group_grouping",
           "groups_result", "infer_and_write"]

UNREADABLE_GROUP = "unreadable"
DEMO_META = "demo_meta.csv"
DUPLICATES = "duplicates"
GROUPS = "groups"


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainRows:
    """The readable training images (table rows, in order) and their class indexes."""

    table: pd.DataFrame
    y: np.ndarray

    def within_pairs(self, duplicates: DuplicatesResult) -> list[tuple[str, str]]:
        return [(p.a, p.b) for p in duplicates.pairs if p.kind == "within_train"]


def infer_and_write(train: TrainRows, grid: np.ndarray, duplicates: DuplicatesResult, *,
                    all_train: pd.DataFrame, groups_file: Path,
                    settings: ProbeSettings) -> GroupInference:
    """Groups inferred from sizes and colours (`grid`: the training rows' colour statistics),
    near-duplicates merged; written to `groups_file` for every training image (unreadable
    ones in a group of their own)."""
    table = train.table
    inference = infer_groups(table["width"].to_numpy(np.int64),
                             table["height"].to_numpy(np.int64), grid, settings=settings)
    index = {p: i for i, p in enumerate(table["path"])}
    inference = merge_pairs(inference, [(index[a], index[b])
                                        for a, b in train.within_pairs(duplicates)])
    group_of = dict(zip(table["path"], inference.groups.tolist(), strict=True))
    frame = pd.DataFrame({"path": all_train["path"].tolist(),
                          "group": [group_of.get(p, UNREADABLE_GROUP)
                                    for p in all_train["path"]]})
    atomic_write_text(groups_file, frame.to_csv(index=False, lineterminator="\n"))
    return inference


def _declared(competition: Competition, root: Path, train: pd.DataFrame,
              inferred: np.ndarray) -> tuple[dict | None, np.ndarray | None]:
    """The competition's declared groups, and a summary of them against the inferred ones
    (adjusted Rand index); (None, None) when it declares none."""
    if competition.groups is None:
        return None, None
    from sklearn.metrics import adjusted_rand_score

    declared = declared_groups(competition, root, train)
    return ({"file": str(root / competition.groups.file),
             "n_groups": int(len(np.unique(declared))),
             "adjusted_rand_index": float(adjusted_rand_score(declared, inferred))}, declared)


def group_grouping(competition: Competition, root: Path, train: TrainRows,
                   inference: GroupInference, *, settings: ProbeSettings
                   ) -> tuple[Grouping | None, dict | None, str]:
    """The groups the groups probe keeps whole: the declared ones (the truth) where the
    competition declares them, else the inferred ones. Returns the grouping (None when no CV
    comparison is possible), the declared groups' summary, and why it was skipped."""
    summary, declared = _declared(competition, root, train.table, inference.groups)
    if declared is not None:
        labels = np.asarray(declared).astype(str)
        text = (f"{len(np.unique(labels))} declared groups ({competition.groups.file}, column "
                f"{competition.groups.group_column})")
    else:
        labels = inference.groups
        text = f"{inference.n_groups} inferred groups"
    if len(np.unique(labels)) < 2:
        return None, summary, "one group only: nothing to hold out"
    if not usable_folds(train.y, settings.folds):
        return None, summary, "a class has a single image: no cross-validation"
    return Grouping(name=GROUPS, labels=labels, text=text), summary, ""


def cluster_grouping(train: TrainRows, duplicates: DuplicatesResult, *,
                     settings: ProbeSettings) -> tuple[Grouping | None, ClusterSpread | None, str]:
    """The near-duplicate clusters inside train as a grouping, how stratified folds cut them,
    and why no comparison runs (if none does)."""
    pairs = train.within_pairs(duplicates)
    if not pairs:
        return None, None, ""
    clusters = np.array(duplicate_clusters(list(train.table["path"]), pairs)).astype(str)
    if not usable_folds(train.y, settings.folds):
        return None, None, "a class has a single image: no cross-validation"
    folds = make_folds(train.y, wanted=settings.folds, seed=settings.seed)
    spread = cluster_spread(clusters, folds)
    text = (f"{spread.n_clusters} near-duplicate clusters kept whole (with "
            f"{spread.n_train - spread.clustered_images} single images)")
    return Grouping(name=DUPLICATES, labels=clusters, text=text), spread, ""


def duplicates_with_cv(duplicates: DuplicatesResult, spread: ClusterSpread | None,
                       cv: CVMeasurement, note: str) -> DuplicatesResult:
    """The duplicates result with the clusters' effect on CV."""
    return duplicates.with_train_cv(spread, cv.comparisons.get(DUPLICATES), note=note)


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


@dataclass(frozen=True, kw_only=True, eq=False)
class HoldoutRows:
    """The test images and their readable subset, where the test probabilities are scored."""

    root: Path
    competition: Competition
    test: pd.DataFrame  # every test image, in table order
    readable: list[str]  # paths of the readable ones, in the order of the probabilities


def _holdout(rows: HoldoutRows, train: TrainRows, probs: np.ndarray) -> dict | None:
    """Public/private log loss of `probs` (readable test rows; the others get the class
    prior, as the pipeline's submission gives them) and of the prior, against solution.csv.

    Log loss whatever the competition's metric: the probes compare probabilities."""
    solution_file = rows.root / "solution.csv"
    if not solution_file.is_file():
        return None
    from kit.scoring.metrics import log_loss
    from kit.scoring.score import read_solution, truth_indices

    competition = rows.competition
    prior = np.bincount(train.y, minlength=competition.n_classes) / len(train.y)
    full = np.tile(prior, (len(rows.test), 1))
    row_of = {p: i for i, p in enumerate(rows.test["path"])}
    full[[row_of[p] for p in rows.readable]] = probs
    solution = read_solution(solution_file, competition)
    id_row = {str(i): k for k, i in enumerate(rows.test["id"])}
    order = np.array([id_row[str(i)] for i in solution[competition.submission.id_column]])
    y, p = truth_indices(solution, competition), full[order]
    out: dict = {"solution": str(solution_file)}
    for usage in ("Public", "Private"):
        mask = (solution["Usage"].astype(str) == usage).to_numpy()
        out[usage.lower()] = log_loss(y[mask], p[mask]) if mask.any() else None
        out[f"prior_{usage.lower()}"] = (log_loss(y[mask], np.tile(prior, (mask.sum(), 1)))
                                         if mask.any() else None)
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class GroupsFound:
    """What the groups probe found before any CV: inference, file, the declared groups."""

    inference: GroupInference
    groups_file: Path
    declared: dict | None
    note: str


def groups_result(found: GroupsFound, train: TrainRows, cv: CVMeasurement,
                  holdout: HoldoutRows) -> GroupsResult:
    """The groups probe's result from its inference and the CV measurement."""
    inference = found.inference
    truth = _true_groups(holdout.root, list(train.table["path"]))
    agreement = None
    if truth is not None:
        from sklearn.metrics import adjusted_rand_score

        agreement = float(adjusted_rand_score(truth, inference.groups))
    comparison = cv.comparisons.get(GROUPS)
    scored = None
    if comparison is not None and cv.test is not None:
        scored = _holdout(holdout, train, cv.test)
    return GroupsResult(
        leak=comparison is not None and comparison.leak, n_groups=inference.n_groups,
        groups_file=str(found.groups_file), blocks=inference.blocks,
        group_sizes=inference.sizes(), merged_by_duplicates=inference.merged_by_duplicates,
        comparison=comparison, holdout=scored, agreement=agreement, declared=found.declared,
        note=found.note, grouping="declared" if found.declared else "inferred")
