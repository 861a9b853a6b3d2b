"""Recipe options, declared once: name, command-line flag, parser, help and validation.

The `run` parser, the recipe overrides, the kernel's baked-in options and the `Recipe`'s own
field checks are all derived from `OPTIONS`; a test checks that every `Recipe` field is here and
reachable from `run` and `kernel`.

A check returns None for a good value, else what the value must be ("an integer >= 2"); the
caller words the error for where the value came from: a declaration (`folds must be an integer
>= 2; received folds=1`) or the command line (`--folds 1: folds must be ...`).

Example:
    >>> option("folds").requirement(1)
    'an integer >= 2 (K-fold needs at least two folds)'
    >>> option("input_size").words((224, 224))
    ['--input-size', '224x224']
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TTA_VIEWS: tuple[str, ...] = (
    "plain",
    "hflip",
    "crop_tl",
    "crop_br",
    "hflip_crop_tr",
    "hflip_crop_bl",
    "crop_center",
    "hflip_crop_center",
)
"""The test-time augmentation views, in the order `--tta N` takes them (kit.data.tta)."""
MODES = ("features", "finetune")
TRAININGS = ("fused", "per-fold")
FOLD_KINDS = ("auto", "stratified", "group")
CALIBRATIONS = ("auto", "none", "clip", "temperature")
POOLINGS = ("flatten", "avg", "max")
AUGMENTATIONS = ("flip", "rotate", "zoom", "brightness")
MAX_SEED = 2**32 - 1

# ---------------------------------------------------------------- parsers (text -> value)


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"input size must look like 224x224 (width x height); received {text!r}"
        ) from error
    return width, height


def parse_folds(text: str) -> int | str:
    if text in FOLD_KINDS:
        return text
    try:
        return int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--folds takes a number of folds or one of {', '.join(FOLD_KINDS)}; received "
            f"{text!r}"
        ) from error


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--seeds takes comma-separated integers such as 0,1,2; received {text!r}"
        ) from error
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds must not repeat a seed; received {text!r}")
    return seeds


def parse_names(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names; received {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"names must not repeat; received {text!r}")
    return names


def parse_augment(text: str) -> tuple[str, ...]:
    return () if text.strip() == "none" else parse_names(text)


# ---------------------------------------------------------------- checks (value -> requirement)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def int_at_least(minimum: int, why: str = "") -> Callable[[Any], str | None]:
    text = f"an integer >= {minimum}" + (f" ({why})" if why else "")
    return lambda v: None if _is_int(v) and v >= minimum else text


def int_between(low: int, high: int, why: str = "") -> Callable[[Any], str | None]:
    text = f"an integer from {low} to {high}" + (f" ({why})" if why else "")
    return lambda v: None if _is_int(v) and low <= v <= high else text


def _name(value: object) -> str | None:
    return None if isinstance(value, str) and value.strip() else "a non-empty name"


def _size_or_none(value: object) -> str | None:
    ok = value is None or (isinstance(value, tuple | list) and len(value) == 2
                           and all(_is_int(v) and v > 0 for v in value))
    return None if ok else "None or (width, height) in pixels, such as (224, 224)"


def _size(value: object) -> str | None:
    return "(width, height) in pixels, such as (640, 360)" if value is None else \
        _size_or_none(value)


def _positive(value: object) -> str | None:
    return None if _is_number(value) and value > 0 else "a number > 0"


def _non_negative(value: object) -> str | None:
    return None if _is_number(value) and value >= 0 else "a number >= 0"


def _fraction(value: object) -> str | None:
    return None if _is_number(value) and 0 <= value < 1 else "a number in [0, 1)"


def _lr_factor(value: object) -> str | None:
    return None if _is_number(value) and 0 < value <= 1 else "in (0, 1]"


def _pooling(value: object) -> str | None:
    return None if value in POOLINGS else f"one of {', '.join(POOLINGS)}"


def _fold_kind(value: object) -> str | None:
    return None if value in FOLD_KINDS else f"one of {', '.join(FOLD_KINDS)}"


def _calibration(value: object) -> str | None:
    return None if value in CALIBRATIONS else f"one of {', '.join(CALIBRATIONS)}"


def _training(value: object) -> str | None:
    return None if value in TRAININGS else f"one of {', '.join(TRAININGS)}"


def _mode(value: object) -> str | None:
    return None if value in MODES else f"one of {', '.join(MODES)}"


def _augment(value: object) -> str | None:
    ok = isinstance(value, tuple | list) and all(v in AUGMENTATIONS for v in value)
    return None if ok else f"names among {', '.join(AUGMENTATIONS)} (or none)"


def _pseudo(value: object) -> str | None:
    ok = value is None or (_is_number(value) and 0.5 <= value < 1)
    return None if ok else "a probability threshold in [0.5, 1), such as 0.9"


def _columns(value: object) -> str | None:
    ok = isinstance(value, tuple | list) and all(isinstance(c, str) for c in value)
    return None if ok else "a tuple of image-table column names such as ('size',)"


# ---------------------------------------------------------------- the table


@dataclass(frozen=True, kw_only=True)
class Option:
    """One option of `kit run`.

    Args:
        name: the `Recipe` field (or, with `recipe=False`, the run setting) it sets.
        flag: its command-line flag.
        parse: command-line text to value (raises `argparse.ArgumentTypeError`).
        help: one line for `--help`.
        metavar: the value's placeholder in `--help`.
        check: value to None (good) or what it must be.
        recipe: a `Recipe` field (else a setting of the run: `sample`, `seeds`).
        kernel: baked into kernels by `kit kernel`.
        switch: a flag without a value (`--allow-missing-classes`); `parse` is unused.
    """

    name: str
    flag: str
    parse: Callable[[str], Any]
    help: str
    metavar: str | None = None
    check: Callable[[Any], str | None] | None = None
    recipe: bool = True
    kernel: bool = True
    switch: bool = False

    def requirement(self, value: Any) -> str | None:
        return None if self.check is None else self.check(value)

    def words(self, value: Any) -> list[str]:
        """The command-line words that set `value`."""
        if self.switch:
            return [self.flag] if value else []
        if isinstance(value, tuple | list):
            sep = "x" if self.parse is parse_size else ","
            text = sep.join(str(v) for v in value) if value else "none"
        else:
            text = str(value)
        return [self.flag, text]


def _o(name: str, parse: Callable[[str], Any], help: str, **kwargs: Any) -> Option:
    return Option(name=name, flag="--" + name.replace("_", "-"), parse=parse, help=help,
                  **kwargs)


OPTIONS: tuple[Option, ...] = (
    _o("backbone", str, "conv base (vgg16, resnet50, resnet50_v2, densenet121, inception_v3, "
       "xception, mobilenet_v3_small, efficientnet_b0, efficientnet_v2_b0, efficientnet_v2_s, "
       "efficientnet_v2_m, convnext_tiny, convnext_small, convnext_base, demo_cnn; see "
       "docs/backbones.md and `kit backbones`)", check=_name),
    _o("weights", str, "imagenet, none, or PATH to a weights file", check=_name),
    _o("input_size", parse_size, "input size of the conv base, e.g. 224x224", metavar="WxH",
       check=_size_or_none),
    _o("head", str, "head trained on cached features: dense, metadata-merge, bbox, fcn or crop",
       check=_name),
    _o("mode", str, "features (default: heads on cached features) or finetune (unfreeze the "
       "last blocks of the base; slow, no feature cache)", check=_mode),
    _o("training", str, "how the folds' heads train: fused (every fold and seed in one pass, "
       "the default on one machine, for the dense and metadata-merge heads) or per-fold",
       check=_training),
    _o("finetune_blocks", int, "with --mode finetune: how many of the base's last blocks to "
       "train", metavar="N", check=int_at_least(0)),
    _o("base_lr_factor", float, "with --mode finetune: the base's learning rate is F x the "
       "head's", metavar="F", check=_lr_factor),
    _o("augment", parse_augment, "with --mode finetune: augmentations among flip, rotate, zoom, "
       "brightness ('none' for none)", metavar="A1,A2", check=_augment),
    _o("pseudo_label", float, "retrain each fold with the test images its own model predicts "
       "with probability >= THRESHOLD (e.g. 0.9)", metavar="THRESHOLD", check=_pseudo),
    _o("loss", str, "loss by name (categorical_crossentropy, label_smoothing, focal, or the "
       "competition's own)", check=_name),
    _o("schedule", str, "learning-rate schedule by name (plateau, constant, step, exponential, "
       "warmup, or the competition's own)", check=_name),
    _o("metadata", parse_names, "image-table columns the metadata-merge head uses (default: "
       "size)", metavar="COL1,COL2", check=_columns),
    _o("fcn_input_size", parse_size, "input size of the fcn head, e.g. 640x360", metavar="WxH",
       check=_size),
    _o("class_loss_weight", float, "weight of the class loss of the bbox and crop heads",
       metavar="W", check=_non_negative),
    _o("box_loss_weight", float, "weight of the box loss (1 - GIoU) of the bbox and crop heads "
       "(class loss: 1)", metavar="W", check=_non_negative),
    _o("box_input_size", parse_size, "input size the bbox and crop heads find the box in, e.g. "
       "448x256", metavar="WxH", check=_size_or_none),
    _o("box_variants", int, "flip and crop views the box heads train on and predict with (1-8)",
       metavar="N", check=int_between(1, len(TTA_VIEWS),
                                      f"the first views of {', '.join(TTA_VIEWS)}")),
    _o("learning_rate", float, "head learning rate", metavar="LR", check=_positive),
    _o("pooling", str, "flatten, avg or max", check=_pooling),
    _o("hidden", int, "units of the head's hidden layer", metavar="N", check=int_at_least(1)),
    _o("dropout", float, "dropout rate of the head, in [0, 1)", metavar="P", check=_fraction),
    _o("folds", parse_folds, "number of folds; or their kind: auto (the default: decided from the "
       "competition's groups and what `kit probe` found), stratified or group",
       metavar="K|auto|stratified|group",
       check=int_at_least(2, "K-fold needs at least two folds")),
    _o("fold_kind", str, "auto, stratified or group (the same as --folds KIND)",
       check=_fold_kind),
    _o("calibration", str, "log loss: what the submission's probabilities get: auto (the "
       "default: the candidate that lowers the cross-fitted out-of-fold log loss "
       "significantly, else none), none, clip or temperature; see docs/validation.md",
       check=_calibration),
    _o("tta", int, "test-time augmentation passes", metavar="N",
       check=int_between(1, len(TTA_VIEWS), f"the first views of {', '.join(TTA_VIEWS)}")),
    _o("seed", int, "random seed", metavar="S", check=int_between(0, MAX_SEED)),
    _o("seeds", parse_seeds, "train every fold once per seed and average (K folds x seeds)",
       metavar="S1,S2,...", recipe=False),
    _o("allow_missing_classes", bool, "train although a class has no training images (its "
       "submission column gets the smoothed prior); without it that is an error",
       recipe=False, switch=True),
    _o("epochs", int, "maximum epochs per fold", metavar="E", check=int_at_least(1)),
    _o("patience", int, "epochs without improvement before early stopping", metavar="N",
       check=int_at_least(1)),
    _o("batch_size", int, "batch size for features and heads", metavar="B",
       check=int_at_least(1)),
    _o("sample", int, "run on a stratified random N-image subset of train", metavar="N",
       check=int_at_least(2), recipe=False),
)


def option(name: str) -> Option:
    """The option named `name` (a `Recipe` field or a run setting)."""
    for item in OPTIONS:
        if item.name == name:
            return item
    raise KeyError(f"no option {name!r}")


def recipe_options() -> tuple[Option, ...]:
    return tuple(o for o in OPTIONS if o.recipe)


def field_error(name: str, value: Any) -> str | None:
    """`<name> must be <requirement>; received <name>=<value>`, or None for a good value."""
    need = option(name).requirement(value)
    return None if need is None else f"{name} must be {need}; received {name}={value!r}"


def flag_error(name: str, value: Any) -> str | None:
    """The same error for a value given on the command line, naming the flag first."""
    error = field_error(name, value)
    if error is None:
        return None
    words = option(name).words(value)
    return f"{' '.join(words)}: {error}"


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The options set in `values` (parsed command-line values by name; None: not given)."""
    return {o.name: values[o.name] for o in OPTIONS if values.get(o.name) is not None}


__all__ = ["AUGMENTATIONS", "CALIBRATIONS", "FOLD_KINDS", "MAX_SEED", "MODES", "OPTIONS", "POOLINGS", "TRAININGS",
           "TTA_VIEWS", "Option",
           "field_error", "flag_error", "given", "option", "parse_augment", "parse_folds",
           "parse_names", "parse_seeds", "parse_size", "recipe_options"]
