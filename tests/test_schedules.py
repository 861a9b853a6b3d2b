"""Tests for kit.models.schedules: pure schedules fed back over 25 epochs, registry errors, callbacks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from kit.core.errors import UnknownNameError
from kit.models import schedules
from kit.models.schedules import PLATEAU, Plateau, check_schedule, lr_callbacks, schedule_registry

LR0 = 1e-3
BUILTINS = ("constant", "exponential", "plateau", "step", "warmup")


def feed_back(fn: Callable[[int, float], float], epochs: int = 25, lr: float = LR0) -> list[float]:
    """The rate each epoch runs at, as Keras' LearningRateScheduler produces it."""
    rates = []
    for epoch in range(epochs):
        lr = fn(epoch, lr)
        rates.append(lr)
    return rates


def test_constant_keeps_the_rate() -> None:
    assert feed_back(schedules.constant) == [LR0] * 25


def test_step_halves_at_epochs_10_and_20() -> None:
    expected = [LR0] * 10 + [LR0 / 2] * 10 + [LR0 / 4] * 5
    assert feed_back(schedules.step) == pytest.approx(expected, rel=1e-12)
    assert schedules.step(10, 0.3) == 0.15
    assert schedules.step(0, 0.3) == 0.3
    assert schedules.step(11, 0.3) == 0.3


def test_exponential_runs_epoch_e_at_lr0_times_095_to_the_e() -> None:
    expected = [LR0 * 0.95**epoch for epoch in range(25)]
    assert feed_back(schedules.exponential) == pytest.approx(expected, rel=1e-12)


def test_warmup_rises_linearly_from_a_quarter_then_holds() -> None:
    expected = [LR0 / 4, LR0 / 2, 3 * LR0 / 4] + [LR0] * 22
    assert feed_back(schedules.warmup) == pytest.approx(expected, rel=1e-12)


def test_registry_holds_builtins_then_extra() -> None:
    def cosine(epoch: int, lr: float) -> float:
        return lr

    registry = schedule_registry({"cosine": cosine})
    assert registry.names() == ("constant", "cosine", "exponential", "plateau", "step", "warmup")
    assert registry.get("plateau") is PLATEAU
    assert registry.get("step") is schedules.step
    assert schedule_registry().names() == BUILTINS


def test_plateau_marker_documents_the_kit_defaults() -> None:
    assert Plateau(monitor="val_loss", factor=0.5, min_lr=1e-6) == PLATEAU
    assert [Plateau.patience_for(p) for p in (1, 2, 3, 5, 10)] == [1, 1, 1, 2, 5]


def test_extra_clashing_with_builtin_names_it_and_the_fix() -> None:
    with pytest.raises(ValueError) as error:
        schedule_registry({"step": schedules.constant})
    assert str(error.value) == (
        "the competition's schedules name 'step', which clashes with the built-in schedule "
        "'step'; rename it in the competition's `schedules` (built-in schedules: constant, "
        "exponential, plateau, step, warmup)"
    )


def test_extra_must_be_callable() -> None:
    with pytest.raises(TypeError) as error:
        schedule_registry({"cosine": "cos"})  # type: ignore[dict-item]
    assert str(error.value) == (
        "the competition's schedules must map names to functions (epoch, lr) -> lr; "
        "received 'cosine': str"
    )


def test_unknown_name_lists_close_matches_and_all_schedules() -> None:
    with pytest.raises(UnknownNameError) as error:
        check_schedule("stepp")
    assert str(error.value) == (
        "unknown schedule 'stepp'. Did you mean: step? Known schedules: constant, exponential, "
        "plateau, step, warmup"
    )
    with pytest.raises(UnknownNameError, match="^unknown schedule 'stepp'"):
        lr_callbacks("stepp", patience=5)


def test_check_schedule_does_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from kit.models.schedules import check_schedule\n"
        "check_schedule('plateau')\n"
        "check_schedule('mine', extra={'mine': lambda epoch, lr: lr})\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("patience", "expected"), [(1, 1), (3, 1), (5, 2), (10, 5)])
def test_plateau_callback_has_the_documented_settings(patience: int, expected: int) -> None:
    from kit.core.tf_runtime import keras

    (callback,) = lr_callbacks("plateau", patience=patience)
    assert isinstance(callback, keras().callbacks.ReduceLROnPlateau)
    assert (callback.monitor, callback.factor, callback.patience, callback.min_lr) == (
        "val_loss", 0.5, expected, 1e-6
    )


@pytest.mark.parametrize("name", ["constant", "step", "exponential", "warmup"])
def test_function_schedules_become_a_learning_rate_scheduler(name: str) -> None:
    from kit.core.tf_runtime import keras

    (callback,) = lr_callbacks(name, patience=5)
    assert isinstance(callback, keras().callbacks.LearningRateScheduler)
    assert callback.schedule is getattr(schedules, name)


def test_competition_schedule_is_reachable_by_name() -> None:
    def cosine(epoch: int, lr: float) -> float:
        return lr * 0.5

    check_schedule("cosine", extra={"cosine": cosine})
    (callback,) = lr_callbacks("cosine", patience=5, extra={"cosine": cosine})
    assert callback.schedule is cosine


@pytest.mark.parametrize("patience", [0, -1, 1.5, True, "5", None])
def test_patience_must_be_a_positive_integer(patience: object) -> None:
    with pytest.raises(ValueError) as error:
        lr_callbacks("plateau", patience=patience)  # type: ignore[arg-type]
    assert str(error.value) == (
        "patience must be a positive integer (epochs without val_loss improvement); "
        f"received patience={patience!r}. Pass the recipe's patience, e.g. patience=5."
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [("exponential", [LR0, LR0 * 0.95, LR0 * 0.95**2]), ("warmup", [LR0 / 4, LR0 / 2, LR0 * 0.75])],
)
def test_scheduler_changes_the_optimizer_rate_during_fit(name: str, expected: list[float]) -> None:
    from kit.core.tf_runtime import keras

    k = keras()
    k.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    inputs = k.Input(shape=(4,))
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(inputs))
    model.compile(optimizer=k.optimizers.SGD(learning_rate=LR0), loss="categorical_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0,
                        callbacks=lr_callbacks(name, patience=5))
    # The optimizer stores float32; the rates match up to that rounding.
    assert history.history["learning_rate"] == pytest.approx(expected, rel=1e-6)
    rate = float(k.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert rate == pytest.approx(expected[-1], rel=1e-6)
