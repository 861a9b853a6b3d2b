"""Groups: which training images come from one boat or camera, and what that does to CV.

Inference, from metadata and image statistics:

1. Size blocks: images sharing an exact size (a camera resolution) form a block; images whose
   size no other image has are pooled into one block. Sizes are read as camera identities only
   when they behave like a small set of cameras rather than a continuum: when the Good-Turing
   estimate of the chance that the next image has a size never seen (the share of images whose
   size occurs once) is below one half. Otherwise (e.g. photos of random sizes, where a few
   sizes repeat by coincidence) all images form one block.
2. Colour clusters within each block: colour statistics on a coarse grid (where the deck
   shows) are reduced to their principal components and clustered (Ward linkage, 2 to
   `MAX_CLUSTERS` clusters, the count with the best silhouette). The split is kept only when
   that silhouette beats Gaussian data with the same covariance, which has no clusters (a
   parametric-bootstrap test as in SigClust: ``n_null`` Gaussian samples clustered the same
   way; the p-value is the upper tail of a normal fitted to their silhouettes, so it can go
   below ``1 / (n_null + 1)``). Every block is tested, so each test is at ``alpha / n_blocks``
   (Bonferroni). The colour statistics are log colour ratios and log relative luminance
   (:mod:`kit.probes.imagestats`), so one deck under brighter or darker light stays one cloud.
3. Near-duplicate pairs are merged into one group (union-find), so that they share a fold.

Consequence for validation: a model scored with stratified folds sees every boat in training,
so it can recognise the boat instead of the fish; group folds hold whole boats out, as a test
set from new boats does. The groups probe scores one model both ways on the same features: the
run's own head on its cached features where a finished run exists (:mod:`kit.probes.headcv`),
else the logistic regression of :func:`compare_cv`. The groups kept whole are the
competition's declared groups (the truth) when it declares them, else the inferred ones. The
verdict and its statistics are :mod:`kit.probes.cvgap`'s: LEAK when a sign-flip test over whole
groups gives ``p <= alpha`` and the bootstrap interval (over groups) of the optimism lies above
0. The fix it names: ``run --folds group``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from kit.core.errors import InputError
from kit.probes.crossval import oof_probabilities
from kit.probes.cvgap import (
    PROBE_MODEL_HINT,
    RUN_HEAD,
    CVComparison,
    ModelUsed,
    Replicate,
    corrected_losses,
    fold_sets,
    judge_gap,
    prior_corrected,
)
from kit.probes.settings import ProbeSettings

__all__ = [
    "BlockSplit",
    "CVComparison",
    "GroupInference",
    "GroupsResult",
    "MAX_CLUSTERS",
    "compare_cv",
    "fit_predict",
    "infer_groups",
    "merge_pairs",
    "prior_corrected",
    "split_block",
]

MAX_CLUSTERS = 8
MAX_COMPONENTS = 8
N_NULL = 39
UNIQUE_SIZES = "unique-size"
#: Sizes identify cameras when the Good-Turing chance of a new size is below this (a majority
#: of images share their size with another image).
GOOD_TURING_LIMIT = 0.5
#: Inverse L2 strengths (C) tried for the CV-comparison model; the one with the lowest group-CV
#: log loss (the honest estimate) is used for both schemes and for the holdout score.
REGULARIZATION_GRID: tuple[float, ...] = (0.1, 0.01, 0.001, 0.0001)
#: The fix the groups probe names when stratified CV is optimistic.
GROUPS_FIX = "`run --folds group`"


@dataclass(frozen=True, kw_only=True)
class BlockSplit:
    """How one size block was split by colour."""

    block: str
    n_images: int
    n_clusters: int
    silhouette: float | None
    p_value: float | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True, eq=False)
class GroupInference:
    """A group label per training image and how it was reached."""

    groups: np.ndarray  # (n,) str labels
    blocks: tuple[BlockSplit, ...]
    merged_by_duplicates: int = 0

    @property
    def n_groups(self) -> int:
        return len(set(self.groups.tolist()))

    def sizes(self) -> dict[str, int]:
        return dict(Counter(self.groups.tolist()).most_common())


def _silhouette_curve(points: np.ndarray, max_clusters: int) -> tuple[int, float]:
    """Best (k, silhouette) over k = 2..max_clusters of a Ward hierarchy of `points`."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import silhouette_score

    tree = linkage(points, method="ward")
    best_k, best_score = 0, -1.0
    for k in range(2, max_clusters + 1):
        labels = fcluster(tree, t=k, criterion="maxclust")
        n_found = len(np.unique(labels))
        if n_found < 2 or n_found >= len(points):
            continue
        score = float(silhouette_score(points, labels))
        if score > best_score:
            best_k, best_score = n_found, score
    return best_k, best_score


