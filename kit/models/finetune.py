"""The fine-tune model: the last blocks of the conv base trained with the head, on augmented images.

`--mode finetune` cannot use the feature cache: the base runs on every batch. One fold trains

    image (float, 0-255) -> augmentation (training only) -> the backbone's preprocessing
    -> base (always in inference mode; its last `blocks` blocks trainable) -> head (softmax)

**Blocks.** Each `Backbone` names the last layer of each of its blocks with a regular expression
(`Backbone.block_end`); `finetune_blocks` splits the base's layers into blocks with it and
`unfreeze_last` makes only the last n trainable (0: the whole base stays frozen and the head
is trained end to end on augmented images).

**Batch normalisation stays in inference mode.** The base is always run with `training=False`,
the Keras transfer-learning guide's advice: its BatchNormalization layers, unfrozen or not, keep
normalising with (and never update) their moving statistics, while gamma and beta of unfrozen
blocks still train. Small fine-tuning batches would otherwise overwrite the statistics the
weights were trained with. In Keras 3, writing `base(x, training=False)` while building a
functional model is NOT enough: during `fit` the functional graph hands the outer
`training=True` to every layer it calls, overriding the recorded False (keras-team/keras#20285).
The base is therefore wrapped in a layer, `InferenceBase`, whose `call` always passes
`training=False`; a test pins the moving statistics unchanged by `fit`. (EfficientNet's
stochastic-depth dropout is off for the same reason.)

**Two learning rates.** The base's variables are updated at `base_lr_factor` times the head's
learning rate. Keras 3 has no per-variable learning rate, so `TwoRateAdam` (a small `Adam`
subclass) multiplies the learning rate it is handed in `update_step` by the factor for the
variables that `build()` recorded as the base's (by the optimizer's own variable keys: in the
TensorFlow backend `update_step` receives the underlying `tf.Variable`, not the Keras one).
Because the factor multiplies the optimizer's *current* rate, ReduceLROnPlateau and
LearningRateScheduler move both rates together and keep them in proportion. Scaling the base's
gradients instead would do nothing: Adam divides each step by the root of the running mean of
the squared gradient, so a gradient scaled by f gives the same step (up to epsilon).

**Resuming a fold.** `keras.callbacks.BackupAndRestore(<fold>/backup)` saves the weights, the
optimizer state (moments, iteration, current learning rate) and the finished epoch count after
every epoch (`latest.weights.h5`, `training_metadata.json`, with `.bkp` copies of the previous
epoch in case a write was cut off), and deletes the folder in `on_train_end`, i.e. only when
`fit` returns (after its last epoch or an early stop; never after a crash). A killed fold
restarts at its last finished epoch, not at the first epoch and not with the other folds. The
learning rate is restored with the optimizer, but a ReduceLROnPlateau's own patience counter
starts again after a resume.
`<fold>/epochs.csv` (CSVLogger, appending) shows every epoch of every attempt; `history.json`
is read from it, one row per epoch (an epoch re-run after a crash keeps its last row).

**Early stopping across a resume.** `keras.callbacks.EarlyStopping` keeps its memory (best
loss, epochs without improvement, best weights) in the process, and BackupAndRestore does not
save it: after a resume it would start counting again and `restore_best_weights` could only
return the best epoch *after* the resume. The early stopping here (`ResumableEarlyStopping`,
same rule: stop after `patience` epochs without a lower `val_loss`) keeps that memory in the
fold folder instead: `early_stopping.json` (every epoch) and `best.weights.h5` (at each new
best). A resumed fold therefore continues the same patience count and ends with the best epoch
of the whole fold, wherever it fell; a fold that finished training but died before writing its
outputs predicts with `best.weights.h5` without training again. If the process dies between the two writers of one epoch, that
epoch is re-run and may count twice towards the patience. It watches an inner split of the
fold's training rows (`kit.models.train.inner_split`), never the fold's validation rows. Once
`done.json` is written, both files and any backup are removed.

The per-fold files are those of `kit.cv.heads.run_fold` (`model.weights.h5`, `oof.npy`,
`test.npy`, `history.json`, `done.json` last) plus `epochs.csv`; a fold with `done.json` is
loaded, not trained.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kit.competition import AUGMENTATIONS
from kit.core.atomic import atomic_path, atomic_write_text
from kit.core.errors import DeclarationError, InputError
from kit.features.backbones import Backbone, ResolvedWeights
from kit.models.heads import HeadConfig

BASE_LAYER = "base"  # name of the InferenceBase layer holding the conv base in a fine-tune model
ROTATION_FACTOR = 0.03  # of a full turn: up to +-10.8 degrees
ZOOM_FACTOR = 0.1  # up to 10% in or out
BRIGHTNESS_FACTOR = 0.1  # up to +-10% of the 0-255 range added


def _check_factor(base_lr_factor: object) -> float:
    if (isinstance(base_lr_factor, bool) or not isinstance(base_lr_factor, int | float)
            or not 0 < base_lr_factor <= 1):
        raise InputError(
            "base_lr_factor must be a number in (0, 1]: the base's learning rate as a fraction "
            f"of the head's; received base_lr_factor={base_lr_factor!r}"
        )
    return float(base_lr_factor)


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """What fine-tuning changes besides the head's training settings.

    Args:
        blocks: how many of the base's last blocks train (0: the base stays frozen).
        base_lr_factor: the base's learning rate as a fraction of the head's, in (0, 1].
        augment: training-time augmentations, a subset of `kit.competition.AUGMENTATIONS`
            (applied in that order whatever the order here).
    """

    blocks: int = 1
    base_lr_factor: float = 0.1
    augment: tuple[str, ...] = AUGMENTATIONS

    def __post_init__(self) -> None:
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, int) or self.blocks < 0:
            raise InputError(
                "blocks must be an integer >= 0 (0 keeps the whole base frozen); received "
                f"blocks={self.blocks!r}"
            )
        _check_factor(self.base_lr_factor)
        if not isinstance(self.augment, tuple):
            raise DeclarationError(
                "augment must be a tuple of augmentation names such as ('flip', 'zoom'); "
                f"received augment={self.augment!r}"
            )
        _check_augment(self.augment)


def _check_augment(augment: Sequence[str]) -> None:
    unknown = [name for name in augment if name not in AUGMENTATIONS]
    if unknown:
        raise InputError(f"augment names unknown augmentations {unknown}; choose from "
                         f"{', '.join(AUGMENTATIONS)}")
    if len(set(augment)) != len(augment):
        raise InputError(f"augment names an augmentation twice; received augment={augment!r}")


# ---------------------------------------------------------------- blocks


def finetune_blocks(model: Any, backbone: Backbone) -> list[list[str]]:
    """The base's layer names grouped into blocks, in order.

    A block ends at each layer whose name matches `backbone.block_end` (`re.fullmatch`); the
    layers before the first match belong to the first block, the layers after the last match
    form one more, final block. The blocks partition `model.layers`.

    Raises:
        ValueError: If no layer name matches (the pattern does not describe this model).
    """
    pattern = re.compile(backbone.block_end)
    blocks: list[list[str]] = []
    current: list[str] = []
    for layer in model.layers:
        current.append(layer.name)
        if pattern.fullmatch(layer.name):
            blocks.append(current)
            current = []
    if not blocks:
        raise InputError(
            f"block_end {backbone.block_end!r} of backbone {backbone.name} matches none of the "
            f"{len(model.layers)} layers of model {model.name}; it must match the last layer of "
            "each block"
        )
    if current:
        blocks.append(current)
    return blocks


def unfreeze_last(model: Any, backbone: Backbone, n: int) -> list[str]:
    """Make the layers of the last `n` blocks of the base `model` trainable, all others not.

    Returns the names of the trainable layers. `n=0` freezes the whole base.

    Raises:
        ValueError: If `n` is not an integer from 0 to the number of blocks.
    """
    blocks = finetune_blocks(model, backbone)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(blocks):
        raise InputError(
            f"cannot unfreeze {n!r} blocks: backbone {backbone.name} has {len(blocks)} blocks; "
            f"choose finetune_blocks from 0 to {len(blocks)}"
        )
    unfrozen = [name for block in blocks[len(blocks) - n:] for name in block]
    model.trainable = True  # Keras 3: a frozen model hides the weights of its trainable layers
    names = set(unfrozen)
    for layer in model.layers:
        layer.trainable = layer.name in names
    if n == 0:
        model.trainable = False
    return unfrozen


# ---------------------------------------------------------------- Keras classes (built lazily)


@functools.cache
def _inference_base_class() -> type:
    from kit.core.tf_runtime import keras

    k = keras()

    class InferenceBase(k.layers.Layer):
        """Runs a conv base in inference mode whatever mode the enclosing model runs in."""

        def __init__(self, base: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.base = base

        def call(self, inputs: Any, training: Any = None) -> Any:
            del training  # BatchNormalization keeps its moving statistics (module docstring)
            return self.base(inputs, training=False)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return self.base.compute_output_shape(input_shape)

    return InferenceBase


@functools.cache
def _two_rate_adam_class() -> type:
    from kit.core.tf_runtime import keras

    k = keras()

    class TwoRateAdam(k.optimizers.Adam):
        """Adam stepping `base_variables` at `base_lr_factor` x the current learning rate."""

        def __init__(self, *, base_variables: Sequence[Any] = (), base_lr_factor: float = 0.1,
                     **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.base_lr_factor = _check_factor(base_lr_factor)
            self._base_keys = frozenset(self._var_key(v) for v in base_variables)
            self._base_indexes: frozenset[int] = frozenset()

        def build(self, variables: Sequence[Any]) -> None:
            super().build(variables)
            self._base_indexes = frozenset(
                i for i, v in enumerate(variables) if self._var_key(v) in self._base_keys)

        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            if self._get_variable_index(variable) in self._base_indexes:
                learning_rate = learning_rate * self.base_lr_factor
            super().update_step(gradient, variable, learning_rate)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "base_lr_factor": self.base_lr_factor}

    return TwoRateAdam


def two_rate_adam(*, learning_rate: float, base_variables: Sequence[Any],
                  base_lr_factor: float) -> Any:
    """An Adam optimizer whose steps for `base_variables` use `base_lr_factor` x its rate."""
    return _two_rate_adam_class()(learning_rate=learning_rate, base_variables=base_variables,
                                  base_lr_factor=base_lr_factor)


@dataclass(frozen=True, kw_only=True)
class StopState:
    """Early stopping's memory, kept in the fold folder so a resumed fold keeps it."""

    epochs_seen: int = 0  # epochs evaluated so far
    best: float | None = None  # lowest val_loss so far
    best_epoch: int = 0  # 1-based epoch of `best`; 0 before the first
    wait: int = 0  # epochs since `best`
    finished: bool = False  # fit returned normally (epochs done or stopped early)

    @classmethod
    def read(cls, path: Path) -> StopState:
        if not path.is_file():
            return cls()
        return cls(**json.loads(path.read_text()))

    def write(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self)))


