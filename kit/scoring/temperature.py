"""Temperature scaling: one scalar T, p -> softmax(log p / T), fitted by log loss.

T > 1 softens over-confident probabilities, T < 1 sharpens timid ones; the arg-max class never
changes, so only probability metrics (log loss) can move.

Example:
    >>> round(float(temper(np.array([[0.8, 0.2]]), 2.0)[0, 0]), 4)
    0.6667
"""

from __future__ import annotations

import numpy as np

from kit.scoring.metrics import row_log_losses

T_BOUNDS = (0.05, 20.0)
SOFTENING = (1.0, T_BOUNDS[1])
"""Temperatures that only soften (T >= 1): what the calibration candidate fits (see
`kit.scoring.calibrators`)."""
EPS = 1e-15


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): rows are rescaled to sum 1 first."""
    p = np.clip(np.asarray(probs, np.float64), EPS, None)
    logits = np.log(p / p.sum(axis=1, keepdims=True)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(y: np.ndarray, probs: np.ndarray,
                    bounds: tuple[float, float] = T_BOUNDS) -> float:
    """The T in `bounds` minimising the log loss of `temper(probs, T)` on labels `y`."""
    from scipy.optimize import minimize_scalar

    def loss(log_t: float) -> float:
        return float(row_log_losses(y, temper(probs, float(np.exp(log_t)))).mean())

    low, high = np.log(bounds[0]), np.log(bounds[1])
    found = minimize_scalar(loss, bounds=(low, high), method="bounded",
                            options={"xatol": 1e-4})
    return float(np.exp(found.x))


__all__ = ["SOFTENING", "T_BOUNDS", "fit_temperature", "temper"]