def split_block(colour: np.ndarray, *, alpha: float, seed: int, n_null: int = N_NULL,
                max_clusters: int = MAX_CLUSTERS) -> tuple[np.ndarray, float | None, float | None]:
    """Cluster one block's colour vectors, or keep it whole (pure, seeded).

    Args:
        colour: (n, d) colour vectors of the block.
        alpha: Significance level of this block's test (already corrected for the number of
            blocks).
        seed: Seed of the Gaussian null samples.
        n_null: Number of null samples (>= 3).
        max_clusters: Largest number of clusters tried.

    Returns:
        ``(labels, silhouette, p_value)``: cluster label per row (all 0 when kept whole), the
        best silhouette and its p-value against the Gaussian null (None when the block is too
        small to split: fewer than four images).
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.stats import norm

    if isinstance(n_null, bool) or not isinstance(n_null, int) or n_null < 3:
        raise InputError(f"n_null must be an integer >= 3; received n_null={n_null!r}.")
    x = np.asarray(colour, dtype=np.float64)
    n = len(x)
    max_k = min(max_clusters, n // 2)
    if n < 4 or max_k < 2:
        return np.zeros(n, np.int64), None, None
    centred = x - x.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    p = int(min(MAX_COMPONENTS, n - 1, (singular > singular[0] * 1e-6).sum()))
    if p == 0:
        return np.zeros(n, np.int64), None, None
    points = centred @ vt[:p].T
    best_k, observed = _silhouette_curve(points, max_k)
    if best_k == 0:
        return np.zeros(n, np.int64), None, None
    rng = np.random.default_rng(seed)
    scale = singular[:p] / np.sqrt(max(n - 1, 1))  # standard deviation of each component
    null = np.array([_silhouette_curve(rng.normal(size=(n, p)) * scale, max_k)[1]
                     for _ in range(n_null)])
    spread = float(null.std(ddof=1))
    if spread > 0:
        p_value = float(norm.sf((observed - float(null.mean())) / spread))
    else:
        p_value = 1.0 if observed <= float(null.mean()) else 0.0
    if p_value > alpha:
        return np.zeros(n, np.int64), observed, p_value
    labels = fcluster(linkage(points, method="ward"), t=best_k, criterion="maxclust") - 1
    return labels.astype(np.int64), observed, p_value


def infer_groups(width: np.ndarray, height: np.ndarray, colour: np.ndarray, *,
                 settings: ProbeSettings | None = None, n_null: int = N_NULL) -> GroupInference:
    """Group training images by camera size and colour (see the module docstring; pure).

    Args:
        width, height: Image sizes.
        colour: (n, d) colour statistics (e.g. `ImageStats.grid`).
        settings: ``alpha`` and ``seed`` of the split tests.
        n_null: Gaussian samples per split test.

    Raises:
        ValueError: On mismatched lengths.
    """
    settings = settings or ProbeSettings()
    width, height = np.asarray(width), np.asarray(height)
    colour = np.asarray(colour, dtype=np.float64)
    if not len(width) == len(height) == len(colour):
        raise InputError(
            f"width, height and colour must have one row per image; received {len(width)}, "
            f"{len(height)} and {len(colour)}."
        )
    keys = np.array([f"{int(w)}x{int(h)}" for w, h in zip(width, height, strict=True)],
                    dtype=object)
    counts = Counter(keys.tolist())
    unseen_chance = sum(1 for k in keys.tolist() if counts[k] == 1) / max(len(keys), 1)
    if unseen_chance < GOOD_TURING_LIMIT:
        blocks = np.array([k if counts[k] > 1 else UNIQUE_SIZES for k in keys.tolist()],
                          dtype=object)
    else:
        blocks = np.full(len(keys), UNIQUE_SIZES, dtype=object)
    groups = np.empty(len(keys), dtype=object)
    splits = []
    names = sorted(set(blocks.tolist()))
    for index, block in enumerate(names):
        rows = np.flatnonzero(blocks == block)
        labels, silhouette, p_value = split_block(colour[rows], alpha=settings.alpha / len(names),
                                                  seed=settings.seed + index, n_null=n_null)
        n_clusters = int(labels.max()) + 1
        for row, label in zip(rows, labels, strict=True):
            groups[row] = block if n_clusters == 1 else f"{block}/c{label}"
        splits.append(BlockSplit(block=block, n_images=len(rows), n_clusters=n_clusters,
                                 silhouette=silhouette, p_value=p_value))
    return GroupInference(groups=groups.astype(str), blocks=tuple(splits))


def merge_pairs(inference: GroupInference, index_pairs: Sequence[tuple[int, int]]
                ) -> GroupInference:
    """Merge the groups of each pair of row indexes (union-find), e.g. near-duplicates."""
    groups = inference.groups.astype(object)
    parent = {g: g for g in set(groups.tolist())}

    def find(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    merged = 0
    for a, b in index_pairs:
        ra, rb = find(groups[a]), find(groups[b])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
            merged += 1
    out = np.array([find(g) for g in groups.tolist()], dtype=object).astype(str)
    return GroupInference(groups=out, blocks=inference.blocks,
                          merged_by_duplicates=inference.merged_by_duplicates + merged)


def _model(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))


def fit_predict(x_train: np.ndarray, y: np.ndarray, x_test: np.ndarray, n_classes: int, *,
                regularization: float) -> np.ndarray:
    """The CV-comparison model fitted on all training rows, predicting `x_test` (n, k)."""
    model = _model(regularization).fit(x_train, y)
    out = np.zeros((len(x_test), n_classes))
    out[:, model.classes_] = model.predict_proba(x_test)
    return out


def compare_cv(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_classes: int, *,
               feature_source: str, settings: ProbeSettings | None = None,
               grouping: str = "groups") -> CVComparison:
    """Stratified vs group K-fold log loss of a logistic regression on `x` (pure, seeded),
    repeated `settings.repeats` times with other folds.

    The probes' own model, used where no finished run's head can be (see
    :mod:`kit.probes.cvgap` for the verdict). The regularisation is the one in
    `REGULARIZATION_GRID` with the lowest group-CV log loss of the first repeat; every fit
    uses it.

    Raises:
        ValueError: If fewer than two groups exist, or a class has a single image.
    """
    settings = settings or ProbeSettings()
    y = np.asarray(y, np.int64)
    sets = [fold_sets(y, groups, settings=settings, repeat=r) for r in range(settings.repeats)]

    def oof(fold: np.ndarray, c: float) -> np.ndarray:
        return oof_probabilities(lambda: _model(c), x, y, fold, n_classes)

    by_c = {c: oof(sets[0].grouped, c) for c in REGULARIZATION_GRID}
    best = min(by_c, key=lambda c: float(
        corrected_losses(by_c[c], y, sets[0].grouped, n_classes).mean()))
    replicates = [Replicate(folds=f, stratified=oof(f.stratified, best),
                            grouped=by_c[best] if r == 0 else oof(f.grouped, best))
                  for r, f in enumerate(sets)]
    used = ModelUsed(model=f"logistic regression (C={best:g}), the probes' own model",
                     feature_source=feature_source, grouping=grouping, regularization=best)
    return judge_gap(y, replicates, n_classes, used=used, settings=settings)


@dataclass(frozen=True, kw_only=True)
class GroupsResult:
    """Inferred groups, where they were written, and stratified vs group CV.

    Attributes:
        leak: Stratified CV is optimistic (``comparison.leak``: sign-flip test over groups
            ``p <= alpha`` and the optimism's interval above 0).
        n_groups: Number of groups among the training images.
        groups_file: The ``path,group`` CSV that ``run --folds group`` reads.
        blocks: How each size block was split by colour.
        group_sizes: Images per group, largest first.
        merged_by_duplicates: Group merges made so near-duplicate pairs share a group.
        comparison: Stratified vs group CV of the run's head (or the probe model) over the
            declared groups where the competition has them, else the inferred ones; None when
            skipped (one group).
        holdout: Public/private log loss of the same model (fitted on all training images, or
            the mean of the run head's stratified fold heads), and of the class prior, where a
            solution file is known.
        agreement: Adjusted Rand index with known true groups (the demo's boats), if any.
        declared: The competition's declared groups (`CsvGroups`), if any: their file, their
            number and the adjusted Rand index of the inferred groups against them.
        note: Why the comparison was skipped, if it was.
    """

    leak: bool
    n_groups: int
    groups_file: str
    blocks: tuple[BlockSplit, ...]
    group_sizes: dict[str, int]
    merged_by_duplicates: int
    comparison: CVComparison | None
    holdout: dict | None
    agreement: float | None
    declared: dict | None = None
    note: str = ""
    grouping: str = "inferred"  # the groups the comparison kept whole: declared or inferred

    @property
    def fix(self) -> str | None:
        """What to run so the CV stops being optimistic (None without a leak)."""
        return GROUPS_FIX if self.leak else None

    @property
    def closer_to_private(self) -> str | None:
        """Which CV scheme lands closer to the private score: group or stratified."""
        if self.comparison is None or not self.holdout or self.holdout.get("private") is None:
            return None
        private = self.holdout["private"]
        group_gap = abs(self.comparison.group_log_loss - private)
        strat_gap = abs(self.comparison.stratified_log_loss - private)
        return "group" if group_gap < strat_gap else "stratified"

    def verdict(self) -> str:
        if self.comparison is None:
            declared = ""
            if self.declared:
                declared = f" (declared: {self.declared['n_groups']})"
            return f"{self.n_groups} groups{declared}; {self.note}"
        c = self.comparison
        text = f"{c.grouping}; {c.summary()}"
        if self.leak:
            return f"LEAK: stratified CV is optimistic ({text}); fix: {self.fix}"
        hint = "" if c.model_kind == RUN_HEAD else f"; {PROBE_MODEL_HINT}"
        return f"no significant CV optimism ({text}){hint}"

    def to_dict(self) -> dict:
        return {
            "leak": self.leak,
            "verdict": self.verdict(),
            "n_groups": self.n_groups,
            "groups_file": self.groups_file,
            "blocks": [b.to_dict() for b in self.blocks],
            "group_sizes": self.group_sizes,
            "merged_by_duplicates": self.merged_by_duplicates,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "holdout": self.holdout,
            "closer_to_private": self.closer_to_private,
            "agreement_with_true_groups": self.agreement,
            "declared": self.declared,
            "note": self.note,
            "grouping": self.grouping,
            "fix": self.fix,
        }
