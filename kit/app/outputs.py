"""The last stages of a run: its configuration hash and run folder, the submission, the
predictions for reports and probes, and the run record.

The run folder is keyed by a hash of the competition, the data (every used id and content
digest) and the configuration (`run_config`); a re-run of the same command on the same data
finds the same folder and resumes its finished folds. `tests/test_app.py` pins the hash of a
fixed configuration, so a refactoring that changed it (and orphaned every run folder) fails.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kit import __version__
from kit.app.calibrate import Calibrated
from kit.app.features import Rows
from kit.app.honesty import Assessment
from kit.app.setup import RunSetup
from kit.app.table import Digests, ImageTable
from kit.core.atomic import atomic_write_text, remove_stale_temps
from kit.cv.task import CVResult
from kit.data.images import file_digest
from kit.features.backbones import ResolvedWeights
from kit.runs.layout import RunFolder
from kit.runs.record import RunRecord
from kit.scoring.metric import get_metric
from kit.scoring.metrics import log_loss
from kit.scoring.score import probs_to_submission
from kit.scoring.submission import write_submission

VERSIONED = ("tensorflow", "keras", "numpy", "pandas", "scikit-learn", "opencv-python-headless",
             "pillow")


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - any metadata failure means "unknown"
        return "unknown"


def versions() -> dict[str, str]:
    return {"kit": __version__, "python": platform.python_version(),
            **{m: _version(m) for m in VERSIONED}}


HASH_NEUTRAL = {"training": "fused"}
"""Recipe fields added after run folders were first keyed: left out of the configuration at
these values, so the runs made before them keep their folders (and resume)."""
NOT_HASHED = ("fold_kind", "calibration")
"""Left out always: what they decide is in the configuration already (the groups file and its
digest, `groups_declared`), whichever way it was asked for; or it acts after the folds (the
calibration), so the folds are the same whatever it is."""


def hashed_recipe(recipe) -> dict[str, Any]:
    """The recipe as the configuration holds it (see `HASH_NEUTRAL`, `NOT_HASHED`)."""
    return {k: v for k, v in dataclasses.asdict(recipe).items()
            if k not in NOT_HASHED and not (k in HASH_NEUTRAL and v == HASH_NEUTRAL[k])}


def run_config(setup: RunSetup, weights: ResolvedWeights) -> dict[str, Any]:
    """The configuration a run folder is keyed by (and the record's `config`)."""
    options = setup.options
    groups = options.groups_file
    config = {
        "recipe": hashed_recipe(setup.recipe),
        "weights_identity": weights.identity,
        "input_size": list(setup.input_size),
        "tta_variants": list(setup.variants),
        "sample": options.sample,
        "groups_file": str(groups) if groups else None,
        "groups_digest": file_digest(groups) if groups and groups.is_file() else None,
        "seeds": list(setup.seeds),
    }
    if options.groups_declared:  # only when set, so configs without it keep their hash
        config["groups_declared"] = True
    return config


def config_hash(competition: str, config: dict[str, Any], ids: list[str],
                digests: list[str]) -> str:
    """16 hex digits of the competition, the data (each row's id and digest) and `config`."""
    data_key = hashlib.sha1("\n".join(
        f"{i}\t{d}" for i, d in zip(ids, digests, strict=True)).encode()).hexdigest()
    return hashlib.sha1(json.dumps(
        {"competition": competition, "data": data_key, **config}, sort_keys=True
    ).encode()).hexdigest()[:16]


def run_folder(setup: RunSetup, table: ImageTable, rows: Rows, digests: Digests,
               config: dict[str, Any]) -> tuple[str, RunFolder]:
    """The config hash and the run folder it names (created)."""
    ids = list(rows.train["id"]) + list(table.test["id"])
    key = config_hash(setup.competition.name, config, ids, rows.train_digests + digests.test)
    folder = RunFolder(setup.paths.run_dir(setup.competition.name, key))
    folder.root.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder.root)
    return key, folder


