"""Stages 4 and 5 of a run: the arrays the heads train on, and the training strategy that runs
every (seed, fold) through the one fold driver (`kit.cv.driver.run_folds`).

A strategy is a plain function `(TrainingInputs) -> CVResult`, registered by name:

| strategy | when | what a fold trains |
|---|---|---|
| `heads` | `--mode features` (the default) | a head on cached features (`kit.cv.heads`) |
| `crop` | `--head crop` | a bbox head, then a dense head on crops (`kit.cv.crop`) |
| `finetune` | `--mode finetune` | the base's last blocks and the head on images (`kit.cv.finetune`) |

Pseudo-labels (`--pseudo-label`) are a second stage of the `heads` strategy, run by the driver.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kit.app.features import FeatureSet, Rows, feature_store
from kit.app.setup import Log, RunSetup
from kit.app.table import ImageTable, sizes
from kit.core.errors import InputError
from kit.core.registry import Registry
from kit.cv.data import BoxGeometry, EnsembleData
from kit.cv.driver import run_folds
from kit.cv.executors import Executor
from kit.cv.task import CVResult
from kit.data.annotations import box_targets, read_annotations
from kit.data.metadata import MetadataEncoder
from kit.features.backbones import ResolvedWeights
from kit.runs.layout import RunFolder


@dataclass(frozen=True, kw_only=True)
class HeadInputs:
    """What a head needs beyond features: EnsembleData fields, notes for the run record, and
    the (n, 5) box targets (x, y, w, h, has_box) when the head learns boxes."""

    arrays: dict[str, np.ndarray | BoxGeometry]
    notes: dict[str, str]
    boxes: np.ndarray | None = None


def _metadata(setup: RunSetup, train: pd.DataFrame, test: pd.DataFrame, log: Log
              ) -> tuple[dict[str, np.ndarray], str]:
    encoder = MetadataEncoder.fit(train, setup.recipe.metadata)
    arrays = {"meta_train": encoder.transform(train), "meta_test": encoder.transform(test)}
    unseen = int((arrays["meta_test"].sum(axis=1) == 0).sum()) if len(test) else 0
    log(f"metadata-merge: {encoder.describe()}; {unseen} of {len(test)} test images have a "
        "value never seen in train (encoded as zeros)")
    return arrays, encoder.describe()


def _boxes(setup: RunSetup, table: ImageTable, train: pd.DataFrame, test: pd.DataFrame,
           log: Log) -> tuple[np.ndarray, BoxGeometry, str]:
    folder = table.layout.root / setup.competition.annotations
    annotations = read_annotations(folder, setup.competition.classes, list(train["path"]))
    log(annotations.describe())
    if not annotations.boxes:
        raise InputError(
            f"the {setup.head_spec.name} head needs bounding boxes and {folder} holds none for "
            "these training images; add the community <class>_labels.json files there")
    coords, mask = box_targets(annotations.largest(), list(train["path"]), sizes(train),
                               setup.input_size)
    boxes = np.concatenate([coords, mask[:, None].astype(np.float32)], axis=1)
    geometry = BoxGeometry(
        input_size=setup.input_size, views=setup.box_views or setup.variants[:1],
        train_sizes=np.array(sizes(train), dtype=np.int64).reshape(-1, 2),
        test_sizes=np.array(sizes(test), dtype=np.int64).reshape(-1, 2))
    return boxes, geometry, annotations.describe()


def head_inputs(setup: RunSetup, table: ImageTable, rows: Rows, log: Log) -> HeadInputs:
    """The metadata and box targets the head needs beyond its features (pure data work)."""
    train, test = rows.train, table.test[rows.test_ok].reset_index(drop=True)
    arrays: dict[str, np.ndarray | BoxGeometry] = {}
    notes: dict[str, str] = {}
    boxes = None
    if setup.head_spec.meta:
        meta, notes["metadata"] = _metadata(setup, train, test, log)
        arrays.update(meta)
    if setup.head_spec.boxes:
        boxes, arrays["box_geometry"], notes["annotations"] = _boxes(setup, table, train, test,
                                                                     log)
        arrays["boxes_train"] = boxes
    return HeadInputs(arrays=arrays, notes=notes, boxes=boxes)


def ensemble_data(setup: RunSetup, features: FeatureSet, rows: Rows, extras: HeadInputs
                  ) -> EnsembleData:
    """Training and test rows of every variant (and box view): lazy rows of the feature cache,
    read batch by batch where they are used (decoded images, to fine-tune, are in memory)."""
    test = rows.test_digests
    data = EnsembleData(
        variants=setup.variants,
        x_train={v: s.rows(rows.train_digests) for v, s in features.stores.items()},
        y_train=rows.labels,
        x_test={v: (features.stores[v].rows(test) if test else np.zeros((0,), np.float32))
                for v in setup.variants},
        n_classes=setup.competition.n_classes)
    return dataclasses.replace(data, **extras.arrays)


@dataclass(frozen=True, kw_only=True)
class TrainingInputs:
    """Everything a strategy reads: the run, its arrays and folds, where to write, and how."""

    setup: RunSetup
    data: EnsembleData
    folds: np.ndarray
    folder: RunFolder
    weights: ResolvedWeights
    rows: Rows
    table: ImageTable
    log: Log
    executor: Executor | None = None


Strategy = Callable[[TrainingInputs], CVResult]


def fused_heads(setup: RunSetup, data: EnsembleData):
    """The fused path for this run's heads, or None where they train per fold."""
    from kit.cv.fused import FusedHeads, fused_reason

    recipe = setup.recipe
    if recipe.training != "fused" or fused_reason(head=recipe.head, loss=recipe.loss,
                                                  schedule=recipe.schedule, mode=recipe.mode):
        return None
    return FusedHeads(data=data, build=setup.head_spec, head=setup.head_config,
                      train=setup.train_config)


