"""`Recipe`: the training recipe of a competition, every field an option of `kit run`.

Each field is declared with its flag, parser, help and check in `kit.competition.options`; the
recipe checks every field with those checks, so a bad value in a competition.py fails when the
competition loads, naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from kit.competition.options import field_error, flag_error, option, recipe_options
from kit.core.errors import DeclarationError, InputError


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """A default training recipe; every field can be overridden on the command line."""

    backbone: str = "vgg16"
    weights: str = "imagenet"
    input_size: tuple[int, int] | None = None  # (width, height); None: the backbone's default
    head: str = "dense"
    pooling: str = "flatten"
    hidden: int = 256
    dropout: float = 0.5
    folds: int = 5
    # How the folds are drawn (kit.app.folding): decided from evidence, or forced.
    fold_kind: str = "auto"
    # What the submission's probabilities get (log loss; kit.app.honesty): chosen, or forced.
    calibration: str = "auto"
    tta: int = 1
    seed: int = 0
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 5
    # Training: loss and learning-rate schedule by name (kit.models.losses / kit.models.schedules, plus the
    # competition's own `losses` and `schedules`).
    loss: str = "categorical_crossentropy"
    schedule: str = "plateau"
    # metadata-merge head: image-table columns merged with the conv features ("size" is the
    # image size, one-hot over the sizes seen in train).
    metadata: tuple[str, ...] = ("size",)
    # bbox and crop heads: weights of the class and box losses (the box loss is 1 - GIoU, in
    # [0, 2] whatever the input size); the input size the box is found in (None: the recipe's);
    # how many TTA views (kit.data.tta.VARIANTS, in order: plain, hflip, 4 flipped/shifted crops)
    # the box head trains on, each with its box moved into the view, and predicts with.
    class_loss_weight: float = 1.0
    box_loss_weight: float = 1.0
    box_input_size: tuple[int, int] | None = None
    box_variants: int = 2
    # fcn head: its own (larger, non-square) input size, (width, height).
    fcn_input_size: tuple[int, int] = (640, 360)
    # --mode finetune: unfreeze the last `finetune_blocks` blocks of the base, train them at
    # `base_lr_factor` times the head's learning rate, with these augmentations.
    mode: str = "features"
    # How the folds' heads train on one machine: all in one fused pass, or one fit per fold
    # (kit.cv.fused); the per-fold path also serves what the fused one cannot express.
    training: str = "fused"
    finetune_blocks: int = 1
    base_lr_factor: float = 0.1
    augment: tuple[str, ...] = ("flip", "rotate", "zoom", "brightness")
    # --pseudo-label THRESHOLD: confident test predictions join each fold's training data.
    pseudo_label: float | None = None

    def __post_init__(self) -> None:
        for item in recipe_options():
            error = field_error(item.name, getattr(self, item.name))
            if error is not None:
                raise (DeclarationError if item.name == "metadata" else InputError)(error)
        if self.class_loss_weight == 0 and self.box_loss_weight == 0:
            raise InputError("class_loss_weight and box_loss_weight cannot both be 0")


def with_overrides(recipe: Recipe, values: dict[str, Any]) -> Recipe:
    """`recipe` with the options given on the command line (`values`: name -> parsed value).

    Each value is checked first, so the error names its flag (`--folds 1: folds must be ...`).
    A new backbone without `--input-size` takes its own default input size.

    Raises:
        InputError: A value its option's check refuses, or a field `Recipe` does not have.
    """
    for name, value in values.items():
        if not any(o.name == name for o in recipe_options()):
            raise InputError(f"{option(name).flag} is not a recipe option")
        error = flag_error(name, value)
        if error is not None:
            raise InputError(error)
    changes = dict(values)
    if "backbone" in changes and changes["backbone"] != recipe.backbone:
        changes.setdefault("input_size", None)  # the new backbone's own default size
    return dataclasses.replace(recipe, **changes)


__all__ = ["Recipe", "with_overrides"]
