"""Backbone registry: how to build each conv base, preprocess its input and find its weights.

Each `Backbone` record carries its default input size and preprocessing, from which the feature
pipeline is derived (never repeated elsewhere). Building a model imports TensorFlow; reading the
registry does not.

Weights are `imagenet` (the Keras cache, `$KERAS_HOME/models` or `~/.keras/models`), `none`
(random initialisation, seeded) or a path to a weights file.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.core.errors import InputError, MissingFileError
from kit.core.registry import Registry

OFFLINE_ENV = "KIT_OFFLINE"
WEIGHTS_HOST = ("storage.googleapis.com", 443)


class MissingWeightsError(MissingFileError):
    """The requested weights are not on disk and cannot be fetched."""


@dataclass(frozen=True, kw_only=True)
class Backbone:
    """Facts about one conv base.

    Args:
        name: registry name (`vgg16`).
        keras_name: constructor in `keras.applications` (`VGG16`), or None for a kit builder.
        preprocess: `keras.applications.<module>.preprocess_input` module name, or `builtin`
            when the model rescales its own uint8-range input.
        input_size: default (width, height).
        min_size: smallest accepted side in pixels.
        imagenet_file: file name Keras keeps in its cache for the no-top ImageNet weights.
        feature_layer: layer whose output is the feature map; None for the model output.
        block_end: regular expression, matched with `re.fullmatch` against the base's layer
            names, marking the last layer of each block that `--mode finetune` can unfreeze
            (kit.cv.finetune.finetune_blocks). Layers before the first match belong to the first
            block; layers after the last match form one more, final block.
        imagenet_top1: ImageNet top-1 accuracy in percent of the Keras ImageNet weights, as
            Keras publishes it (None when it publishes none, or for a base without them).
        top1_source: where `imagenet_top1` comes from.
    """

    name: str
    keras_name: str | None
    preprocess: str
    input_size: tuple[int, int]
    min_size: int = 32
    imagenet_file: str | None = None
    feature_layer: str | None = None
    block_end: str
    imagenet_top1: float | None = None
    top1_source: str | None = None


KERAS_TABLE = "keras.io/api/applications (table of available models)"
MOBILENET_V3_DOC = ("Keras MobileNetV3 docstring table (mobilenet_v3_small_1.0_224); the "
                    "keras.io table has no MobileNetV3 row")
CONVNEXT_TABLE = ("keras.io/api/applications (ConvNeXt rows; base: pretrained on ImageNet-21k, "
                  "then fine-tuned on ImageNet-1k)")


def _classic_backbones() -> tuple[Backbone, ...]:
    """The 2014-2019 bases, and the demo's own."""
    return (
        Backbone(name="vgg16", keras_name="VGG16", preprocess="vgg16", input_size=(224, 224),
                 imagenet_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 block_end=r"block\d_pool", imagenet_top1=71.3, top1_source=KERAS_TABLE),
        Backbone(name="resnet50", keras_name="ResNet50", preprocess="resnet50",
                 input_size=(224, 224),
                 imagenet_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 block_end=r"pool1_pool|conv\d_block\d+_out", imagenet_top1=74.9,
                 top1_source=KERAS_TABLE),
        Backbone(name="inception_v3", keras_name="InceptionV3", preprocess="inception_v3",
                 input_size=(299, 299), min_size=75,
                 imagenet_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 block_end=r"mixed\d+", imagenet_top1=77.9, top1_source=KERAS_TABLE),
        Backbone(name="xception", keras_name="Xception", preprocess="xception",
                 input_size=(299, 299), min_size=71,
                 imagenet_file="xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 # the residual adds end blocks 2-13 (the first block also holds block 1);
                 # Keras numbers them add, add_1, ...; the layers after the last are block 14
                 block_end=r"add(_\d+)?", imagenet_top1=79.0, top1_source=KERAS_TABLE),
        Backbone(name="mobilenet_v3_small", keras_name="MobileNetV3Small", preprocess="builtin",
                 input_size=(224, 224),
                 imagenet_file="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
                 # one block per expanded_conv: it ends at its residual add where it has one
                 # (blocks 2, 4, 5, 7, 9, 10), else at its project_bn; conv_1 layers follow
                 block_end=r"expanded_conv(_[1368])?_project_bn|expanded_conv_\d+_add",
                 imagenet_top1=68.1, top1_source=MOBILENET_V3_DOC),
        Backbone(name="efficientnet_b0", keras_name="EfficientNetB0", preprocess="builtin",
                 input_size=(224, 224), imagenet_file="efficientnetb0_notop.h5",
                 # one block per blockXy: the first of each stage (a) has no residual add and
                 # ends at its project_bn, the others end at their add; top_* layers follow
                 block_end=r"block\da_project_bn|block\d[b-z]_add", imagenet_top1=77.1,
                 top1_source=KERAS_TABLE),
        Backbone(name="demo_cnn", keras_name=None, preprocess="builtin", input_size=(64, 64),
                 min_size=16, block_end=r"block\d_pool"),
    )