def new_run_id(key: str) -> str:
    """`<UTC time>-<first 8 of the config hash>-<4 random hex digits>`: sorts by time, names
    the configuration, and two identical runs finishing in the same second still differ."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{key[:8]}-{secrets.token_hex(2)}"


def submission_writer(setup: RunSetup, table: ImageTable, test_probs: np.ndarray
                      ) -> Callable[[Path], Path]:
    """Writes the validated submission (checked against the sample submission) to a path."""
    competition = setup.competition
    frame = probs_to_submission(test_probs, list(table.test["id"]), competition)
    labels = competition.classes if competition.submission.kind == "label" else None

    def write(path: Path) -> Path:
        return write_submission(frame, path, sample=table.layout.sample,
                                id_column=competition.submission.id_column, classes=labels)

    return write


def save_predictions(folder: RunFolder, classes: list[str], rows: Rows, cv: CVResult,
                     test: pd.DataFrame, test_probs: np.ndarray) -> dict[str, str]:
    """`oof.csv` (path, label, out-of-fold probabilities) and `test.csv` (id, path, split,
    clipped probabilities) in the run folder, for reports and probes."""
    oof = pd.DataFrame(cv.oof, columns=classes)
    oof.insert(0, "label", [classes[i] for i in rows.labels])
    oof.insert(0, "path", list(rows.train["path"]))
    tests = pd.DataFrame(test_probs, columns=classes)
    tests.insert(0, "split", list(test["split"]))
    tests.insert(0, "path", list(test["path"]))
    tests.insert(0, "id", list(test["id"]))
    atomic_write_text(folder.oof_csv, oof.to_csv(index=False))
    atomic_write_text(folder.test_csv, tests.to_csv(index=False))
    return {"oof": str(folder.oof_csv), "test": str(folder.test_csv)}


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the stages of one run produced, for its record."""

    weights: ResolvedWeights
    config: dict[str, Any]
    key: str
    folder: RunFolder
    run_id: str
    submission: Path
    cv: CVResult
    calibrated: Calibrated
    assessment: Assessment
    feature_stats: dict[str, int]
    head_notes: dict[str, str]
    bbox_iou: float | None
    predictions: dict[str, str]
    timings: dict[str, float]
    executor: dict[str, Any] | None = None  # the cluster that ran it (None: this process)


def _scores(setup: RunSetup, rows: Rows, outcome: Outcome) -> dict[str, Any]:
    cv, calibrated = outcome.cv, outcome.calibrated
    prior = calibrated.prior_log_loss
    pseudo = setup.recipe.pseudo_label
    metric = get_metric(setup.competition.metric)
    return {
        "metric": metric.name, "cv_score": metric.score(rows.labels, cv.oof),
        "cv_log_loss": cv.cv_log_loss, "prior_log_loss": prior,
        "cv_vs_prior": cv.cv_log_loss / prior if prior > 0 else None,
        "clip": calibrated.applied_clip,
        "clipped_cv_log_loss": log_loss(rows.labels, calibrated.calibration.apply(cv.oof)),
        "fold_scores": tuple(f.summary() for f in cv.folds), "bbox_iou": outcome.bbox_iou,
        "pseudo_label": None if pseudo is None else {
            "threshold": pseudo, "n_pseudo_per_fold": [f.n_pseudo for f in cv.folds]},
        "clip_choice": calibrated.clip.to_dict(),
        "calibration": outcome.assessment.calibration_note(),
        "expected_private": outcome.assessment.expected_note(),
    }


def build_record(setup: RunSetup, table: ImageTable, rows: Rows, outcome: Outcome) -> RunRecord:
    """The run record of a finished run."""
    layout = table.layout
    return RunRecord(
        competition=setup.competition.name, run_id=outcome.run_id,
        submission=str(outcome.submission), n_train=int(len(rows.train)),
        n_test=int(len(table.test)), timings=outcome.timings, head=setup.recipe.head,
        mode=setup.recipe.mode, **_scores(setup, rows, outcome),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        data={"root": str(layout.root), "demo": setup.options.data.demo,
              "sample_submission": str(layout.sample_file),
              "test_splits": list(layout.test_splits)},
        config=outcome.config, config_hash=outcome.key, run_dir=str(outcome.folder.root),
        backbone={"name": setup.backbone.name, "preprocess": setup.backbone.preprocess,
                  "weights": outcome.weights.identity},
        head_inputs=outcome.head_notes, features=outcome.feature_stats,
        unreadable=rows.unreadable, versions=versions(), predictions=outcome.predictions,
        training=training_note(setup, outcome.cv), folds=setup.options.folds_note,
        executor=outcome.executor)


def training_note(setup: RunSetup, cv: CVResult) -> dict[str, str]:
    """How the heads were trained, and why per fold where the recipe asked for fused."""
    from kit.cv.fused import fused_reason

    recipe = setup.recipe
    note = {"path": cv.training}
    if cv.training != "fused":
        note["reason"] = ("--training per-fold" if recipe.training == "per-fold" else
                          fused_reason(head=recipe.head, loss=recipe.loss,
                                       schedule=recipe.schedule, mode=recipe.mode)
                          or "a distributed executor trains per fold")
    return note


__all__ = ["Outcome", "build_record", "config_hash", "new_run_id", "run_config", "run_folder",
           "save_predictions", "submission_writer", "versions"]
