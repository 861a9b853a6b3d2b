"""Competition declarations: the frozen `Competition` and the loader of `competitions/<name>/`.

A competition folder holds `competition.py`, which defines one module-level `COMPETITION`. It
declares facts only (classes, layout, submission format, default recipe); no training code.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.tta import VARIANTS

COMPETITION_FILE = "competition.py"
LABEL_SOURCES = ("folder", "filename_prefix")
SUBMISSION_KINDS = ("per_class", "positive_class")


@dataclass(frozen=True, kw_only=True)
class TestSplit:
    """One folder of test images and how its file names become submission ids.

    Args:
        name: split name used in the image table (`test_stg1`).
        folder: folder relative to the data root (`test_stg1`).
        id_template: `str.format` template over `name` (file name) and `stem` (name without
            suffix): `"{name}"`, `"test_stg2/{name}"`, `"{stem}"`.
    """

    __test__ = False  # not a pytest test class, despite its name

    name: str
    folder: str
    id_template: str = "{name}"

    def submission_id(self, file_name: str) -> str:
        return self.id_template.format(name=file_name, stem=Path(file_name).stem)


@dataclass(frozen=True, kw_only=True)
class SampleSubmission:
    """A sample submission file and the test splits whose rows it holds."""

    file: str
    splits: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SubmissionFormat:
    """Submission columns.

    `per_class`: `id_column` then one probability column per class, named after the class.
    `positive_class`: `id_column` then `value_column` holding P(`positive_class`).
    """

    id_column: str
    kind: str = "per_class"
    value_column: str | None = None
    positive_class: str | None = None
    samples: tuple[SampleSubmission, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in SUBMISSION_KINDS:
            raise ValueError(
                f"submission kind must be one of {', '.join(SUBMISSION_KINDS)}; "
                f"received kind={self.kind!r}"
            )
        if self.kind == "positive_class" and not (self.value_column and self.positive_class):
            raise ValueError(
                "a positive_class submission needs value_column and positive_class; received "
                f"value_column={self.value_column!r}, positive_class={self.positive_class!r}"
            )
        if not self.samples:
            raise ValueError("submission samples must name at least one sample submission file")


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
    tta: int = 1
    seed: int = 0
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 5
    # Training: loss and learning-rate schedule by name (kit.losses / kit.schedules, plus the
    # competition's own `losses` and `schedules`).
    loss: str = "categorical_crossentropy"
    schedule: str = "plateau"
    # metadata-merge head: image-table columns merged with the conv features ("size" is the
    # image size, one-hot over the sizes seen in train).
    metadata: tuple[str, ...] = ("size",)
    # bbox and crop heads: weights of the class and box losses (the box loss is 1 - GIoU, in
    # [0, 2] whatever the input size); the input size the box is found in (None: the recipe's);
    # how many TTA views (kit.tta.VARIANTS, in order: plain, hflip, 4 flipped/shifted crops)
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
    finetune_blocks: int = 1
    base_lr_factor: float = 0.1
    augment: tuple[str, ...] = ("flip", "rotate", "zoom", "brightness")
    # --pseudo-label THRESHOLD: confident test predictions join each fold's training data.
    pseudo_label: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; received mode={self.mode!r}")
        for name in ("class_loss_weight", "box_loss_weight"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0; received {name}={value!r}")
        if self.class_loss_weight == 0 and self.box_loss_weight == 0:
            raise ValueError("class_loss_weight and box_loss_weight cannot both be 0")
        if (isinstance(self.box_variants, bool) or not isinstance(self.box_variants, int)
                or not 1 <= self.box_variants <= len(VARIANTS)):
            raise ValueError(f"box_variants must be an integer from 1 to {len(VARIANTS)} (the "
                             f"first views of {', '.join(VARIANTS)}); received "
                             f"box_variants={self.box_variants!r}")
        if not isinstance(self.finetune_blocks, int) or self.finetune_blocks < 0:
            raise ValueError("finetune_blocks must be an integer >= 0; received "
                             f"finetune_blocks={self.finetune_blocks!r}")
        if not isinstance(self.base_lr_factor, int | float) or not 0 < self.base_lr_factor <= 1:
            raise ValueError("base_lr_factor must be in (0, 1]; received "
                             f"base_lr_factor={self.base_lr_factor!r}")
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"augment names unknown augmentations {unknown}; choose from "
                             f"{', '.join(AUGMENTATIONS)}")
        if self.pseudo_label is not None and not (
            isinstance(self.pseudo_label, int | float) and 0.5 <= self.pseudo_label < 1
        ):
            raise ValueError("pseudo_label must be a probability threshold in [0.5, 1), such as "
                             f"0.9; received pseudo_label={self.pseudo_label!r}")
        if isinstance(self.metadata, str) or not all(isinstance(c, str) for c in self.metadata):
            raise TypeError("metadata must be a tuple of image-table column names such as "
                            f"('size',); received metadata={self.metadata!r}")


MODES = ("features", "finetune")
AUGMENTATIONS = ("flip", "rotate", "zoom", "brightness")


@dataclass(frozen=True, kw_only=True)
class Competition:
    """One Kaggle competition, declared in `competitions/<name>/competition.py`.

    Args:
        name: folder name (`fisheries`).
        slug: Kaggle competition slug (`the-nature-conservancy-fisheries-monitoring`).
        title: human title.
        classes: class names in submission column order.
        label_source: `folder` (`train/<CLASS>/*.jpg`) or `filename_prefix` (`train/cat.1.jpg`).
        train_folder: folder of training images relative to the data root.
        test_splits: test folders and their submission id rules.
        submission: submission format and sample submission files.
        recipe: default recipe on real data.
        demo_recipe: default recipe with `--demo` (no downloaded weights).
        demo: importable module generating the demo dataset (`kit.demo.fisheries`), or None.
        annotations: folder of bounding-box JSON files relative to the data root, or None.
        image_suffixes: file suffixes read as images.
        losses: custom losses by name, each a function `(y_true, y_pred) -> loss` written with
            `keras.ops`; a recipe names one with `loss=`.
        schedules: custom learning-rate schedules by name, each a function
            `(epoch, lr) -> lr`; a recipe names one with `schedule=`.
    """

    name: str
    slug: str
    title: str
    classes: tuple[str, ...]
    label_source: str
    test_splits: tuple[TestSplit, ...]
    submission: SubmissionFormat
    recipe: Recipe = field(default_factory=Recipe)
    demo_recipe: Recipe | None = None
    demo: str | None = None
    annotations: str | None = None
    train_folder: str = "train"
    image_suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png")
    losses: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    schedules: Mapping[str, Callable[[int, float], float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ValueError(
                f"classes must hold at least two distinct names; received classes={self.classes!r}"
            )
        if self.label_source not in LABEL_SOURCES:
            raise ValueError(
                f"label_source must be one of {', '.join(LABEL_SOURCES)}; "
                f"received label_source={self.label_source!r}"
            )
        names = [split.name for split in self.test_splits]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"test_splits must have distinct names; received {names!r}")
        for sample in self.submission.samples:
            unknown = sorted(set(sample.splits) - set(names))
            if unknown:
                raise ValueError(
                    f"sample submission {sample.file} names unknown test splits {unknown}; "
                    f"declared splits: {names}"
                )
        for kind, table in (("losses", self.losses), ("schedules", self.schedules)):
            for key, fn in dict(table).items():
                if not isinstance(key, str) or not callable(fn):
                    raise TypeError(
                        f"{kind} must map names to functions; received {key!r}: "
                        f"{type(fn).__name__}"
                    )
        sub = self.submission
        if sub.kind == "positive_class" and sub.positive_class not in self.classes:
            raise ValueError(
                f"positive_class={sub.positive_class!r} is not one of classes={self.classes!r}"
            )

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def submission_columns(self) -> tuple[str, ...]:
        """Value columns of a submission, in order."""
        if self.submission.kind == "per_class":
            return self.classes
        return (self.submission.value_column,)

    def split(self, name: str) -> TestSplit:
        for split in self.test_splits:
            if split.name == name:
                return split
        known = ", ".join(s.name for s in self.test_splits)
        raise KeyError(f"competition {self.name} has no test split {name!r}; known: {known}")

    def recipe_for(self, *, demo: bool) -> Recipe:
        if demo:
            if self.demo_recipe is None:
                raise ValueError(f"competition {self.name} declares no demo recipe")
            return self.demo_recipe
        return self.recipe


def competitions_roots() -> tuple[Path, ...]:
    """Folders searched for competitions by bare name: `./competitions`, then the repository's."""
    repo = Path(__file__).resolve().parent.parent / "competitions"
    here = Path.cwd() / "competitions"
    return tuple(dict.fromkeys([here.resolve(), repo]))


