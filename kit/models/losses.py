"""Training losses by name: the kit's built-ins plus a competition's own `losses`.

A recipe names its loss (`Recipe.loss`); training resolves it with `resolve_loss`. Every loss
is a plain module-level function `(y_true, y_pred) -> per-sample loss` with `y_true` one-hot
of shape `(batch, n_classes)`, `y_pred` softmax probabilities of the same shape and the result
of shape `(batch,)`. Keras then applies sample weights and averages over the batch, and a
multi-output model can name the same function for each output (`loss={"class": fn, ...}`).

Built-ins:
    categorical_crossentropy: the usual cross-entropy (the metric Kaggle scores, log loss).
    label_smoothing: cross-entropy against targets smoothed by 0.1 (0.9 + 0.1 / K on the
        true class, 0.1 / K elsewhere).
    focal: categorical focal loss, gamma 2: cross-entropy weighted per sample by
        `(1 - p_true) ** 2`, so confident correct predictions contribute little.

No `clipped_crossentropy`: clipping predictions to [0.02, 0.98] inside the loss zeroes the
gradient exactly where the model is confidently wrong (p_true < 0.02), so the worst mistakes
stop being corrected; renormalising after the clip does not bring that gradient back. Clipping
belongs to the submission, where it bounds the leaderboard's log loss; train on the plain
cross-entropy (or `label_smoothing`, which keeps predictions off 0 and 1 without dead gradients).

TensorFlow is imported only when a loss is called (inside `model.compile`/`fit`), so building
the registry and `check_loss` stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kit.core.registry import Registry, with_declared

LABEL_SMOOTHING = 0.1
FOCAL_GAMMA = 2.0

Loss = Callable[[Any, Any], Any]


def categorical_crossentropy(y_true: Any, y_pred: Any) -> Any:
    """Per-sample categorical cross-entropy of one-hot `y_true` and probabilities `y_pred`."""
    from kit.core.tf_runtime import keras

    return keras().losses.categorical_crossentropy(y_true, y_pred)


def label_smoothing(y_true: Any, y_pred: Any) -> Any:
    """Per-sample categorical cross-entropy against targets smoothed by `LABEL_SMOOTHING`."""
    from kit.core.tf_runtime import keras

    return keras().losses.categorical_crossentropy(
        y_true, y_pred, label_smoothing=LABEL_SMOOTHING
    )


def focal(y_true: Any, y_pred: Any) -> Any:
    """Per-sample categorical focal loss, `-sum(y * (1 - p) ** FOCAL_GAMMA * log p)`.

    `p` is `y_pred` renormalised to sum to 1 and clipped to `[eps, 1 - eps]` (eps is
    `keras.config.epsilon()`, 1e-7), as Keras' own cross-entropy does, so `log p` is finite.
    No alpha weight: with one-hot targets a single alpha only rescales the loss (and so the
    learning rate).
    """
    from kit.core.tf_runtime import keras

    k = keras()
    ops = k.ops
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    eps = k.config.epsilon()
    p = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
    p = ops.clip(p, eps, 1.0 - eps)
    return -ops.sum(y_true * ops.power(1.0 - p, FOCAL_GAMMA) * ops.log(p), axis=-1)


_BUILTINS: dict[str, Loss] = {
    "categorical_crossentropy": categorical_crossentropy,
    "label_smoothing": label_smoothing,
    "focal": focal,
}


def loss_registry(extra: Mapping[str, Callable[..., Any]] | None = None) -> Registry[Loss]:
    """The built-in losses, then a competition's own `losses` (`extra`).

    Raises:
        ValueError: If a name in `extra` is empty, not a string, or clashes with a built-in.
        TypeError: If a value in `extra` is not callable.
    """
    registry: Registry[Loss] = Registry("loss function")
    for name, fn in _BUILTINS.items():
        registry.register(name, fn)
    return with_declared(registry, extra, field="losses", noun="loss",
                         signature="(y_true, y_pred) -> per-sample loss")


def resolve_loss(name: str, *, extra: Mapping[str, Callable[..., Any]] | None = None) -> Loss:
    """The loss function registered as `name`, for `model.compile(loss=...)`.

    Raises:
        kit.core.errors.UnknownNameError: A `KeyError` listing close matches and every known loss.
    """
    return loss_registry(extra).get(name)


def check_loss(name: str, *, extra: Mapping[str, Callable[..., Any]] | None = None) -> None:
    """Fail early (before any data work, without importing TensorFlow) if `name` is unknown.

    Raises:
        kit.core.errors.UnknownNameError: If `name` names no built-in or competition loss.
        ValueError, TypeError: If `extra` is malformed (see `loss_registry`).
    """
    resolve_loss(name, extra=extra)
