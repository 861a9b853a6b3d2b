"""The statistical settings every probe shares: significance level, resamples, folds, seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from kit.core.errors import InputError
from kit.probes.stats import check_alpha


@dataclass(frozen=True, kw_only=True)
class ProbeSettings:
    """How strict the probes are and how much they resample.

    Attributes:
        alpha: Significance level of every verdict: a permutation test must reach
            ``p <= alpha``; a confidence interval is taken at ``level = 1 - alpha``.
        n_permutations: Shuffles per permutation test (the smallest p is ``1/(n+1)``).
        n_resamples: Bootstrap resamples per interval.
        folds: Cross-validation folds of the probes' small models (fewer when a class or the
            number of groups is smaller).
        seed: Seed of every shuffle, resample, fold split and simulation.
        workers: Threads decoding images.
        repeats: Times the CV comparisons of the groups and near-duplicates probes are
            repeated, each with other folds and training seeds; their spread is the model's
            own noise, which the verdicts count (at least 2).
    """

    alpha: float = 0.05
    n_permutations: int = 999
    n_resamples: int = 2000
    folds: int = 5
    seed: int = 0
    workers: int = 2
    repeats: int = 3

    def __post_init__(self) -> None:
        check_alpha(self.alpha)
        for name, minimum in (("n_permutations", 19), ("n_resamples", 100), ("folds", 2),
                              ("seed", 0), ("workers", 1), ("repeats", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InputError(
                    f"{name} must be an integer >= {minimum}; received {name}={value!r}."
                )

    @property
    def level(self) -> float:
        """Confidence level of the intervals, ``1 - alpha``."""
        return 1.0 - self.alpha

    def to_dict(self) -> dict:
        return asdict(self)