@functools.cache
def early_stopping_class() -> type:
    from kit.core.tf_runtime import keras

    k = keras()

    class ResumableEarlyStopping(k.callbacks.Callback):
        """EarlyStopping on `val_loss` whose memory lives in files (see the module docstring).

        Each new best `val_loss` saves the weights to `best_weights` before `state_file` says
        so; training stops after `patience` epochs without one.
        """

        def __init__(self, *, state_file: Path, best_weights: Path, patience: int) -> None:
            super().__init__()
            self.state_file = state_file
            self.best_weights = best_weights
            self.patience = patience
            self.state = StopState()

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.state = StopState.read(self.state_file)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            current = (logs or {}).get("val_loss")
            if current is None:
                raise InputError("early stopping watches val_loss, which fit did not report; "
                                 "pass validation_data")
            current = float(current)
            state = self.state
            if not math.isnan(current) and (state.best is None or current < state.best):
                with atomic_path(self.best_weights) as tmp:
                    self.model.save_weights(str(tmp))
                state = replace(state, best=current, best_epoch=epoch + 1, wait=0)
            else:
                state = replace(state, wait=state.wait + 1)
            self.state = replace(state, epochs_seen=epoch + 1)
            self.state.write(self.state_file)
            if self.state.wait >= self.patience:
                self.model.stop_training = True

        def on_train_end(self, logs: dict | None = None) -> None:
            self.state = replace(self.state, finished=True)
            self.state.write(self.state_file)

    return ResumableEarlyStopping


