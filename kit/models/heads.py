"""Heads trained on cached conv features.

A head is a builder `(feature_shape, n_classes, config) -> keras.Model`, registered by name with
what it needs (`HeadSpec`): the metadata input of `metadata-merge`, the box output of `bbox`,
the larger input size of `fcn`. Every model's class output is the layer named `probs`; a box
output, where there is one, is named `box` (x, y, width, height in pixels of the input size).

| head | inputs | outputs | from the fisheries lessons |
|---|---|---|---|
| dense | feature map | probs | pooling -> Dense -> BN -> ReLU -> Dropout -> softmax |
| metadata-merge | feature map, metadata | probs | the image size one-hot joins the pooled features |
| bbox | feature map | probs, box | one model, two outputs, box loss masked where no box |
| fcn | larger non-square feature map | probs | conv layers -> 1x1 conv per class (the CAM) -> GAP |
| crop | (a bbox head, then a dense head on crops) | probs | see kit.cv.crop |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kit.competition.options import POOLINGS
from kit.core.errors import InputError, MissingFileError
from kit.core.registry import Registry


@dataclass(frozen=True, kw_only=True)
class HeadConfig:
    """Tunables of a head: pooling of the feature map, width of the hidden layer, dropout rate."""

    pooling: str = "flatten"
    hidden: int = 256
    dropout: float = 0.5
    meta_dim: int = 0  # width of the metadata input (metadata-merge)
    input_size: tuple[int, int] | None = None  # (width, height) the bbox head's box is in

    def __post_init__(self) -> None:
        if not isinstance(self.meta_dim, int) or self.meta_dim < 0:
            raise InputError(f"meta_dim must be an integer >= 0; received {self.meta_dim!r}")
        if self.pooling not in POOLINGS:
            raise InputError(
                f"pooling must be one of {', '.join(POOLINGS)}; received pooling={self.pooling!r}"
            )
        if not isinstance(self.hidden, int) or self.hidden < 1:
            raise InputError(f"hidden must be a positive integer; received hidden={self.hidden!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise InputError(
                f"dropout must be a float in [0, 1); received dropout={self.dropout!r}"
            )


HeadBuilder = Callable[[tuple[int, ...], int, HeadConfig], Any]


@dataclass(frozen=True, kw_only=True)
class HeadSpec:
    """A registered head: its builder and what the pipeline must feed it.

    Args:
        name: registry name (`--head NAME`).
        build: `(feature_shape, n_classes, config) -> keras.Model`; None for a head the pipeline
            composes from others (crop).
        description: one line for `--help` and the comparison table.
        meta: takes a second input `meta` (the encoded image-table columns).
        boxes: has a second output `box` and needs bounding-box annotations.
        input_size: `recipe` (the recipe's input size), `fcn` (the recipe's `fcn_input_size`) or
            `box` (the recipe's `box_input_size`, else its input size).
        spatial: needs (h, w, c) feature maps, not pooled vectors.
    """

    name: str
    build: HeadBuilder | None
    description: str
    meta: bool = False
    boxes: bool = False
    input_size: str = "recipe"
    spatial: bool = False

    def __call__(self, feature_shape: tuple[int, ...], n_classes: int, config: HeadConfig) -> Any:
        if self.build is None:
            raise InputError(f"the {self.name} head is composed by the pipeline, not built alone")
        return self.build(feature_shape, n_classes, config)


def _k():
    from kit.core.tf_runtime import keras

    return keras()


def _pool(k: Any, x: Any, feature_shape: tuple[int, ...], pooling: str, head: str) -> Any:
    if len(feature_shape) == 3:
        return {
            "flatten": k.layers.Flatten(name="flatten"),
            "avg": k.layers.GlobalAveragePooling2D(name="avg_pool"),
            "max": k.layers.GlobalMaxPooling2D(name="max_pool"),
        }[pooling](x)
    if len(feature_shape) != 1:
        raise InputError(
            f"{head} head takes (h, w, c) or (c,) features; received shape {feature_shape}"
        )
    return x


def _dense_block(k: Any, x: Any, config: HeadConfig) -> Any:
    x = k.layers.Dense(config.hidden, use_bias=False, name="dense")(x)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.ReLU(name="relu")(x)
    return k.layers.Dropout(config.dropout, name="dropout")(x)


def build_dense_head(feature_shape: tuple[int, ...], n_classes: int, config: HeadConfig) -> Any:
    """Pooling (flatten, global average or global max) -> Dense -> BatchNorm -> Dropout -> softmax."""
    k = _k()
    inputs = k.Input(shape=tuple(feature_shape), name="features")
    x = _dense_block(k, _pool(k, inputs, feature_shape, config.pooling, "dense"), config)
    outputs = k.layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return k.Model(inputs, outputs, name="dense_head")


def build_metadata_merge_head(feature_shape: tuple[int, ...], n_classes: int,
                              config: HeadConfig) -> Any:
    """Pooled conv features concatenated with the metadata vector, then the dense layers.

    As in the fast.ai fisheries lesson: the image size (one-hot) joins the image features
    before the dense layers, so the head can use the size leak, and its value can be measured.
    """
    if config.meta_dim < 1:
        raise InputError("the metadata-merge head needs meta_dim >= 1 (the width of the encoded "
                         f"metadata); received meta_dim={config.meta_dim}")
    k = _k()
    features = k.Input(shape=tuple(feature_shape), name="features")
    meta = k.Input(shape=(config.meta_dim,), name="meta")
    pooled = _pool(k, features, feature_shape, config.pooling, "metadata-merge")
    x = k.layers.Concatenate(name="merge")([pooled, meta])
    x = _dense_block(k, x, config)
    outputs = k.layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return k.Model({"features": features, "meta": meta}, outputs, name="metadata_merge_head")


def _box_grid(rows: int, cols: int, input_size: tuple[int, int]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell centres (cells, 2: x, y), cell size and input size, in pixels of the input size."""
    width, height = (float(v) for v in input_size)
    gy, gx = np.meshgrid((np.arange(rows) + 0.5) * height / rows,
                         (np.arange(cols) + 0.5) * width / cols, indexing="ij")
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    return (grid, np.array([width / cols, height / rows], np.float32),
            np.array([width, height], np.float32))


def build_bbox_head(feature_shape: tuple[int, ...], n_classes: int, config: HeadConfig) -> Any:
    """One model, two outputs: class probabilities (`probs`) and a box (`box`: x, y, w, h).

    The box branch is a small detector on the feature map: two 3x3 conv layers, then a 1x1
    conv gives every cell a score, an offset of the fish centre from the cell centre (at most
    one cell either way) and a log width and height. A softmax over the cells weighs them; the
    box centre is the weighted mean of the cells' centres and the size the exponential of the
    weighted log sizes (a soft arg-max, finer than one cell and differentiable). The class
    branch is the dense head over the pooled map.

    Measured on the fisheries demo (mean IoU of held-out boxes, box branch alone, 5 folds): a
    dense layer on the flattened map (the fast.ai lesson's box head) 0.02; a soft arg-max of
    the centre with the size regressed from the whole map, trained on the squared pixel error,
    0.15 at 64x64 and 0.18 at 128x80; per-cell regression with a GIoU loss 0.41 at 128x80
    (one conv layer), 0.47 with two and flipped views, 0.51 with the six flip and crop views
    and box TTA, 0.56 at 192x112 (`Recipe.box_input_size`, `Recipe.box_variants`). Hard
    arg-max decoding (0.34) and a CenterNet-style cell classification (0.46) did worse.

    Needs `config.input_size` (width, height): the box is in pixels of the input size.
    """
    if len(feature_shape) != 3:
        raise InputError("the bbox head needs spatial (h, w, c) feature maps to locate the fish; "
                         f"received shape {feature_shape}")
    if config.input_size is None:
        raise InputError("the bbox head needs HeadConfig.input_size (width, height): its box is "
                         "in pixels of the input size")
    k = _k()
    ops = k.ops
    rows, cols, _ = (int(v) for v in feature_shape)
    grid, cell, extent = _box_grid(rows, cols, config.input_size)
    inputs = k.Input(shape=tuple(feature_shape), name="features")
    x = k.layers.BatchNormalization(name="box_in_bn")(inputs)
    for layer in (1, 2):
        x = k.layers.Conv2D(BOX_FILTERS, 3, padding="same", use_bias=False,
                            name=f"box_conv{layer}")(x)
        x = k.layers.BatchNormalization(name=f"box_bn{layer}")(x)
        x = k.layers.ReLU(name=f"box_relu{layer}")(x)
    scores = k.layers.Reshape((rows * cols,), name="box_scores")(
        k.layers.Conv2D(1, 1, name="box_heat")(x))
    weights = k.layers.Softmax(name="box_weights")(scores)
    cells = k.layers.Reshape((rows * cols, 4), name="box_cells")(
        k.layers.Conv2D(4, 1, name="box_regress")(x))

    def decode(tensors: list[Any]) -> Any:
        w, reg = tensors
        w = ops.expand_dims(w, -1)
        centres = ops.expand_dims(grid, 0) + ops.tanh(reg[..., :2]) * cell
        centre = ops.sum(w * centres, axis=1)
        size = ops.exp(ops.sum(w * reg[..., 2:], axis=1) + BOX_LOG_SIZE0) * extent
        return ops.concatenate([centre - size / 2, size], axis=-1)

    box = k.layers.Lambda(decode, name="box")([weights, cells])
    pooled_features = _pool(k, inputs, feature_shape, config.pooling, "bbox")
    probs = k.layers.Dense(n_classes, activation="softmax", name="probs")(
        _dense_block(k, pooled_features, config))
    return k.Model(inputs, {"probs": probs, "box": box}, name="bbox_head")


BOX_FILTERS = 64
BOX_LOG_SIZE0 = -2.0  # an untrained box is exp(-2), about 14 % of the input's sides
CAM_LAYER = "cam"


def build_fcn_head(feature_shape: tuple[int, ...], n_classes: int, config: HeadConfig) -> Any:
    """Fully convolutional: conv layers, a 1x1 conv to one map per class, global average pooling.

    No dense layer on flattened features, so any input size works and the per-class maps before
    pooling (layer `cam`) are the class activation maps.
    """
    if len(feature_shape) != 3:
        raise InputError(f"the fcn head needs spatial (h, w, c) feature maps; received shape "
                         f"{feature_shape}")
    k = _k()
    inputs = k.Input(shape=tuple(feature_shape), name="features")
    x = k.layers.BatchNormalization(name="in_bn")(inputs)
    x = k.layers.Conv2D(config.hidden, 3, padding="same", use_bias=False, name="conv1")(x)
    x = k.layers.BatchNormalization(name="bn1")(x)
    x = k.layers.ReLU(name="relu1")(x)
    x = k.layers.Dropout(config.dropout, name="dropout")(x)
    cams = k.layers.Conv2D(n_classes, 1, name=CAM_LAYER)(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(cams)
    outputs = k.layers.Softmax(name="probs")(x)
    return k.Model(inputs, outputs, name="fcn_head")


def head_registry() -> Registry[HeadSpec]:
    """The registry of heads (each a `HeadSpec`, callable as its builder)."""
    registry: Registry[HeadSpec] = Registry("head")
    for spec in (
        HeadSpec(name="dense", build=build_dense_head,
                 description="pooled conv features -> dense layers"),
        HeadSpec(name="metadata-merge", build=build_metadata_merge_head, meta=True,
                 description="conv features + image metadata (size one-hot) -> dense layers"),
        HeadSpec(name="bbox", build=build_bbox_head, boxes=True, spatial=True, input_size="box",
                 description="class softmax + bounding box, one model"),
        HeadSpec(name="fcn", build=build_fcn_head, input_size="fcn", spatial=True,
                 description="fully convolutional over a larger non-square input"),
        HeadSpec(name="crop", build=None, boxes=True, spatial=True, input_size="box",
                 description="predict the box, crop the full-resolution image, classify the "
                             "crop"),
    ):
        registry.register(spec.name, spec)
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
        raise MissingFileError(
            f"head weights {weights_file} do not exist; re-run the same `python -m kit run` "
            "command to train the fold again"
        )
    model = head_registry().get(head)(tuple(feature_shape), n_classes, config)
    try:
        model.load_weights(str(weights_file))
    except (ValueError, OSError, KeyError) as error:
        raise InputError(
            f"cannot load head weights {weights_file} into a {head} head over features "
            f"{tuple(feature_shape)} with {config}: {error}"
        ) from error
    return model
