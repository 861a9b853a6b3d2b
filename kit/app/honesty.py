"""Stage of a run: what its number is worth, before Kaggle says.

1. Reference rows: out-of-fold rows that predict like the submission. Where the heads train
   fused (`kit.cv.fused`), there are at least 3 folds and the inner heads fit their memory
   budget (`kit.cv.nested.fits_nested`), they are an ensemble's
   (`kit.cv.nested`: each row the average of K - 1 models that never saw its fold), and the
   score is moved by what K - 1 folds of training data give over K - 2 (the run's own OOF rows
   against the inner heads' single rows, both one model per row: `size_shift`; on the dog-breed
   demo, 120 classes of a few images each, the unshifted ensemble rows put the interval above
   the private score); otherwise the run's own OOF rows, one model per row and seed, and the
   averaging gain is estimated from the fold models' test predictions
   (`kit.scoring.expected.diversity`).
2. Calibration (log loss only): every candidate of `kit.scoring.calibrators` cross-fitted on the
   reference rows; the one with the lowest cross-fitted log loss among those whose gain over
   none is significant (by cluster) is applied to the submission (`--calibration` forces one).
3. Expected private score: the metric on the calibrated reference rows, with a 95 % interval
   from the folds' clusters (groups or near-duplicate clusters) and the private set's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from kit.app.setup import RunSetup
from kit.app.training import TrainingInputs, fused_heads
from kit.competition import Competition
from kit.cv.task import CVResult
from kit.scoring.calibrators import CANDIDATES, Calibration, choose_calibration
from kit.scoring.expected import Expected, diversity, expected_score
from kit.scoring.metric import get_metric


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """The calibration to apply and the expected private score, with how they were found."""

    reference: str  # "ensemble": nested ensemble OOF rows; "single": the run's OOF rows
    calibration: Calibration
    candidates: dict[str, float]  # candidate -> cross-fitted log loss on the reference rows
    expected: Expected
    z: dict[str, float] = field(default_factory=dict)  # candidate -> z of its gain over none
    asked: str = "auto"  # --calibration

    def calibration_note(self) -> dict:
        return {**self.calibration.to_dict(), "asked": self.asked,
                "fitted_on": f"{self.reference} OOF rows",
                "cross_fitted_log_loss": self.candidates, "gain_z": self.z}

    def expected_note(self) -> dict:
        return {**self.expected.to_dict(), "reference": self.reference}


def n_private(competition: Competition, test_split: np.ndarray) -> int:
    """Test rows the private leaderboard scores: the declared private splits' rows, or the
    declared private share of all test rows."""
    splits = np.asarray(test_split).astype(str)
    if competition.private_splits:
        count = int(np.isin(splits, list(competition.private_splits)).sum())
    else:
        count = int(round(competition.private_share * len(splits)))
    return max(count, 1)


class Reference(NamedTuple):
    """Rows that predict like the submission, and what still moves their score to its."""

    rows: np.ndarray
    kind: str  # "ensemble" or "single"
    gain: float  # averaging gain still to subtract (single rows, log loss)
    shift: float = 0.0  # the metric's move from the rows' training size to the submission's


def size_shift(metric: str, y: np.ndarray, singles: np.ndarray, cv: CVResult,
               seed: int) -> float:
    """The metric of the run's own seed-`seed` OOF rows (models on K - 1 folds) less the mean
    metric of the inner heads' single rows (models on K - 2 folds)."""
    score = get_metric(metric).score
    own = np.zeros_like(singles[0])
    for fold in cv.folds:
        if fold.seed == seed:
            own[fold.val_index] = fold.oof
    inner = float(np.mean([score(y, rows) for rows in singles]))
    return float(score(y, own)) - inner


def reference_rows(inputs: TrainingInputs, cv: CVResult) -> Reference:
    """See the module docstring, step 1."""
    from kit.cv.nested import MIN_FOLDS, ensemble_oof, fits_nested

    setup = inputs.setup
    fused = fused_heads(setup, inputs.data)
    n_folds = len(np.unique(inputs.folds))
    if (fused is not None and n_folds >= MIN_FOLDS and setup.recipe.pseudo_label is None
            and fits_nested(fused, n_folds)):
        seed = setup.seeds[0]
        path = inputs.folder.root / f"seed{seed}" / "nested_oof.npz"
        nested = ensemble_oof(fused, inputs.folds, seed=seed, path=path)
        shift = size_shift(setup.competition.metric, inputs.data.y_train, nested.singles, cv,
                           seed)
        return Reference(rows=nested.ensemble, kind="ensemble", gain=0.0, shift=shift)
    tests = np.stack([f.test for f in cv.folds]) if len(cv.folds) > 1 else None
    gain = diversity(tests) if tests is not None else 0.0
    return Reference(rows=cv.oof, kind="single", gain=gain)


def candidates_for(reference: str) -> tuple[str, ...]:
    """The calibrations tried on these reference rows: a temperature fitted on one model's
    rows over-softens the K-model average (fisheries demo: private 1.19 -> 1.35), so it is
    tried only on ensemble rows."""
    return CANDIDATES if reference == "ensemble" else tuple(c for c in CANDIDATES
                                                             if c != "temperature")


def assess(inputs: TrainingInputs, cv: CVResult, *, clusters: np.ndarray | None,
           test_split: np.ndarray) -> Assessment:
    """Steps 1-3 of the module docstring, for a finished cross-validation."""
    setup: RunSetup = inputs.setup
    competition, y = setup.competition, inputs.data.y_train
    rows, kind, gain, shift = reference_rows(inputs, cv)
    calibration, candidates, z = Calibration(kind="none"), {}, {}
    if competition.metric == "log_loss":
        asked = setup.recipe.calibration
        choice = choose_calibration(y, rows, inputs.folds, candidates=candidates_for(kind),
                                    clusters=clusters,
                                    forced=None if asked == "auto" else asked)
        calibration, candidates, rows = choice.chosen, choice.losses, choice.calibrated
        z = choice.z
    else:
        gain = 0.0  # the averaging gain is a log-loss estimate
    expected = expected_score(competition.metric, y, rows, clusters=clusters,
                              n_private=n_private(competition, test_split),
                              averaging_gain=gain, size_shift=shift, seed=setup.recipe.seed)
    return Assessment(reference=kind, calibration=calibration, candidates=candidates, z=z,
                      asked=setup.recipe.calibration, expected=expected)


__all__ = ["Assessment", "Reference", "size_shift", "assess", "candidates_for", "n_private", "reference_rows"]