# ---------------------------------------------------------------- the model


def augmentation_layers(augment: Sequence[str], *, seed: int) -> list[Any]:
    """Keras random layers for `augment`, in `AUGMENTATIONS` order; active only in training.

    They take float images in the 0-255 range: horizontal flip, rotation by up to
    `ROTATION_FACTOR` of a turn, zoom by up to `ZOOM_FACTOR`, brightness shifted by up to
    `BRIGHTNESS_FACTOR` of the range (clipped to 0-255).
    """
    from kit.core.tf_runtime import keras

    _check_augment(augment)
    layers = keras().layers
    makers: dict[str, Callable[[int], Any]] = {
        "flip": lambda s: layers.RandomFlip("horizontal", seed=s, name="flip"),
        "rotate": lambda s: layers.RandomRotation(ROTATION_FACTOR, seed=s, name="rotate"),
        "zoom": lambda s: layers.RandomZoom(ZOOM_FACTOR, seed=s, name="zoom"),
        "brightness": lambda s: layers.RandomBrightness(
            BRIGHTNESS_FACTOR, value_range=(0, 255), seed=s, name="brightness"),
    }
    return [makers[name](seed + i) for i, name in enumerate(AUGMENTATIONS) if name in augment]


def build_finetune_model(
    *,
    backbone: Backbone,
    weights: ResolvedWeights,
    input_size: tuple[int, int],
    head_builder: Callable[[tuple[int, ...], int, HeadConfig], Any],
    head_config: HeadConfig,
    n_classes: int,
    config: FinetuneConfig,
    seed: int,
) -> Any:
    """The fine-tune model: 0-255 float images (height, width, 3) in, class probabilities out.

    Augmentation (training only) -> `preprocess_function(backbone)` -> the base from
    `build_model(backbone, weights, input_size)` wrapped in `InferenceBase` (layer `base`,
    always in inference mode) with its last `config.blocks` blocks trainable -> the head from
    `head_builder(feature_shape, n_classes, head_config)`: one feature input, one softmax
    output (as `kit.models.heads.build_dense_head`); heads with metadata inputs or box outputs raise. `seed` decides the head's initial weights and the
    augmentation's random draws.
    """
    from kit.core.tf_runtime import keras, set_seed
    from kit.features.backbones import build_model, check_input_size, preprocess_function

    k = keras()
    width, height = check_input_size(backbone, input_size)
    base = build_model(backbone, weights, (width, height))
    unfreeze_last(base, backbone, config.blocks)
    set_seed(seed)
    inputs = k.Input(shape=(height, width, 3), name="image")
    x = inputs
    for layer in augmentation_layers(config.augment, seed=seed):
        x = layer(x)
    x = k.layers.Lambda(preprocess_function(backbone), name="preprocess")(x)
    features = _inference_base_class()(base, name=BASE_LAYER)(x)
    head = head_builder(tuple(int(d) for d in features.shape[1:]), n_classes, head_config)
    if len(head.inputs) != 1 or len(head.outputs) != 1:
        raise InputError(
            f"fine-tuning needs a head with one feature input and one class-probability output "
            f"(such as dense); received head {head.name} with {len(head.inputs)} inputs and "
            f"{len(head.outputs)} outputs"
        )
    return k.Model(inputs, head(features), name=f"finetune_{backbone.name}")


