"""Heads trained on cached conv features.

A head is a builder `(feature_shape, n_classes, config) -> keras.Model`, registered by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.registry import Registry

POOLINGS = ("flatten", "avg", "max")


@dataclass(frozen=True, kw_only=True)
class HeadConfig:
    """Tunables of a head: pooling of the feature map, width of the hidden layer, dropout rate."""

    pooling: str = "flatten"
    hidden: int = 256
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"pooling must be one of {', '.join(POOLINGS)}; received pooling={self.pooling!r}"
            )
        if not isinstance(self.hidden, int) or self.hidden < 1:
            raise ValueError(f"hidden must be a positive integer; received hidden={self.hidden!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(
                f"dropout must be a float in [0, 1); received dropout={self.dropout!r}"
            )


HeadBuilder = Callable[[tuple[int, ...], int, HeadConfig], Any]


def build_dense_head(feature_shape: tuple[int, ...], n_classes: int, config: HeadConfig) -> Any:
    """Pooling (flatten, global average or global max) -> Dense -> BatchNorm -> Dropout -> softmax."""
    from kit.tf_runtime import keras

    k = keras()
    inputs = k.Input(shape=tuple(feature_shape), name="features")
    x = inputs
    if len(feature_shape) == 3:
        x = {
            "flatten": k.layers.Flatten(name="flatten"),
            "avg": k.layers.GlobalAveragePooling2D(name="avg_pool"),
            "max": k.layers.GlobalMaxPooling2D(name="max_pool"),
        }[config.pooling](x)
    elif len(feature_shape) != 1:
        raise ValueError(
            f"dense head takes (h, w, c) or (c,) features; received shape {feature_shape}"
        )
    x = k.layers.Dense(config.hidden, use_bias=False, name="dense")(x)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.ReLU(name="relu")(x)
    x = k.layers.Dropout(config.dropout, name="dropout")(x)
    outputs = k.layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return k.Model(inputs, outputs, name="dense_head")


def head_registry() -> Registry[HeadBuilder]:
    """The registry of heads trainable on cached features."""
    registry: Registry[HeadBuilder] = Registry("head")
    registry.register("dense", build_dense_head)
    return registry


def load_head(weights_file: Path, *, head: str, feature_shape: tuple[int, ...], n_classes: int,
              config: HeadConfig) -> Any:
    """Rebuild a trained head from the registry and load its `model.weights.h5`.

    Raises:
        FileNotFoundError: If `weights_file` does not exist.
        ValueError: If the weights do not fit the rebuilt head (another recipe or shape).
    """
    weights_file = Path(weights_file)
    if not weights_file.is_file():
        raise FileNotFoundError(
            f"head weights {weights_file} do not exist; re-run the same `python -m kit run` "
            "command to train the fold again"
        )
    model = head_registry().get(head)(tuple(feature_shape), n_classes, config)
    try:
        model.load_weights(str(weights_file))
    except (ValueError, OSError, KeyError) as error:
        raise ValueError(
            f"cannot load head weights {weights_file} into a {head} head over features "
            f"{tuple(feature_shape)} with {config}: {error}"
        ) from error
    return model