def _convnext(size: str, top1: float) -> Backbone:
    """ConvNeXt-`size` (Liu et al. 2022): it normalises its own 0-255 input.

    One block per ConvNeXt block: its layers are prefixed `convnext_<size>_stage_S_block_B_` and
    it ends at its `_identity` layer (the residual add is an operation, not a layer); each
    stage's downsampling layer opens the next stage's first block; the final LayerNormalization
    is the last block.
    """
    return Backbone(name=f"convnext_{size}", keras_name=f"ConvNeXt{size.capitalize()}",
                    preprocess="builtin", input_size=(224, 224),
                    imagenet_file=f"convnext_{size}_notop.h5",
                    block_end=rf"convnext_{size}_stage_\d_block_\d+_identity",
                    imagenet_top1=top1, top1_source=CONVNEXT_TABLE)


def _efficientnet_v2(variant: str, side: int, top1: float, block_end: str) -> Backbone:
    """EfficientNetV2-`variant` (Tan and Le 2021): it rescales its own 0-255 input.

    One block per blockXy, as for EfficientNet: a block with a residual add ends at it, the
    others (the first of each stage) at their projection; the top_* layers are the last block.
    """
    return Backbone(name=f"efficientnet_v2_{variant}",
                    keras_name=f"EfficientNetV2{variant.upper()}", preprocess="builtin",
                    input_size=(side, side),
                    imagenet_file=f"efficientnetv2-{variant}_notop.h5",
                    block_end=block_end, imagenet_top1=top1, top1_source=KERAS_TABLE)


def _modern_backbones() -> tuple[Backbone, ...]:
    """The bases of this decade (ConvNeXt, EfficientNetV2) and two strong older transfer bases."""
    return (
        _convnext("tiny", 81.3),
        _convnext("small", 82.3),
        _convnext("base", 85.3),
        # B0's stage 1 (block1a) changes width, so it has no add and ends at its projection's
        # activation; S and M's block1a keeps its width and ends at its add
        _efficientnet_v2("b0", 224, 78.7, r"block1a_project_activation|block[2-9]a_project_bn"
                                          r"|block\d[b-z]_add"),
        _efficientnet_v2("s", 384, 83.9, r"block[2-9]a_project_bn|block\d[a-z]_add"),
        _efficientnet_v2("m", 480, 85.3, r"block[2-9]a_project_bn|block\d[a-z]_add"),
        Backbone(name="resnet50_v2", keras_name="ResNet50V2", preprocess="resnet_v2",
                 input_size=(224, 224),
                 imagenet_file="resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 # as resnet50: the stem, then one block per residual unit; post_bn and
                 # post_relu (pre-activation ResNets normalise after the last unit) follow
                 block_end=r"pool1_pool|conv\d_block\d+_out", imagenet_top1=76.0,
                 top1_source=KERAS_TABLE),
        Backbone(name="densenet121", keras_name="DenseNet121", preprocess="densenet",
                 input_size=(224, 224),
                 imagenet_file="densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 # the stem ends at pool1, then one block per dense layer (it ends at its
                 # concat); a transition (poolN_*) opens the next dense block's first; the
                 # final bn and relu follow
                 block_end=r"pool1|conv\d_block\d+_concat", imagenet_top1=75.0,
                 top1_source=KERAS_TABLE),
    )


def backbone_registry() -> Registry[Backbone]:
    """The registry of known backbones (a new registry each call; records are immutable)."""
    registry: Registry[Backbone] = Registry("backbone")
    for record in (*_classic_backbones(), *_modern_backbones()):
        registry.register(record.name, record)
    return registry


def get_backbone(name: str) -> Backbone:
    """Look a backbone up by name; a miss lists close matches."""
    return backbone_registry().get(name)


def check_input_size(backbone: Backbone, size: tuple[int, int]) -> tuple[int, int]:
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(v, int) for v in size)
    ):
        raise InputError(f"input size must be (width, height) integers; received {size!r}")
    if min(size) < backbone.min_size:
        raise InputError(
            f"input size {size[0]}x{size[1]} is too small for {backbone.name}: each side must be "
            f">= {backbone.min_size} px (default {backbone.input_size[0]}x{backbone.input_size[1]})"
        )
    return int(size[0]), int(size[1])


# ---------------------------------------------------------------- weights


@dataclass(frozen=True, kw_only=True)
class ResolvedWeights:
    """Weights to load: `kind` is imagenet, none or file; `identity` keys the feature cache."""

    kind: str
    path: Path | None
    identity: str
    seed: int = 0  # initialisation seed; decides the weights when kind is none


