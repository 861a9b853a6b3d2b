"""What a `kit run` is asked to do, and everything derived from it once, before any data work.

`RunOptions` is the request (competition, data, recipe, folders, sample, groups, seeds);
`RunSetup` resolves it: the backbone and head records, the input sizes, TTA variants and box
views, the head and training configs. Building a `RunSetup` validates the recipe
(`kit.app.check.check_recipe`), so a bad option fails here, not after feature extraction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kit.app.check import check_recipe
from kit.competition import Competition, Recipe
from kit.core.paths import Paths
from kit.data.tta import variants as tta_variants
from kit.features.backbones import Backbone, check_input_size, get_backbone
from kit.models.heads import HeadConfig, HeadSpec, head_registry
from kit.models.train import TrainConfig

Log = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """Where the images come from: a folder in the Kaggle layout, generated demo data or not."""

    root: Path
    demo: bool = False
    demo_preset: str = "full"


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    competition: Competition
    data: DataSource
    recipe: Recipe
    paths: Paths
    sample: int | None = None
    groups_file: Path | None = None
    groups_declared: bool = False  # groups_file is the competition's CsvGroups file
    folds_note: dict | None = None  # {"kind", "reason", ...}: how the folds were decided
    seeds: tuple[int, ...] | None = None
    allow_missing_classes: bool = False


@dataclass
class Timings:
    """Seconds per stage, in the order the stages ran (the run record's `timings`)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


@dataclass(frozen=True, kw_only=True)
class RunSetup:
    """The resolved run: records, sizes, views and configs derived from the options."""

    options: RunOptions
    backbone: Backbone
    head_spec: HeadSpec
    input_size: tuple[int, int]  # the size the head's features are extracted at
    crop_input_size: tuple[int, int]  # the recipe's size: the crop head classifies crops at it
    variants: tuple[str, ...]  # TTA variants, the plain pass first
    box_views: tuple[str, ...]  # views the box heads also train on (kit.data.tta.map_boxes)
    head_config: HeadConfig
    train_config: TrainConfig
    seeds: tuple[int, ...]

    @property
    def competition(self) -> Competition:
        return self.options.competition

    @property
    def recipe(self) -> Recipe:
        return self.options.recipe

    @property
    def paths(self) -> Paths:
        return self.options.paths


def _input_size(backbone: Backbone, spec: HeadSpec, recipe: Recipe
                ) -> tuple[tuple[int, int], tuple[int, int]]:
    """(the head's input size, the recipe's input size)."""
    recipe_size = check_input_size(backbone, tuple(recipe.input_size or backbone.input_size))
    size = {"recipe": recipe_size, "fcn": recipe.fcn_input_size,
            "box": recipe.box_input_size or recipe_size}[spec.input_size]
    return check_input_size(backbone, tuple(size)), recipe_size


def train_config(recipe: Recipe, competition: Competition) -> TrainConfig:
    """The head's optimisation settings from the recipe (and the competition's own losses)."""
    return TrainConfig(
        epochs=recipe.epochs, batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
        patience=recipe.patience, seed=recipe.seed, loss=recipe.loss, schedule=recipe.schedule,
        losses=competition.losses, schedules=competition.schedules,
        class_loss_weight=recipe.class_loss_weight, box_loss_weight=recipe.box_loss_weight)


def resolve_setup(options: RunOptions) -> RunSetup:
    """Check the recipe and derive everything the stages need from the options."""
    recipe, competition = options.recipe, options.competition
    check_recipe(recipe, competition)
    backbone = get_backbone(recipe.backbone)
    spec = head_registry().get(recipe.head)
    input_size, recipe_size = _input_size(backbone, spec, recipe)
    variants = tta_variants(recipe.tta)
    box_views = (tta_variants(recipe.box_variants)
                 if spec.boxes and recipe.mode == "features" else ())
    return RunSetup(
        options=options, backbone=backbone, head_spec=spec, input_size=input_size,
        crop_input_size=recipe_size, variants=variants, box_views=box_views,
        head_config=HeadConfig(pooling=recipe.pooling, hidden=recipe.hidden,
                               dropout=recipe.dropout, input_size=input_size),
        train_config=train_config(recipe, competition),
        seeds=options.seeds or (recipe.seed,))


__all__ = ["DataSource", "Log", "RunOptions", "RunSetup", "Timings", "resolve_setup",
           "train_config"]
