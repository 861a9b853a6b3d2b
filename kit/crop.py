"""`--head crop`: predict the fish's box, crop it from the full-resolution image, classify the crop.

Per (seed, fold): the fold's bbox head (trained on the fold's training rows only) predicts a box
for every image; each box, widened by `MARGIN` of its size on every side and clipped to the
image, is cut from the full-resolution file and resized to the crop features' input size (the
recipe's, while the bbox stage may read larger images: `Recipe.box_input_size`); a dense
head is trained on the crops of the fold's training rows and predicts the crops of its
validation rows and of the test set. Nothing of the validation rows reaches the fold's
training: their boxes come from a model that never saw them, and only their crops' features
are read.

Crop features are cached like any other (a `FeatureStore` whose variant is `crop`), addressed
by the image's content digest and the crop rectangle, so a re-run, another fold that predicts
the same rectangle, or another seed reuses them. Each image file is decoded once for all the
rectangles asked of it. Crops are classified in the plain view only (no TTA).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from kit.features import SHARD_ROWS, FeatureStore
from kit.images import UnreadableImageError, load_image, resize

MARGIN = 0.25  # widen each side of a predicted box by this fraction of its width/height
MIN_SIDE = 0.1  # a crop side is at least this fraction of the image side

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels


def crop_rect(box: Sequence[float], size: tuple[int, int], *, margin: float = MARGIN,
              min_side: float = MIN_SIDE) -> Rect:
    """The crop rectangle of one predicted box `x, y, w, h` (image pixels) in an image of
    `size` (width, height): widened by `margin`, at least `min_side` of the image, clipped.

    Example:
        >>> crop_rect((100, 100, 40, 20), (400, 300))
        (90, 95, 150, 125)
    """
    width, height = size
    x, y, w, h = (float(v) for v in box)
    w, h = max(w, 0.0), max(h, 0.0)
    cx, cy = x + w / 2, y + h / 2
    half_w = max(w * (1 + 2 * margin), min_side * width) / 2
    half_h = max(h * (1 + 2 * margin), min_side * height) / 2
    x0 = int(np.clip(np.floor(cx - half_w), 0, width - 1))
    y0 = int(np.clip(np.floor(cy - half_h), 0, height - 1))
    x1 = int(np.clip(np.ceil(cx + half_w), x0 + 1, width))
    y1 = int(np.clip(np.ceil(cy + half_h), y0 + 1, height))
    return x0, y0, x1, y1


def crop_key(digest: str, rect: Rect) -> str:
    """The cache address of one crop: the image's content digest and the rectangle."""
    return hashlib.sha1(f"{digest}:{','.join(map(str, rect))}".encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class CropRequest:
    key: str
    file: str
    rect: Rect


def _decode_crops(file: str, rects: Sequence[Rect], size: tuple[int, int]
                  ) -> list[np.ndarray] | UnreadableImageError:
    try:
        image = load_image(Path(file))
    except UnreadableImageError as error:
        return error
    out = []
    for x0, y0, x1, y1 in rects:
        out.append(resize(np.ascontiguousarray(image[y0:y1, x0:x1]), size))
    return out


def extract_crops(store: FeatureStore, requests: Sequence[CropRequest], *,
                  forward: Callable[[np.ndarray], Any], batch_size: int = 32,
                  progress: Callable[[int], None] | None = None, workers: int = 2
                  ) -> dict[str, str]:
    """Compute and cache the features of every requested crop not yet in `store`.

    Files are decoded once each, in a thread pool, with all their rectangles cut together.
    Returns `{file: reason}` for unreadable files (their crops are left out).
    """
    missing = set(store.missing([r.key for r in requests]))
    by_file: dict[str, dict[str, Rect]] = {}
    for request in requests:
        if request.key in missing:
            by_file.setdefault(request.file, {})[request.key] = request.rect
    unreadable: dict[str, str] = {}
    keys: list[str] = []
    rows: list[np.ndarray] = []
    pending: list[tuple[str, np.ndarray]] = []
    size = store.key.input_size

    def flush(final: bool) -> None:
        nonlocal pending
        while len(pending) >= batch_size or (final and pending):
            batch, pending = pending[:batch_size], pending[batch_size:]
            features = np.asarray(forward(np.stack([img for _, img in batch])))
            keys.extend(k for k, _ in batch)
            rows.append(features)
        if sum(len(r) for r in rows) >= SHARD_ROWS or (final and rows):
            store.append(list(keys), np.concatenate(rows))
            keys.clear()
            rows.clear()

    files = list(by_file)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kit-crop") as pool:
        decoded = pool.map(lambda f: _decode_crops(f, list(by_file[f].values()), size), files)
        for file, crops in zip(files, decoded, strict=True):
            if isinstance(crops, UnreadableImageError):
                unreadable[file] = crops.reason
            else:
                pending.extend(zip(by_file[file], crops, strict=True))
                flush(final=False)
            if progress is not None:
                progress(1)
    flush(final=True)
    return unreadable


@dataclass(frozen=True, kw_only=True)
class CropImages:
    """The files behind the rows of an EnsembleData: digests, files and stored sizes."""

    train_digests: Sequence[str]
    train_files: Sequence[str]
    train_sizes: Sequence[tuple[int, int]]
    test_digests: Sequence[str]
    test_files: Sequence[str]
    test_sizes: Sequence[tuple[int, int]]


def crop_cross_validate(data, folds: np.ndarray, *, seeds: Sequence[int], run_dir: Path,
                        head, train, images: CropImages, input_size: tuple[int, int],
                        store: FeatureStore, forward: Callable[[], Callable], batch_size: int,
                        log: Callable[[str], None] = print):
    """K folds x seeds of bbox -> crop -> dense (see the module docstring); a `CVResult`.

    Args:
        data: EnsembleData of the full images, with `boxes_train` box targets.
        folds: fold number per training row.
        seeds: seeds; each (seed, fold) has its own bbox and crop heads.
        run_dir: the run folder; the bbox stage writes `bbox/`, the crop stage `crop/`.
        head: HeadConfig of both heads.
        train: TrainConfig of both heads.
        images: the files behind the rows, for cropping at full resolution.
        input_size: the input size the bbox head's boxes are in.
        store: where crop features are cached; crops are resized to its key's input size.
        forward: builds the compiled backbone forward pass (only called when crops are missing).
        batch_size: crops per forward pass.
        log: progress lines.
    """
    from tqdm.auto import tqdm

    from kit.annotations import boxes_to_image
    from kit.ensemble import (
        EnsembleData,
        cross_validate,
        fold_tasks,
        gather,
        head_trainer,
        run_fold,
    )
    from kit.heads import head_registry

    registry = head_registry()
    bbox_cv = cross_validate(data, folds, seeds=seeds, run_dir=run_dir / "bbox",
                             build=registry.get("bbox"), head=head, train=train)
    tasks = fold_tasks(np.asarray(folds), seeds, run_dir / "bbox")
    plans: list[tuple[list[str], list[str]]] = []
    requests: dict[str, CropRequest] = {}
    for task in tasks:
        keys = []
        for split, digests, files, sizes in (
            ("train", images.train_digests, images.train_files, images.train_sizes),
            ("test", images.test_digests, images.test_files, images.test_sizes),
        ):
            if not len(digests):
                keys.append([])
                continue
            boxes = boxes_to_image(np.load(task.folder / f"box_{split}.npy"), sizes, input_size)
            split_keys = []
            for digest, file, size, box in zip(digests, files, sizes, boxes, strict=True):
                rect = crop_rect(box, size)
                key = crop_key(digest, rect)
                requests.setdefault(key, CropRequest(key=key, file=file, rect=rect))
                split_keys.append(key)
            keys.append(split_keys)
        plans.append((keys[0], keys[1]))
    todo = store.missing(list(requests))
    if todo:
        todo_set = set(todo)
        wanted = [r for k, r in requests.items() if k in todo_set]
        n_files = len({r.file for r in wanted})
        with tqdm(total=n_files, desc="crops", unit="img", disable=None, leave=False) as bar:
            unreadable = extract_crops(store, wanted, forward=forward(), batch_size=batch_size,
                                       progress=bar.update)
        if unreadable:
            raise ValueError(f"cannot crop {len(unreadable)} images that were readable before: "
                             f"{sorted(unreadable)[:3]}")
    log(f"crop: {len(requests)} crops ({len(todo)} computed, {len(requests) - len(todo)} "
        "reused from the cache)")
    dense = registry.get("dense")
    trainer = None
    results = []
    for task, (train_keys, test_keys) in zip(tasks, plans, strict=True):
        x_test = store.get(test_keys) if test_keys else np.zeros((0,), np.float32)
        fold_data = EnsembleData(variants=("plain",), x_train={"plain": store.get(train_keys)},
                                 y_train=data.y_train, x_test={"plain": x_test},
                                 n_classes=data.n_classes)
        trainer = trainer or head_trainer(fold_data, dense, head)
        crop_task = replace(task, folder=run_dir / "crop" / f"seed{task.seed}" / f"fold{task.fold}")
        results.append(run_fold(crop_task, data=fold_data, build=dense, head=head, train=train,
                                trainer=trainer))
    return gather(results, data.y_train, n_classes=data.n_classes, n_seeds=len(seeds),
                  box_oof=bbox_cv.box_oof)