def finetune_base(model: Any) -> Any:
    """The conv base inside a model made by `build_finetune_model`."""
    try:
        return model.get_layer(BASE_LAYER).base
    except (ValueError, AttributeError) as error:
        raise InputError(
            f"model {model.name} has no InferenceBase layer named {BASE_LAYER!r}; build it with "
            "kit.cv.finetune.build_finetune_model"
        ) from error


# ---------------------------------------------------------------- images


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch logs from a CSVLogger file, one row per epoch in order.

    An epoch logged twice (re-run after a crash between logging and backing up) keeps its last
    row. Missing values ("NA") read as NaN; a row cut off by a crash mid-write is skipped.
    """
    if not path.is_file():
        return {}
    rows: dict[int, dict[str, float]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if None in row or None in row.values():  # more or fewer fields than the header
                continue
            try:
                rows[int(row["epoch"])] = {
                    key: float("nan") if value in ("", "NA") else float(value)
                    for key, value in row.items() if key != "epoch"}
            except ValueError:
                continue
    history: dict[str, list[float]] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            history.setdefault(key, []).append(value)
    return history


__all__ = ["FinetuneConfig", "StopState", "augmentation_layers", "build_finetune_model",
           "early_stopping_class", "finetune_base", "finetune_blocks", "read_history",
           "two_rate_adam", "unfreeze_last"]
