"""Tests for kit.models.losses: built-ins against numpy references, registry errors, Keras training."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from kit.core.errors import UnknownNameError
from kit.models import losses
from kit.models.losses import check_loss, loss_registry, resolve_loss

EPS = 1e-7
BUILTINS = ("categorical_crossentropy", "focal", "label_smoothing")


def reference_crossentropy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1 - EPS)
    return -(y * np.log(p)).sum(axis=-1)


def reference_label_smoothing(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    smooth = y * (1 - 0.1) + 0.1 / y.shape[-1]
    return reference_crossentropy(smooth, p)


def reference_focal(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1 - EPS)
    return -(y * (1 - p) ** 2 * np.log(p)).sum(axis=-1)


REFERENCES = {
    "categorical_crossentropy": reference_crossentropy,
    "label_smoothing": reference_label_smoothing,
    "focal": reference_focal,
}


def random_batch(n: int = 6, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k))
    p = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    y = np.eye(k)[rng.integers(0, k, n)]
    return y.astype("float32"), p.astype("float32")


def as_numpy(value: object) -> np.ndarray:
    return np.asarray(value, dtype="float64")


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_matches_numpy_reference_per_sample(name: str) -> None:
    y, p = random_batch()
    got = as_numpy(resolve_loss(name)(y, p))
    assert got.shape == (6,)
    np.testing.assert_allclose(got, REFERENCES[name](y.astype("float64"), p), rtol=1e-5)


def test_builtins_on_hand_computed_numbers() -> None:
    y = np.array([[0.0, 1.0, 0.0]], dtype="float32")
    p = np.array([[0.2, 0.7, 0.1]], dtype="float32")
    ce = -np.log(0.7)
    assert as_numpy(losses.categorical_crossentropy(y, p)) == pytest.approx([ce], rel=1e-6)
    # Smoothed target: 0.1/3 on the others, 0.9 + 0.1/3 on the true class.
    smoothed = -(0.1 / 3 * np.log(0.2) + (0.9 + 0.1 / 3) * np.log(0.7) + 0.1 / 3 * np.log(0.1))
    assert as_numpy(losses.label_smoothing(y, p)) == pytest.approx([smoothed], rel=1e-6)
    assert as_numpy(losses.focal(y, p)) == pytest.approx([0.3**2 * ce], rel=1e-6)


def test_focal_is_far_below_crossentropy_on_confident_correct_predictions() -> None:
    y = np.eye(3, dtype="float32")
    p = np.full((3, 3), 0.025, dtype="float32")
    np.fill_diagonal(p, 0.95)
    ce = as_numpy(losses.categorical_crossentropy(y, p))
    fl = as_numpy(losses.focal(y, p))
    assert np.all(fl < ce)
    np.testing.assert_allclose(fl / ce, (1 - 0.95) ** 2, rtol=1e-5)


def test_focal_is_finite_on_zero_probabilities() -> None:
    y = np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32")
    p = np.array([[0.0, 1.0], [0.0, 1.0]], dtype="float32")
    got = as_numpy(losses.focal(y, p))
    assert np.all(np.isfinite(got))
    assert got[0] == pytest.approx(-np.log(EPS), rel=1e-3)


def test_registry_holds_builtins_then_extra() -> None:
    def brier(y_true: object, y_pred: object) -> object:
        return y_pred

    registry = loss_registry({"brier": brier})
    assert registry.names() == ("brier", *BUILTINS)
    assert registry.get("focal") is losses.focal
    assert resolve_loss("brier", extra={"brier": brier}) is brier
    assert loss_registry().names() == BUILTINS
    assert loss_registry(None).names() == loss_registry({}).names()


def test_extra_clashing_with_builtin_names_it_and_the_fix() -> None:
    with pytest.raises(ValueError) as error:
        loss_registry({"focal": lambda y_true, y_pred: y_pred})
    assert str(error.value) == (
        "the competition's losses name 'focal', which clashes with the built-in loss 'focal'; "
        "rename it in the competition's `losses` (built-in losses: categorical_crossentropy, "
        "focal, label_smoothing)"
    )


def test_extra_must_be_callable() -> None:
    with pytest.raises(TypeError) as error:
        loss_registry({"brier": 0.25})  # type: ignore[dict-item]
    assert str(error.value) == (
        "the competition's losses must map names to functions (y_true, y_pred) -> per-sample "
        "loss; received 'brier': float"
    )


def test_unknown_name_lists_close_matches_and_all_losses() -> None:
    with pytest.raises(UnknownNameError) as error:
        resolve_loss("focall")
    assert str(error.value) == (
        "unknown loss function 'focall'. Did you mean: focal? Known loss functions: "
        "categorical_crossentropy, focal, label_smoothing"
    )
    with pytest.raises(KeyError, match="Known loss functions: brier, categorical"):
        check_loss("bryer", extra={"brier": losses.focal})
    check_loss("brier", extra={"brier": losses.focal})
    check_loss("label_smoothing")


def test_check_loss_does_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from kit.models.losses import check_loss, loss_registry\n"
        "check_loss('focal')\n"
        "loss_registry({'mine': lambda y_true, y_pred: y_pred})\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def tiny_model(k: Any, n_features: int, heads: dict[str, int]) -> Any:
    """One softmax Dense output per entry of `heads` (name -> classes) over `n_features` inputs."""
    inputs = k.Input(shape=(n_features,))
    outputs = {name: k.layers.Dense(n, activation="softmax", name=name)(inputs)
               for name, n in heads.items()}
    return k.Model(inputs, outputs)


def test_extra_loss_trains_a_keras_model() -> None:
    from kit.core.tf_runtime import keras

    k = keras()
    k.utils.set_random_seed(0)

    def brier(y_true: object, y_pred: object) -> object:
        return k.ops.sum(k.ops.square(y_true - y_pred), axis=-1)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    inputs = k.Input(shape=(4,))
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(inputs))
    model.compile(optimizer="sgd", loss=resolve_loss("brier", extra={"brier": brier}))
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    p = model.predict(x, verbose=0)
    expected = ((y - p) ** 2).sum(axis=-1).mean()
    assert model.evaluate(x, y, batch_size=16, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_builtins_work_per_output_with_sample_weights() -> None:
    from kit.core.tf_runtime import keras

    k = keras()
    k.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 4)).astype("float32")
    ys = {"a": np.eye(3, dtype="float32")[rng.integers(0, 3, 16)],
          "b": np.eye(2, dtype="float32")[rng.integers(0, 2, 16)]}
    weights = rng.uniform(0.5, 2.0, 16).astype("float32")
    model = tiny_model(k, 4, {"a": 3, "b": 2})
    model.compile(optimizer="sgd",
                  loss={"a": resolve_loss("focal"), "b": resolve_loss("label_smoothing")})
    result = model.evaluate(x, ys, sample_weight=weights, batch_size=16, verbose=0,
                            return_dict=True)
    p = model.predict(x, verbose=0)
    # Keras weights each per-sample loss, then averages over the batch.
    expected_a = (reference_focal(ys["a"], p["a"]) * weights).mean()
    expected_b = (reference_label_smoothing(ys["b"], p["b"]) * weights).mean()
    assert result["a_loss"] == pytest.approx(expected_a, rel=1e-5)
    assert result["b_loss"] == pytest.approx(expected_b, rel=1e-5)
    assert result["loss"] == pytest.approx(expected_a + expected_b, rel=1e-5)
