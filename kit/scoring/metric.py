"""A competition's metric by name: how a prediction is scored and which way is better.

Every metric scores `(y_true, probs)`: class indexes (n,) and an (n, k) probability matrix (a
label submission is its one-hot matrix). Label metrics score the arg-max class; `log_loss` and
`roc_auc` score the probabilities. The names are declared with the competition
(`kit.competition.declaration.METRICS`); a test checks every name has a metric here.

Example:
    >>> get_metric("f1_micro").score(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    0.5
    >>> get_metric("log_loss").better(0.3, 0.5), get_metric("accuracy").better(0.3, 0.5)
    (True, False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kit.core.errors import InputError
from kit.core.registry import Registry
from kit.scoring.label_metrics import accuracy, f1_macro, f1_micro, roc_auc
from kit.scoring.metrics import log_loss

ScoreFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One metric: its name, its direction and whether it reads probabilities or labels."""

    name: str
    higher_is_better: bool
    probabilities: bool  # scores probabilities (log_loss, roc_auc), else the arg-max class
    fn: ScoreFn

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"

    def score(self, y_true: np.ndarray, probs: np.ndarray) -> float:
        return float(self.fn(np.asarray(y_true), np.asarray(probs, dtype=np.float64)))

    def better(self, a: float, b: float) -> bool:
        """Whether score `a` is strictly better than `b`."""
        return a > b if self.higher_is_better else a < b

    def rank_key(self, value: float) -> float:
        """Sorts best first."""
        return -value if self.higher_is_better else value


def _labels(fn: Callable[[np.ndarray, np.ndarray], float]) -> ScoreFn:
    return lambda y, probs: fn(y, probs.argmax(axis=1))


def _auc(y: np.ndarray, probs: np.ndarray) -> float:
    if probs.ndim != 2 or probs.shape[1] != 2:
        raise InputError(f"roc_auc scores two classes; received probabilities of shape "
                         f"{probs.shape}")
    totals = probs.sum(axis=1)
    return roc_auc(y, np.divide(probs[:, 1], totals, out=np.full(len(y), 0.5),
                                where=totals > 0))


def metric_registry() -> Registry[Metric]:
    registry: Registry[Metric] = Registry("metric")
    for metric in (
        Metric(name="log_loss", higher_is_better=False, probabilities=True, fn=log_loss),
        Metric(name="accuracy", higher_is_better=True, probabilities=False,
               fn=_labels(accuracy)),
        Metric(name="f1_micro", higher_is_better=True, probabilities=False,
               fn=_labels(f1_micro)),
        Metric(name="f1_macro", higher_is_better=True, probabilities=False,
               fn=_labels(f1_macro)),
        Metric(name="roc_auc", higher_is_better=True, probabilities=True, fn=_auc),
    ):
        registry.register(metric.name, metric)
    return registry


def get_metric(name: str) -> Metric:
    return metric_registry().get(name)


__all__ = ["Metric", "get_metric", "metric_registry"]
