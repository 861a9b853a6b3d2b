"""Learning-rate schedules by name: the kit's built-ins plus a competition's own `schedules`.

A recipe names its schedule (`Recipe.schedule`); training turns the name into Keras callbacks
with `lr_callbacks`. A schedule is a function `(epoch, lr) -> lr` as
`keras.callbacks.LearningRateScheduler` takes it: at the start of every epoch (0-based) Keras
passes the optimizer's current learning rate and sets the one returned. The contract every
built-in relies on: at epoch 0 `lr` is the optimizer's configured rate, and afterwards it is
what the schedule returned the epoch before. So the built-ins are written as per-epoch factors
and are exact when fed back (tests feed 25 epochs).

Built-ins:
    plateau: the marker `PLATEAU`, not a function of the epoch: Keras' ReduceLROnPlateau on
        val_loss, factor 0.5, patience max(1, patience // 2), min_lr 1e-6 (the kit's default).
    constant: the configured rate throughout.
    step: halve at epochs 10, 20, 30, ...
    exponential: multiply by 0.95 every epoch after the first (epoch e runs at lr0 * 0.95**e).
    warmup: linear warm-up: epochs 0, 1, 2 run at lr0/4, lr0/2, 3*lr0/4, then lr0 from epoch 3.

TensorFlow is imported only by `lr_callbacks`; the registry and `check_schedule` never need it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kit.core.errors import InputError
from kit.core.registry import Registry, with_declared

STEP_EVERY = 10
STEP_FACTOR = 0.5
EXPONENTIAL_FACTOR = 0.95
WARMUP_EPOCHS = 3
WARMUP_START = 0.25


@dataclass(frozen=True)
class Plateau:
    """Marker for "reduce the learning rate when val_loss stops improving".

    Not a function of the epoch (it depends on the validation loss), so `lr_callbacks` builds
    `keras.callbacks.ReduceLROnPlateau` from these settings instead of a LearningRateScheduler.
    The patience is derived from the recipe's early-stopping patience by `patience_for`.
    """

    monitor: str = "val_loss"
    factor: float = 0.5
    min_lr: float = 1e-6

    @staticmethod
    def patience_for(patience: int) -> int:
        """Epochs without improvement before a reduction: half early stopping's, at least 1."""
        return max(1, patience // 2)


PLATEAU = Plateau()

ScheduleFn = Callable[[int, float], float]
Schedule = ScheduleFn | Plateau


def constant(epoch: int, lr: float) -> float:
    """The learning rate unchanged."""
    return lr


def step(epoch: int, lr: float) -> float:
    """Halve the rate at epochs `STEP_EVERY`, `2 * STEP_EVERY`, ...; unchanged otherwise."""
    if epoch > 0 and epoch % STEP_EVERY == 0:
        return lr * STEP_FACTOR
    return lr


def exponential(epoch: int, lr: float) -> float:
    """Multiply the rate by `EXPONENTIAL_FACTOR` every epoch after the first."""
    return lr * EXPONENTIAL_FACTOR if epoch > 0 else lr


def _warmup_fraction(epoch: int) -> float:
    """Fraction of the configured rate at `epoch` (1 before training, i.e. epoch -1)."""
    if epoch < 0 or epoch >= WARMUP_EPOCHS:
        return 1.0
    return WARMUP_START + (1.0 - WARMUP_START) * epoch / WARMUP_EPOCHS


def warmup(epoch: int, lr: float) -> float:
    """Linear warm-up from `WARMUP_START * lr0` to `lr0` over `WARMUP_EPOCHS` epochs.

    The function only sees the current rate, never lr0, so it returns the ratio of this
    epoch's fraction to the previous one's: at epoch 0 `lr` is lr0 (fraction 1) and becomes
    lr0/4; then x2, x1.5, x4/3 back to lr0 at epoch 3, unchanged after. Exact under the module's
    contract (Keras feeds the returned rate back); a run resumed at a later epoch with a fresh
    optimizer would not be, like every `(epoch, lr)` schedule that scales the rate it is given.
    """
    return lr * _warmup_fraction(epoch) / _warmup_fraction(epoch - 1)


_BUILTINS: dict[str, Schedule] = {
    "plateau": PLATEAU,
    "constant": constant,
    "step": step,
    "exponential": exponential,
    "warmup": warmup,
}


def schedule_registry(
    extra: Mapping[str, Callable[[int, float], float]] | None = None,
) -> Registry[Schedule]:
    """The built-in schedules, then a competition's own `schedules` (`extra`).

    Raises:
        ValueError: If a name in `extra` is empty, not a string, or clashes with a built-in.
        TypeError: If a value in `extra` is not callable.
    """
    registry: Registry[Schedule] = Registry("schedule")
    for name, item in _BUILTINS.items():
        registry.register(name, item)
    return with_declared(registry, extra, field="schedules", noun="schedule",
                         signature="(epoch, lr) -> lr")


def check_schedule(
    name: str, *, extra: Mapping[str, Callable[[int, float], float]] | None = None
) -> None:
    """Fail early (before any data work, without importing TensorFlow) if `name` is unknown.

    Raises:
        kit.core.errors.UnknownNameError: If `name` names no built-in or competition schedule.
        ValueError, TypeError: If `extra` is malformed (see `schedule_registry`).
    """
    schedule_registry(extra).get(name)


def _check_patience(patience: object) -> int:
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise InputError(
            "patience must be a positive integer (epochs without val_loss improvement); "
            f"received patience={patience!r}. Pass the recipe's patience, e.g. patience=5."
        )
    return patience


def lr_callbacks(
    name: str,
    *,
    patience: int,
    extra: Mapping[str, Callable[[int, float], float]] | None = None,
) -> list[Any]:
    """The Keras callbacks that apply schedule `name` during `model.fit`.

    Returns `[ReduceLROnPlateau(...)]` for `plateau` (settings from `PLATEAU`, patience
    `max(1, patience // 2)`), else `[LearningRateScheduler(fn)]`.

    Raises:
        ValueError: If `patience` is not a positive integer.
        kit.core.errors.UnknownNameError: If `name` names no built-in or competition schedule.
    """
    patience = _check_patience(patience)
    item = schedule_registry(extra).get(name)
    from kit.core.tf_runtime import keras

    k = keras()
    if isinstance(item, Plateau):
        return [
            k.callbacks.ReduceLROnPlateau(
                monitor=item.monitor,
                factor=item.factor,
                patience=item.patience_for(patience),
                min_lr=item.min_lr,
            )
        ]
    return [k.callbacks.LearningRateScheduler(item)]