def keras_cache_candidates(file_name: str) -> tuple[Path, ...]:
    """Where Keras looks for (and saves) a cached weights file."""
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    return (home / "models" / file_name, Path("/tmp/.keras/models") / file_name)


def file_sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _can_download(timeout: float = 3.0) -> bool:
    if os.environ.get(OFFLINE_ENV):
        return False
    try:
        with socket.create_connection(WEIGHTS_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def resolve_weights(backbone: Backbone, weights: str, *, seed: int) -> ResolvedWeights:
    """Turn `--weights` into something loadable, failing within seconds when it is missing.

    Raises:
        MissingWeightsError: ImageNet weights are neither cached nor downloadable, or a weights
            file does not exist.
        ValueError: `imagenet` for a backbone that has no ImageNet weights.
    """
    if not isinstance(weights, str) or not weights:
        raise InputError(f"weights must be imagenet, none or a file path; received {weights!r}")
    if weights == "none":
        return ResolvedWeights(kind="none", path=None, identity=f"none-seed{seed}", seed=seed)
    if weights == "imagenet":
        if backbone.imagenet_file is None:
            raise InputError(
                f"backbone {backbone.name} has no ImageNet weights; use --weights none or "
                "--weights PATH"
            )
        for candidate in keras_cache_candidates(backbone.imagenet_file):
            if candidate.is_file():
                return ResolvedWeights(kind="imagenet", path=candidate,
                                       identity=f"imagenet-{file_sha1(candidate)}")
        expected = keras_cache_candidates(backbone.imagenet_file)[0]
        if _can_download():
            return ResolvedWeights(kind="imagenet", path=None, identity="imagenet-download")
        raise MissingWeightsError(
            f"ImageNet weights for {backbone.name} are not in the Keras cache and cannot be "
            f"downloaded (no network). Keras expects the file {expected}. Copy "
            f"{backbone.imagenet_file} there from a machine with internet, or pass "
            "--weights PATH to a local weights file (or --weights none for random weights)."
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise MissingWeightsError(
            f"weights file {path} does not exist; --weights takes imagenet, none or the path of "
            "an existing weights file"
        )
    return ResolvedWeights(kind="file", path=path.resolve(), identity=f"file-{file_sha1(path)}")


# ---------------------------------------------------------------- building (TensorFlow)


def build_demo_cnn(input_shape: tuple[int, int, int]) -> Any:
    """A small conv base (4 conv blocks) for the demo; it rescales its own 0-255 input."""
    from kit.core.tf_runtime import keras

    k = keras()
    inputs = k.Input(shape=input_shape, name="image")
    x = k.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for block, filters in enumerate((16, 32, 64, 128), start=1):
        x = k.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                            name=f"block{block}_conv")(x)
        x = k.layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn")(x)
        x = k.layers.ReLU(name=f"block{block}_relu")(x)
        x = k.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return k.Model(inputs, x, name="demo_cnn")


def build_model(backbone: Backbone, weights: ResolvedWeights, size: tuple[int, int]) -> Any:
    """Build the conv base (no top) with its weights loaded; input (height, width, 3)."""
    from kit.core.tf_runtime import keras, set_seed

    k = keras()
    width, height = check_input_size(backbone, size)
    shape = (height, width, 3)
    if weights.kind == "none":
        set_seed(weights.seed)  # random weights are part of the cache key: make them repeatable
    if backbone.keras_name is None:
        model = build_demo_cnn(shape)
    else:
        constructor: Callable[..., Any] = getattr(k.applications, backbone.keras_name)
        source = "imagenet" if weights.kind == "imagenet" else None
        if weights.kind == "imagenet" and weights.path is not None:
            source = str(weights.path)
        model = constructor(include_top=False, weights=source, input_shape=shape)
        if weights.kind == "file":
            _load_file(model, weights.path)
        return _feature_model(k, model, backbone)
    if weights.kind == "file":
        _load_file(model, weights.path)
    return _feature_model(k, model, backbone)


def _load_file(model: Any, path: Path | None) -> None:
    try:
        model.load_weights(str(path))
    except (ValueError, OSError, KeyError) as error:
        raise InputError(
            f"cannot load weights file {path} into {model.name}: {error}. The file must hold "
            "weights saved from the same architecture (no top)."
        ) from error


def _feature_model(k: Any, model: Any, backbone: Backbone) -> Any:
    if backbone.feature_layer is None:
        return model
    return k.Model(model.input, model.get_layer(backbone.feature_layer).output, name=model.name)


def preprocess_function(backbone: Backbone) -> Callable[[Any], Any]:
    """The function mapping float32 0-255 RGB tensors to the model's expected input."""
    if backbone.preprocess == "builtin":
        return lambda x: x
    from kit.core.tf_runtime import keras

    module = getattr(keras().applications, backbone.preprocess)
    return module.preprocess_input