def known_competitions() -> tuple[str, ...]:
    names: set[str] = set()
    for root in competitions_roots():
        if root.is_dir():
            names.update(p.name for p in root.iterdir() if (p / COMPETITION_FILE).is_file())
    return tuple(sorted(names))


def _resolve_folder(ref: str | Path) -> Path:
    path = Path(ref).expanduser()
    if path.is_dir():
        return path.resolve()
    if len(path.parts) == 1:
        for root in competitions_roots():
            if (root / path.name).is_dir():
                return (root / path.name).resolve()
    known = known_competitions()
    close = difflib.get_close_matches(path.name, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"unknown competition {str(ref)!r}: no such folder.{hint} Known competitions: "
        f"{', '.join(known) or 'none'} (pass a folder holding {COMPETITION_FILE}, "
        "e.g. competitions/fisheries)"
    )


def load_competition(ref: str | Path) -> Competition:
    """Load `COMPETITION` from a competition folder (path or bare name).

    Example:
        >>> load_competition("competitions/fisheries").classes[:2]
        ('ALB', 'BET')
    """
    folder = _resolve_folder(ref)
    source = folder / COMPETITION_FILE
    if not source.is_file():
        raise ValueError(
            f"competition folder {folder} has no {COMPETITION_FILE}; a competition folder "
            "declares one Competition there"
        )
    spec = importlib.util.spec_from_file_location(f"kit_competition_{folder.name}", source)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    competition = getattr(module, "COMPETITION", None)
    if not isinstance(competition, Competition):
        raise TypeError(
            f"{source} must define COMPETITION = kit.competition.Competition(...); "
            f"received {type(competition).__name__}"
        )
    if competition.name != folder.name:
        competition = dataclasses.replace(competition, name=folder.name)
    return competition
