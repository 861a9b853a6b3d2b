"""`--head crop`: predict the fish's box, crop it from the full-resolution image, classify the crop.

Per (seed, fold): the fold's bbox head (trained on the fold's training rows only) predicts a box
for every image; each box, widened by `kit.features.crops.MARGIN` of its size on every side and
clipped to the image, is cut from the full-resolution file and resized to the crop features'
input size (the recipe's, while the bbox stage may read larger images:
`Recipe.box_input_size`); a dense head is trained on the crops of the fold's training rows and
predicts the crops of its validation rows and of the test set. Nothing of the validation rows
reaches the fold's training: their boxes come from a model that never saw them, and only their
crops' features are read. Both stages run through the one fold driver (`kit.cv.driver`); crops
are classified in the plain view only (no TTA).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from kit.core.errors import InputError
from kit.cv.data import EnsembleData, PseudoRows
from kit.cv.driver import run_folds
from kit.cv.executors import Executor
from kit.cv.heads import HeadFolds, head_trainer, run_fold
from kit.cv.task import CVResult, FoldResult, FoldTask, fold_tasks
from kit.data.annotations import boxes_to_image
from kit.features.cache import FeatureStore
from kit.features.crops import CropRequest, crop_key, crop_rect, extract_crops
from kit.models.heads import HeadConfig, head_registry
from kit.models.train import HeadTrainer, TrainConfig
from kit.runs.layout import RunFolder

BBOX_STAGE, CROP_STAGE = "bbox", "crop"


@dataclass(frozen=True, kw_only=True)
class CropImages:
    """The files behind the rows of an EnsembleData: digests, files and stored sizes."""

    train_digests: Sequence[str]
    train_files: Sequence[str]
    train_sizes: Sequence[tuple[int, int]]
    test_digests: Sequence[str]
    test_files: Sequence[str]
    test_sizes: Sequence[tuple[int, int]]


@dataclass(frozen=True, kw_only=True)
class CropSetup:
    """How crops are made and cached: the store (its key's input size is the crops' size), the
    forward pass builder (called only when crops are missing) and the batch size."""

    store: FeatureStore
    forward: Callable[[], Callable]
    batch_size: int
    input_size: tuple[int, int]  # the size the bbox head's boxes are in


def _split_keys(boxes: np.ndarray, digests: Sequence[str], files: Sequence[str],
                sizes: Sequence[tuple[int, int]], requests: dict[str, CropRequest]) -> list[str]:
    keys = []
    for digest, file, size, box in zip(digests, files, sizes, boxes, strict=True):
        rect = crop_rect(box, size)
        key = crop_key(digest, rect)
        requests.setdefault(key, CropRequest(key=key, file=file, rect=rect))
        keys.append(key)
    return keys


def plan_crops(tasks: Sequence[FoldTask], images: CropImages, input_size: tuple[int, int]
               ) -> tuple[list[tuple[list[str], list[str]]], dict[str, CropRequest]]:
    """Per bbox task: the crop keys of every training and test row, from the boxes the task's
    bbox head predicted (`box_train.npy`, `box_test.npy`); and every distinct crop asked for."""
    plans, requests = [], {}
    for task in tasks:
        keys = []
        for split, digests, files, sizes in (
            ("train", images.train_digests, images.train_files, images.train_sizes),
            ("test", images.test_digests, images.test_files, images.test_sizes),
        ):
            if not len(digests):
                keys.append([])
                continue
            boxes = boxes_to_image(np.load(task.files.array(f"box_{split}")), sizes, input_size)
            keys.append(_split_keys(boxes, digests, files, sizes, requests))
        plans.append((keys[0], keys[1]))
    return plans, requests


def extract_missing_crops(requests: dict[str, CropRequest], setup: CropSetup,
                          log: Callable[[str], None]) -> None:
    """Compute and cache the features of every crop not in the store yet."""
    todo = setup.store.missing(list(requests))
    if todo:
        todo_set = set(todo)
        wanted = [r for k, r in requests.items() if k in todo_set]
        n_files = len({r.file for r in wanted})
        with tqdm(total=n_files, desc="crops", unit="img", disable=None, leave=False) as bar:
            unreadable = extract_crops(setup.store, wanted, forward=setup.forward(),
                                       batch_size=setup.batch_size, progress=bar.update)
        if unreadable:
            raise InputError(f"cannot crop {len(unreadable)} images that were readable before: "
                             f"{sorted(unreadable)[:3]}")
    log(f"crop: {len(requests)} crops ({len(todo)} computed, {len(requests) - len(todo)} "
        "reused from the cache)")


@dataclass(kw_only=True)
class CropFolds:
    """The `FoldFit` of the crop stage: a dense head on each task's own crops."""

    store: FeatureStore
    plans: dict[tuple[int, int], tuple[list[str], list[str]]]  # (seed, fold) -> keys
    y: np.ndarray
    n_classes: int
    head: HeadConfig
    train: TrainConfig
    _trainer: HeadTrainer | None = field(default=None, repr=False)

    def __call__(self, task: FoldTask, pseudo: PseudoRows | None = None) -> FoldResult:
        train_keys, test_keys = self.plans[(task.seed, task.fold)]
        x_test = self.store.get(test_keys) if test_keys else np.zeros((0,), np.float32)
        data = EnsembleData(variants=("plain",), x_train={"plain": self.store.get(train_keys)},
                            y_train=self.y, x_test={"plain": x_test}, n_classes=self.n_classes)
        dense = head_registry().get("dense")
        if self._trainer is None:  # every fold's crops have one shape: one compiled head
            self._trainer = head_trainer(data, dense, self.head)
        return run_fold(task, data=data, build=dense, head=self.head, train=self.train,
                        trainer=self._trainer, pseudo=pseudo)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_trainer": None}


def crop_cross_validate(data: EnsembleData, folds: np.ndarray, *, seeds: Sequence[int],
                        folder: RunFolder, head: HeadConfig, train: TrainConfig,
                        images: CropImages, setup: CropSetup, executor: Executor | None = None,
                        log: Callable[[str], None] = print) -> CVResult:
    """K folds x seeds of bbox -> crop -> dense (see the module docstring); a `CVResult`.

    `data` holds the full images' features with `boxes_train` box targets; the bbox stage
    writes `<folder>/bbox/`, the crop stage `<folder>/crop/`.
    """
    common = {"n_classes": data.n_classes, "seeds": seeds, "executor": executor}
    bbox_cv = run_folds(HeadFolds(data=data, build=head_registry().get("bbox"), head=head,
                                  train=train),
                        folds, data.y_train, folder=folder.stage(BBOX_STAGE),
                        description="bbox folds", **common)
    tasks = fold_tasks(np.asarray(folds), seeds, folder.stage(BBOX_STAGE))
    plans, requests = plan_crops(tasks, images, setup.input_size)
    extract_missing_crops(requests, setup, log)
    fit = CropFolds(store=setup.store, y=data.y_train, n_classes=data.n_classes, head=head,
                    train=train,
                    plans={(t.seed, t.fold): plan for t, plan in zip(tasks, plans, strict=True)})
    cv = run_folds(fit, folds, data.y_train, folder=folder.stage(CROP_STAGE),
                   description="crop folds", **common)
    return CVResult(oof=cv.oof, test=cv.test, folds=cv.folds, cv_log_loss=cv.cv_log_loss,
                    box_oof=bbox_cv.box_oof)


__all__ = ["CropFolds", "CropImages", "CropSetup", "crop_cross_validate", "plan_crops"]
