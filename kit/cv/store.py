"""A finished fold on disk: written once with `done.json` last, loaded instead of retrained."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from kit.core.atomic import atomic_path, atomic_write_text, remove_stale_temps
from kit.cv.task import FoldResult, FoldTask


def load_fold(task: FoldTask) -> FoldResult:
    """The saved result of a finished fold (its `done.json` exists), marked resumed."""
    files = task.files
    meta = json.loads(files.done.read_text())
    box_file = files.array("box_oof")
    return FoldResult(fold=task.fold, seed=task.seed, val_index=task.val_index,
                      oof=np.load(files.array("oof")), test=np.load(files.array("test")),
                      log_loss=meta["log_loss"], best_epoch=meta["best_epoch"],
                      seconds=meta["seconds"], resumed=True,
                      box_oof=np.load(box_file) if box_file.is_file() else None,
                      n_pseudo=meta.get("n_pseudo"))


def prepare_fold(task: FoldTask) -> None:
    """The fold's folder, created, without what a killed earlier attempt left half-written."""
    task.files.path.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(task.files.path)


def save_fold(task: FoldTask, *, model: Any, arrays: dict[str, np.ndarray],
              history: dict[str, list[float]], done: dict) -> None:
    """Write a finished fold: weights, `<name>.npy` per array, `history.json`, and `done.json`
    last (the commit marker `load_fold` and every resume rely on)."""
    files = task.files
    files.path.mkdir(parents=True, exist_ok=True)
    with atomic_path(files.weights) as tmp:
        model.save_weights(str(tmp))
    for name, array in arrays.items():
        with atomic_path(files.array(name)) as tmp:
            np.save(tmp, array)
    atomic_write_text(files.history, json.dumps(history))
    atomic_write_text(files.done, json.dumps(done))


__all__ = ["load_fold", "prepare_fold", "save_fold"]