def train_heads(inputs: TrainingInputs) -> CVResult:
    """Heads on cached features (fused where they can be), with pseudo-labels when asked."""
    from kit.cv.heads import HeadFolds

    setup = inputs.setup
    fit = HeadFolds(data=inputs.data, build=setup.head_spec, head=setup.head_config,
                    train=setup.train_config)
    return run_folds(fit, inputs.folds, inputs.data.y_train, n_classes=inputs.data.n_classes,
                     seeds=setup.seeds, folder=inputs.folder, executor=inputs.executor,
                     pseudo_label=setup.recipe.pseudo_label,
                     fused=fused_heads(setup, inputs.data))


def train_crop(inputs: TrainingInputs) -> CVResult:
    """bbox head -> crops of the full-resolution images -> dense head (kit.cv.crop)."""
    from kit.cv.crop import CropImages, CropSetup, crop_cross_validate

    setup, rows = inputs.setup, inputs.rows
    size = setup.crop_input_size
    test = inputs.table.test[rows.test_ok].reset_index(drop=True)

    def forward():
        from kit.features.backbones import build_model, preprocess_function
        from kit.features.extract import compiled_forward

        model = build_model(setup.backbone, inputs.weights, size)
        return compiled_forward(model, preprocess_function(setup.backbone), size)

    images = CropImages(
        train_digests=rows.train_digests, train_files=list(rows.train["file"]),
        train_sizes=sizes(rows.train), test_digests=rows.test_digests,
        test_files=list(test["file"]), test_sizes=sizes(test))
    crops = CropSetup(store=feature_store(setup, inputs.weights, "crop", size), forward=forward,
                      batch_size=setup.recipe.batch_size, input_size=setup.input_size)
    return crop_cross_validate(
        inputs.data, inputs.folds, seeds=setup.seeds, folder=inputs.folder,
        head=setup.head_config, train=setup.train_config, images=images, setup=crops,
        executor=inputs.executor, log=inputs.log)


def train_finetune(inputs: TrainingInputs) -> CVResult:
    """Every (seed, fold) trains the base's last blocks and the head on images, resumable
    mid-fold (kit.cv.finetune)."""
    from kit.cv.finetune import FinetuneFit, FinetuneFolds, FinetuneModel
    from kit.models.finetune import FinetuneConfig
    from kit.models.losses import resolve_loss
    from kit.models.schedules import lr_callbacks

    setup, data, recipe = inputs.setup, inputs.data, inputs.setup.recipe
    competition = setup.competition
    config = FinetuneConfig(blocks=recipe.finetune_blocks, base_lr_factor=recipe.base_lr_factor,
                            augment=tuple(recipe.augment))
    model = FinetuneModel(backbone=setup.backbone, weights=inputs.weights,
                          input_size=setup.input_size, head_builder=setup.head_spec,
                          head_config=setup.head_config, n_classes=competition.n_classes,
                          config=config)
    fit = FinetuneFit(
        train=setup.train_config, config=config,
        loss=resolve_loss(recipe.loss, extra=competition.losses),
        lr_callbacks=functools.partial(lr_callbacks, recipe.schedule, patience=recipe.patience,
                                       extra=competition.schedules))
    folds = FinetuneFolds(model=model, fit=fit, images=data.x_train, y=data.y_train,
                          test_images=data.x_test, variants=data.variants, log=inputs.log)
    return run_folds(folds, inputs.folds, data.y_train, n_classes=data.n_classes,
                     seeds=setup.seeds, folder=inputs.folder, executor=inputs.executor,
                     description="fine-tune folds")


def strategy_registry() -> Registry[Strategy]:
    registry: Registry[Strategy] = Registry("training strategy")
    registry.register("heads", train_heads)
    registry.register("crop", train_crop)
    registry.register("finetune", train_finetune)
    return registry


def strategy_name(setup: RunSetup) -> str:
    """Which strategy trains this run's folds."""
    if setup.recipe.mode == "finetune":
        return "finetune"
    return "crop" if setup.recipe.head == "crop" else "heads"


__all__ = ["HeadInputs", "Strategy", "TrainingInputs", "ensemble_data", "fused_heads",
           "head_inputs",
           "strategy_name", "strategy_registry", "train_crop", "train_finetune", "train_heads"]
