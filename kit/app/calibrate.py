"""Stage of a run: from out-of-fold and test predictions to the probabilities submitted.

The class prior of the training labels stands in for test rows without features. The
calibration applied to the test predictions is the one `kit.app.honesty` chose on cross-fitted
out-of-fold rows (log loss only; any other metric scores the predicted class or the ranking,
which a calibration cannot improve, so the probabilities are left as they are). The clip that
`kit.scoring.calibration.choose_clip` would choose on the OOF rows is kept for the record
(`clip_choice`), as earlier versions applied it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.cv.task import CVResult
from kit.scoring.calibration import DEFAULT_CLIP_GRID, ClipChoice, choose_clip
from kit.scoring.calibrators import Calibration
from kit.scoring.metrics import log_loss, prior_probs


@dataclass(frozen=True, kw_only=True)
class Calibrated:
    """The test probabilities to submit, the calibration applied to them, the clip choice on
    the OOF rows, and the class prior's OOF log loss."""

    test_probs: np.ndarray
    calibration: Calibration
    clip: ClipChoice
    prior_log_loss: float

    @property
    def applied_clip(self) -> float:
        return self.calibration.value if self.calibration.kind == "clip" else 0.0


def calibrate(labels: np.ndarray, cv: CVResult, test_ok: np.ndarray, *, n_classes: int,
              calibration: Calibration, metric: str = "log_loss") -> Calibrated:
    """`calibration` applied to the test predictions; test rows without features get the
    class prior."""
    prior = prior_probs(labels, n_classes)
    prior_oof = log_loss(labels, np.tile(prior, (len(labels), 1)))
    clip = choose_clip(labels, cv.oof, grid=DEFAULT_CLIP_GRID if metric == "log_loss" else (0.0,))
    test_probs = np.tile(prior, (len(test_ok), 1))
    if test_ok.any():
        test_probs[test_ok] = cv.test
    test_probs = with_smoothed_prior(test_probs, labels, n_classes)
    return Calibrated(test_probs=calibration.apply(test_probs), calibration=calibration,
                      clip=clip, prior_log_loss=prior_oof)


def with_smoothed_prior(probs: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Classes without training labels (`--allow-missing-classes`) get their smoothed
    (add-one) prior in every row; the other columns share the rest in their proportions."""
    counts = np.bincount(labels, minlength=n_classes)
    missing = counts == 0
    if not missing.any():
        return probs
    smoothed = (counts + 1) / (counts.sum() + n_classes)
    out = np.array(probs, dtype=np.float64)
    kept = out[:, ~missing]
    totals = kept.sum(axis=1, keepdims=True)
    share = np.divide(kept, totals, out=np.full_like(kept, 1 / kept.shape[1]),
                      where=totals > 0)
    out[:, ~missing] = share * (1 - smoothed[missing].sum())
    out[:, missing] = smoothed[missing]
    return out


__all__ = ["Calibrated", "calibrate"]
