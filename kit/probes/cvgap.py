"""How optimistic stratified folds are: one model's out-of-fold log loss, stratified vs grouped.

Pure functions of arrays (no I/O, no model): out-of-fold probabilities of the same model under
two fold sets go in (stratified K-fold, and K-fold that keeps each group whole: a boat, a
driver, a cluster of near-duplicates), one :class:`CVComparison` comes out. Which model made the
probabilities (the run's own head, :mod:`kit.probes.headcv`, or the probes' logistic
regression, :func:`kit.probes.groups.compare_cv`) is only described here.

The optimism is the mean over training images of (group-fold minus stratified-fold log loss).
Two kinds of noise move it. Images of one group are not independent, so both the interval and
the test resample whole groups: a percentile bootstrap over groups
(:func:`kit.probes.stats.bootstrap_mean_interval`) and a one-sided sign-flip test over groups
(:func:`kit.probes.stats.sign_flip_test`). And each fold's model is one draw of a noisy
training (which rows, which seed, where early stopping landed): that shifts every image it
scores at once, so it is not group noise, and it is large (measured: +-0.015 nats on a CV of
0.05 from the fold assignment alone; on synthetic data without any group effect, ignoring it
flagged a leak in 3 of 14 seeds at alpha 0.05). So the comparison is repeated
(`ProbeSettings.repeats`, each repeat with its own folds and training seeds) and the per-image
gaps are averaged over the repeats. The model noise of that average is estimated from the
spread of the repeats' *stratified* CV: under the null (no group effect) grouped folds are
just other random folds, so each repeat's gap is the difference of two such CVs, with twice
their variance. (The spread of the gaps themselves would also count how much the effect
varies with which groups share a fold, and so grows with the very effect under test: on a
synthetic set where every repeat measured 1.1 to 3.4 nats of optimism it hid the leak.) The
noise enters both the interval and the test as a Student t with ``repeats - 1`` degrees of
freedom (:class:`kit.probes.stats.ModelNoise`).

The verdict, LEAK, needs both: ``p <= alpha`` and the interval at ``1 - alpha`` above 0. No
threshold is tuned to a dataset; with G groups the smallest p is ``2**-G``, so fewer than five
groups can never show a leak at ``alpha = 0.05``.

Holding a whole group out also changes the class prior the fold's model learns (leave out the
boat that lands most of the LAG and the model rarely predicts LAG), which the final model,
trained on every group, does not suffer. So each fold's out-of-fold probabilities are moved
from the fold's training prior to the full training prior by Bayes' rule
(``p(y|x) * prior(y) / fold_prior(y)``, renormalised) under both fold sets; with stratified
folds the two priors agree and nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from kit.core.errors import InputError
from kit.probes.crossval import fold_prior, make_folds
from kit.probes.settings import ProbeSettings
from kit.probes.stats import Interval, ModelNoise, bootstrap_mean_interval, sign_flip_test
from kit.scoring.metrics import row_log_losses

RUN_HEAD, PROBE_MODEL = "run_head", "probe_model"
#: Said when the probes' own model found nothing: it may fail to learn what a run's head learns.
PROBE_MODEL_HINT = ("the probe model may miss what a head learns: `kit run` this data, then "
                    "probe again to measure with the run's own head")

__all__ = ["PROBE_MODEL", "PROBE_MODEL_HINT", "RUN_HEAD", "CVComparison", "FoldSets",
           "ModelUsed", "Replicate", "corrected_losses", "fold_sets", "judge_gap",
           "prior_corrected"]


@dataclass(frozen=True, kw_only=True)
class CVComparison:
    """One model scored with stratified and with group folds on the same features.

    Attributes:
        feature_source: What the model read (cached features of a run, or image statistics).
        regularization: The logistic regression's inverse L2 strength; None for the run's head.
        stratified_log_loss, group_log_loss: Mean out-of-fold log loss under each fold set
            (prior-corrected, see the module docstring).
        prior_log_loss: The class prior's log loss.
        optimism: Group minus stratified log loss, with its interval (bootstrap over groups).
        p_value: Sign-flip test over groups that the optimism is above 0.
        model: Which model was trained (the run's head with its settings, or the probe model).
        grouping: What was kept whole by the group folds (declared or inferred groups,
            near-duplicate clusters).
        n_groups: How many groups (resampling units) there were.
        model_kind: ``run_head`` (the run's own head) or ``probe_model`` (the fallback).
        repeat_optimism: The optimism of each repeat (other folds and training seeds).
        model_noise: Standard error of the mean optimism from the repeats' spread (added to the
            interval and the test).
    """

    feature_source: str
    regularization: float | None
    stratified_log_loss: float
    group_log_loss: float
    prior_log_loss: float
    optimism: Interval
    p_value: float
    alpha: float
    n_stratified_folds: int
    n_group_folds: int
    model: str = "logistic regression"
    grouping: str = "groups"
    n_groups: int = 0
    model_kind: str = PROBE_MODEL
    repeat_optimism: tuple[float, ...] = ()
    model_noise: float = 0.0

    @property
    def leak(self) -> bool:
        """Stratified CV is optimistic: ``p <= alpha`` and the optimism's interval above 0."""
        return self.p_value <= self.alpha and self.optimism.low > 0

    def summary(self, kept: str = "group") -> str:
        """One line: the optimism, its interval and test, both CVs and which model."""
        o = self.optimism
        by = "the run's head" if self.model_kind == RUN_HEAD else "the probe model"
        return (f"optimism {o.estimate:.3f} nats [{o.low:.3f}, {o.high:.3f}], p={self.p_value:.3g};"
                f" stratified CV {self.stratified_log_loss:.3f} vs {kept} CV "
                f"{self.group_log_loss:.3f}, by {by}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["optimism"] = self.optimism.to_dict()
        out["repeat_optimism"] = list(self.repeat_optimism)
        out["n_repeats"] = len(self.repeat_optimism)
        out["leak"] = self.leak
        return out


@dataclass(frozen=True, kw_only=True, eq=False)
class FoldSets:
    """A fold per training image under both schemes, and the group each image belongs to."""

    stratified: np.ndarray
    grouped: np.ndarray
    groups: np.ndarray


@dataclass(frozen=True, kw_only=True)
class ModelUsed:
    """How the out-of-fold probabilities were made, for the report."""

    model: str
    feature_source: str
    grouping: str
    regularization: float | None = None
    kind: str = PROBE_MODEL


def fold_sets(y: np.ndarray, groups: np.ndarray, *, settings: ProbeSettings,
              repeat: int = 0) -> FoldSets:
    """Stratified and grouped K-fold of the same labels (`settings.folds` wanted), seeded by
    ``settings.seed + repeat``.

    Raises:
        InputError: Fewer than two groups, or a class with a single image.
    """
    groups = np.asarray(groups).astype(str)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise InputError(f"group CV needs at least 2 groups; the inference found {n_groups}.")
    y = np.asarray(y, np.int64)
    seed = settings.seed + repeat
    return FoldSets(stratified=make_folds(y, wanted=settings.folds, seed=seed),
                    grouped=make_folds(y, wanted=settings.folds, seed=seed, groups=groups),
                    groups=groups)


@dataclass(frozen=True, kw_only=True, eq=False)
class Replicate:
    """One repeat of the comparison: its folds, and the out-of-fold probabilities (n, k) the
    model gave under each fold set."""

    folds: FoldSets
    stratified: np.ndarray
    grouped: np.ndarray


def prior_corrected(probs: np.ndarray, y: np.ndarray, folds: np.ndarray,
                    n_classes: int) -> np.ndarray:
    """Move each fold's probabilities from its training prior to the full prior (pure)."""
    full = fold_prior(y, n_classes)
    out = np.array(probs, dtype=np.float64)
    for fold in np.unique(folds):
        rows = folds == fold
        adjusted = out[rows] * (full / fold_prior(y[~rows], n_classes))
        out[rows] = adjusted / adjusted.sum(axis=1, keepdims=True)
    return out


def corrected_losses(probs: np.ndarray, y: np.ndarray, folds: np.ndarray,
                     n_classes: int) -> np.ndarray:
    """Per-image log loss of prior-corrected out-of-fold probabilities."""
    return row_log_losses(y, prior_corrected(probs, y, folds, n_classes))


def _losses(y: np.ndarray, replicates: Sequence[Replicate], n_classes: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """(R, n) per-image log losses under the stratified and the grouped folds of each repeat."""
    n = len(y)
    strat, group = [], []
    for r in replicates:
        if r.stratified.shape != (n, n_classes) or r.grouped.shape != (n, n_classes):
            raise InputError(f"out-of-fold probabilities must be (n, n_classes) = "
                             f"{(n, n_classes)}; received {r.stratified.shape} and "
                             f"{r.grouped.shape}.")
        strat.append(corrected_losses(r.stratified, y, r.folds.stratified, n_classes))
        group.append(corrected_losses(r.grouped, y, r.folds.grouped, n_classes))
    return np.array(strat), np.array(group)


def _null_noise(stratified_cvs: np.ndarray) -> ModelNoise:
    """The model noise of the mean gap over repeats under the null: each gap the difference of
    two CVs that vary as the repeats' stratified CVs do (see the module docstring)."""
    one = ModelNoise.of_replicates(stratified_cvs)
    return ModelNoise(scale=float(np.sqrt(2.0) * one.scale), df=one.df)


def judge_gap(y: np.ndarray, replicates: Sequence[Replicate], n_classes: int, *,
              used: ModelUsed, settings: ProbeSettings) -> CVComparison:
    """The optimism of stratified CV from out-of-fold probabilities under both fold sets,
    repeated (see the module docstring).

    Args:
        y: (n,) class indexes.
        replicates: One or more repeats (the same groups); with two or more, their spread is
            the model noise counted by the interval and the test.
        n_classes: Number of classes.
        used: The model and features that made them (reported as they are).
        settings: ``alpha``, resamples, permutations and seed.

    Raises:
        InputError: If the shapes disagree or there is no repeat.
    """
    y = np.asarray(y, np.int64)
    if not replicates:
        raise InputError("judge_gap needs at least one repeat; received none.")
    strat, group = _losses(y, replicates, n_classes)
    gaps = group - strat
    per_repeat = gaps.mean(axis=1)
    noise = _null_noise(strat.mean(axis=1)) if len(replicates) > 1 else None
    gap, groups = gaps.mean(axis=0), replicates[0].folds.groups
    optimism = bootstrap_mean_interval(gap, level=settings.level,
                                       n_resamples=settings.n_resamples, seed=settings.seed,
                                       clusters=groups, noise=noise)
    test = sign_flip_test(gap, groups, n_permutations=settings.n_permutations,
                          seed=settings.seed, noise=noise)
    prior = np.bincount(y, minlength=n_classes) / len(y)
    first = replicates[0].folds
    return CVComparison(
        feature_source=used.feature_source, regularization=used.regularization,
        stratified_log_loss=float(strat.mean()), group_log_loss=float(group.mean()),
        prior_log_loss=float(row_log_losses(y, np.tile(prior, (len(y), 1))).mean()),
        optimism=optimism, p_value=test.p_value, alpha=settings.alpha,
        n_stratified_folds=int(len(np.unique(first.stratified))),
        n_group_folds=int(len(np.unique(first.grouped))),
        model=used.model, grouping=used.grouping, n_groups=int(len(np.unique(groups))),
        model_kind=used.kind, repeat_optimism=tuple(float(v) for v in per_repeat),
        model_noise=noise.scale if noise else 0.0)
