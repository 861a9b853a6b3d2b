"""`kit run` as stages: a competition from images to a validated submission and its run record.

    layout -> image table -> content digests -> features (one cache per TTA variant)
    -> usable rows -> folds -> training strategy (K folds x seeds through the fold driver)
    -> calibration (clip chosen on OOF) -> submission -> run record

Each stage is a function of its own module in `kit.app` with a unit test; this module only calls
them in order and times them. Everything expensive is cached (features by content, folds by
config hash), so a re-run after a crash resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.app.calibrate import calibrate
from kit.app.features import FeatureSet, Rows, decode_images, extract_features, usable_rows
from kit.app.folds import check_folds, choose_folds, training_groups
from kit.app.honesty import Assessment, assess
from kit.app.outputs import (
    Outcome,
    build_record,
    new_run_id,
    run_config,
    run_folder,
    save_predictions,
    submission_writer,
)
from kit.app.setup import Log, RunOptions, RunSetup, Timings, resolve_setup
from kit.app.table import Digests, ImageTable, hash_images, read_table
from kit.app.training import (
    TrainingInputs,
    ensemble_data,
    head_inputs,
    strategy_name,
    strategy_registry,
)
from kit.core.errors import InputError
from kit.cv.executors import Executor, describe_executor
from kit.data.annotations import iou
from kit.data.labels import missing_classes
from kit.features.backbones import ResolvedWeights, resolve_weights
from kit.runs.publish import abandon, commit, stage


@dataclass(frozen=True, kw_only=True)
class RunResult:
    run_id: str
    submission: Path
    record: Path
    summary: dict
    train_labels: np.ndarray  # class indexes of the training images the heads learned from


def mean_box_iou(predicted: np.ndarray, targets: np.ndarray) -> float:
    """Mean IoU of predicted boxes against the (n, 5) targets, over the rows that have a box."""
    mask = targets[:, 4] > 0
    if not mask.any():
        raise InputError("no training image has a box: the mean IoU is undefined")
    return float(iou(predicted[mask], targets[mask, :4]).mean())


def weights_for(setup: RunSetup, timings: Timings, log: Log) -> ResolvedWeights:
    """The base's weights; `demo` pretrains (once, cached) the demo base on its own corpus."""
    weights = setup.recipe.weights
    if weights == "demo":
        from kit.demo.pretrain import ensure_demo_weights

        with timings("pretrain_demo_base"):
            weights = str(ensure_demo_weights(setup.competition, setup.paths,
                                              preset=setup.options.data.demo_preset, log=log))
    return resolve_weights(setup.backbone, weights, seed=setup.recipe.seed)


def _warn_missing(table: ImageTable, competition, log: Log) -> None:
    missing = missing_classes(competition, list(table.train["label"]))
    if missing:
        log(f"warning: classes {missing} have no training images (--allow-missing-classes): "
            "their submission columns get the smoothed prior")


def _announce(setup: RunSetup, table: ImageTable, log: Log) -> None:
    size = setup.input_size
    views = f"; box views {', '.join(setup.box_views)}" if setup.box_views else ""
    note = setup.options.folds_note
    kind = f" {note['kind']}" if note else ""
    log(f"{setup.competition.name}: {len(table.train)} train and {len(table.test)} test images "
        f"from {table.layout.root}; backbone {setup.backbone.name} {size[0]}x{size[1]}, "
        f"{setup.recipe.folds}{kind} folds, TTA {len(setup.variants)}{views}")
    if note:
        log(f"folds: {note['kind']}: {note['reason']}")


def _features(setup: RunSetup, weights: ResolvedWeights, table: ImageTable,
              digests: Digests, executor: Executor | None = None) -> FeatureSet:
    if setup.recipe.mode == "finetune":
        return decode_images(setup, table, digests)
    return extract_features(setup, weights, table, digests, executor=executor)


