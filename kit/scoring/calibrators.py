"""Calibration candidates for log loss, each fitted on one set of rows and applied to another.

- `none`: the probabilities as the models gave them.
- `clip`: the clip of `kit.scoring.calibration.choose_clip` (values kept in [c, 1 - c]).
- `temperature`: one temperature T >= 1 (`kit.scoring.temperature`): it may soften the
  probabilities, never sharpen them. A sharpening fitted on a few hundred out-of-fold rows bets
  that no confident error is coming, and log loss punishes a confident error without bound: on
  the dogs-vs-cats demo T = 0.44 and 0.50 passed the significance rule on ensemble OOF rows and
  took the private log loss from 0.069 to 0.094 and from 0.045 to 0.049; on the state-farm demo
  sharpening of stratified ensemble rows took it from 0.55 to 1.13.

`cross_fit` scores a candidate honestly: each fold's rows are calibrated by the candidate fitted
on the other folds' rows, so the calibrated CV is still out of fold. `choose_calibration` keeps
the candidate whose cross-fitted log loss is lowest among those that beat `none` significantly
(ties: the simpler, in `CANDIDATES` order).

Example:
    >>> fit_calibration("temperature", np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]])).kind
    'temperature'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kit.core.errors import UnknownNameError
from kit.scoring.calibration import DEFAULT_CLIP_GRID, choose_clip, clip_probs
from kit.scoring.clustered import cluster_se
from kit.scoring.metrics import row_log_losses
from kit.scoring.temperature import SOFTENING, fit_temperature, temper

CANDIDATES = ("none", "clip", "temperature")
"""The candidates, simplest first (a tie goes to the earlier one)."""
Z95 = 1.959963984540054  # a gain kept must be this many standard errors above zero


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """One fitted calibration: its kind and its parameter (the clip, or T; 0 for none)."""

    kind: str
    value: float = 0.0

    def apply(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, np.float64)
        if self.kind == "clip":
            return clip_probs(probs, self.value) if self.value > 0 else probs.copy()
        if self.kind == "temperature":
            return temper(probs, self.value)
        return probs.copy()

    def to_dict(self) -> dict[str, str | float]:
        return {"kind": self.kind, "value": self.value}


def fit_calibration(kind: str, y: np.ndarray, probs: np.ndarray) -> Calibration:
    """Candidate `kind` fitted on labels `y` and probabilities `probs`.

    Raises:
        UnknownNameError: `kind` is not one of `CANDIDATES`.
    """
    if kind not in CANDIDATES:
        raise UnknownNameError(f"unknown calibration {kind!r}; known: {', '.join(CANDIDATES)}")
    if kind == "clip":
        return Calibration(kind=kind, value=float(choose_clip(y, probs,
                                                              grid=DEFAULT_CLIP_GRID).clip))
    if kind == "temperature":
        return Calibration(kind=kind, value=fit_temperature(y, probs, bounds=SOFTENING))
    return Calibration(kind="none")


def cross_fit(kind: str, y: np.ndarray, probs: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """`probs` calibrated fold by fold, each fold by `kind` fitted on the other folds."""
    y, probs, folds = np.asarray(y), np.asarray(probs, np.float64), np.asarray(folds)
    out = np.empty_like(probs)
    for fold in np.unique(folds):
        at = folds == fold
        out[at] = fit_calibration(kind, y[~at], probs[~at]).apply(probs[at])
    return out


@dataclass(frozen=True, kw_only=True)
class CalibrationChoice:
    """The candidate kept, fitted on all rows; every candidate's cross-fitted log loss and the
    z-score of its gain over `none` (the mean gain per row over its cluster standard error);
    and the kept candidate's cross-fitted probabilities (the honest calibrated OOF rows)."""

    chosen: Calibration
    losses: dict[str, float]
    z: dict[str, float]
    calibrated: np.ndarray


def _z(gain: np.ndarray, clusters: np.ndarray | None) -> float:
    se = cluster_se(gain, clusters)
    mean = float(gain.mean())
    if se > 0:
        return mean / se
    return 0.0 if mean == 0 else float(np.sign(mean) * np.inf)


def choose_calibration(y: np.ndarray, probs: np.ndarray, folds: np.ndarray, *,
                       candidates: tuple[str, ...] = CANDIDATES,
                       clusters: np.ndarray | None = None, min_z: float = Z95,
                       forced: str | None = None) -> CalibrationChoice:
    """The candidate with the lowest cross-fitted log loss among those whose gain over `none`
    is significant (z >= `min_z`, rows resampled by `clusters`); `none` when none is. A gain
    that one group or one lucky fold carries is not one the private set will see. `forced`
    keeps that candidate whatever its gain."""
    kinds = tuple(dict.fromkeys(("none", *candidates, *((forced,) if forced else ()))))
    crossed = {kind: cross_fit(kind, y, probs, folds) for kind in kinds}
    rows = {kind: row_log_losses(y, p) for kind, p in crossed.items()}
    losses = {kind: float(r.mean()) for kind, r in rows.items()}
    z = {kind: _z(rows["none"] - r, clusters) for kind, r in rows.items() if kind != "none"}
    eligible = [k for k in kinds if k == "none" or z[k] >= min_z]
    best = forced or min(eligible, key=lambda k: (round(losses[k], 12), kinds.index(k)))
    return CalibrationChoice(chosen=fit_calibration(best, y, probs), losses=losses, z=z,
                             calibrated=crossed[best])


__all__ = ["CANDIDATES", "Calibration", "CalibrationChoice", "choose_calibration", "cross_fit",
           "fit_calibration"]