def _train(setup: RunSetup, inputs: TrainingInputs, rows: Rows, log: Log):
    """Folds, then the strategy; and the mean IoU of out-of-fold boxes after a box head."""
    cv = strategy_registry().get(strategy_name(setup))(inputs)
    boxes = inputs.data.boxes_train
    if cv.box_oof is None or boxes is None:
        return cv, None
    bbox_iou = mean_box_iou(cv.box_oof, boxes)
    log(f"bbox: mean IoU {bbox_iou:.3f} of out-of-fold boxes on {int(boxes[:, 4].sum())} "
        "boxed training images")
    return cv, bbox_iou


def _announce_expected(assessment: Assessment, log: Log) -> None:
    e, note = assessment.expected, assessment.calibration
    applied = "" if note.kind == "none" else f" {note.value:.4g}"
    log(f"expected private \u2248 {e.value:.4f} [{e.low:.4f}, {e.high:.4f}] ({e.metric}; "
        f"{assessment.reference} OOF rows, calibration {note.kind}{applied}, "
        f"{e.n_clusters} clusters, {e.n_private} private rows)")


def execute(setup: RunSetup, *, log: Log = print, executor: Executor | None = None
            ) -> RunResult:
    """Run every stage; see the module docstring."""
    total, timings = time.perf_counter(), Timings()
    competition, options = setup.competition, setup.options
    with timings("read_data"):
        table = read_table(competition, options.data.root, sample=options.sample,
                           seed=setup.recipe.seed,
                           allow_missing_classes=options.allow_missing_classes)
        _warn_missing(table, competition, log)
        groups = training_groups(setup, table)
        check_folds(setup, table, groups)  # before any feature work
    weights = weights_for(setup, timings, log)
    _announce(setup, table, log)
    with timings("hash"):
        digests = hash_images(table)
    with timings("images" if setup.recipe.mode == "finetune" else "features"):
        features = _features(setup, weights, table, digests, executor)
    rows = usable_rows(table, digests, features, competition.classes, log)
    config = run_config(setup, weights)
    key, folder = run_folder(setup, table, rows, digests, config)
    with timings("load_features"):
        extras = head_inputs(setup, table, rows, log)
        data = ensemble_data(setup, features, rows, extras)
    with timings("folds"):
        fold_groups = None if groups is None else groups[rows.train_ok]
        folds = choose_folds(folder, rows.train, rows.labels, n_folds=setup.recipe.folds,
                             seed=setup.recipe.seed, groups=fold_groups)
        inputs = TrainingInputs(setup=setup, data=data, folds=folds, folder=folder,
                                weights=weights, rows=rows, table=table, log=log,
                                executor=executor)
        cv, bbox_iou = _train(setup, inputs, rows, log)
    with timings("honesty"):
        assessment = assess(inputs, cv, clusters=fold_groups,
                            test_split=table.test["split"].to_numpy())
        _announce_expected(assessment, log)
    with timings("submission"):
        calibrated = calibrate(rows.labels, cv, rows.test_ok, n_classes=competition.n_classes,
                               calibration=assessment.calibration, metric=competition.metric)
        run_id = new_run_id(key)
        pending = stage(setup.paths.submission_dir(competition.name), run_id,
                        submission_writer(setup, table, calibrated.test_probs))
    timings.seconds["total"] = round(time.perf_counter() - total, 3)
    try:
        predictions = save_predictions(folder, list(competition.classes), rows, cv,
                                       table.test, calibrated.test_probs)
        record = build_record(setup, table, rows, Outcome(
            weights=weights, config=config, key=key, folder=folder, run_id=run_id,
            submission=pending.submission, cv=cv, calibrated=calibrated,
            feature_stats=features.stats, head_notes=extras.notes, bbox_iou=bbox_iou,
            assessment=assessment,
            predictions=predictions, timings=timings.seconds,
            executor=describe_executor(executor)))
    except BaseException:
        abandon(pending)
        raise
    submission, record_file = commit(pending, record)
    return RunResult(run_id=run_id, submission=submission, record=record_file,
                     summary={**record.summary(), "record": str(record_file)},
                     train_labels=rows.labels)


def run(options: RunOptions, *, log: Log = print, executor: Executor | None = None
        ) -> RunResult:
    """Check the options, then run every stage (see the module docstring)."""
    return execute(resolve_setup(options), log=log, executor=executor)


__all__ = ["RunResult", "execute", "mean_box_iou", "run", "weights_for"]
