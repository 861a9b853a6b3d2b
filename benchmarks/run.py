"""Benchmarks of kit on this machine; each merges its figure into benchmarks/results.json.

Usage:
    python benchmarks/run.py                                  # every benchmark
    python benchmarks/run.py --only pipeline_efficiency       # some (repeatable, or a,b,c)
    python benchmarks/run.py --quick                          # smoke test, tiny sizes

`--quick` figures are NOT the reported ones: they go to benchmarks/work/results.quick.json unless
`--results` says otherwise. See benchmarks/README.md for what each benchmark measures.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from _common import (  # also puts the repository root on sys.path
    QUICK_RESULTS_FILE,
    RESULTS_FILE,
    CpuMeter,
    ImageSet,
    Measurement,
    Stopwatch,
    merge_results,
    timed,
    wait_until_quiet,
    work_folder,
    write_jpegs,
)

from kit.core.errors import UnknownNameError
from kit.core.registry import Registry
from kit.core.tf_runtime import ONEDNN_DEFAULT, ONEDNN_ENV, set_seed
from kit.cv.data import EnsembleData
from kit.cv.heads import head_trainer, run_fold
from kit.cv.task import FoldResult, FoldTask
from kit.data.folds import assign_folds
from kit.data.images import file_digest, load_image, resize
from kit.features.backbones import build_model, get_backbone, preprocess_function, resolve_weights
from kit.features.cache import FeatureKey, FeatureStore
from kit.features.extract import compiled_forward, decoded_batches, extract
from kit.models.heads import HeadConfig, head_registry
from kit.models.train import HeadTrainer, TrainConfig, fit_head
from kit.scoring.metrics import log_loss

SEED = 0
WORKER_FLAG = "--_onednn-worker"
MAX_WAIT = 300.0  # seconds to wait for a quiet machine before each benchmark
DISTURBED = 0.1  # other processes' CPU share above which a figure is flagged as disturbed

Forward = Callable[[np.ndarray], Any]
Benchmark = Callable[[bool], Measurement]


# ---------------------------------------------------------------- shared setup


@dataclass(frozen=True, kw_only=True)
class Extractor:
    """A built backbone: its cache key and its compiled, already traced forward pass."""

    key: FeatureKey
    forward: Forward
    build_seconds: float


def build_extractor(backbone_name: str, input_size: tuple[int, int],
                    warm_batches: Sequence[int]) -> Extractor:
    """Build `backbone_name` with seeded random weights; trace its forward pass (once: the
    batch dimension is free) and run it at every batch size in `warm_batches`, so per-shape
    set-up (oneDNN primitives, buffers) is not charged to a timed run."""
    start = time.perf_counter()
    set_seed(SEED)  # build_model does not seed weights=none itself
    backbone = get_backbone(backbone_name)
    weights = resolve_weights(backbone, "none", seed=SEED)
    model = build_model(backbone, weights, input_size)
    forward = compiled_forward(model, preprocess_function(backbone), input_size)
    width, height = input_size
    for size in dict.fromkeys(n for n in warm_batches if n > 0):
        np.asarray(forward(np.zeros((size, height, width, 3), np.uint8)))
    key = FeatureKey(backbone=backbone.name, weights=weights.identity, input_size=input_size,
                     preprocess=backbone.preprocess, variant="plain")
    return Extractor(key=key, forward=forward, build_seconds=time.perf_counter() - start)


def warm_up_training(config: TrainConfig, n_classes: int) -> float:
    """Fit one throw-away head so Keras' one-time start-up is not charged to either arm."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(8 * n_classes, 16)).astype(np.float32)
    y = np.arange(len(x)) % n_classes
    build = head_registry().get("dense")
    _, seconds = timed(lambda: fit_head(lambda: build((16,), n_classes, HeadConfig()), x, y,
                                        n_classes=n_classes, config=replace(config, epochs=1)))
    return seconds


def digest_items(images: ImageSet) -> list[tuple[str, str]]:
    """`(content digest, file)` pairs, as the pipeline hands them to `extract`."""
    return [(file_digest(f), str(f)) for f in images.files]


def split(n: int, parts: int) -> list[slice]:
    """`parts` contiguous slices of range(n), sizes differing by at most one."""
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def batch_shapes(parts: Sequence[slice], batch_size: int) -> set[int]:
    """Every batch size that batching each slice by `batch_size` produces (last ones smaller)."""
    lengths = [p.stop - p.start for p in parts]
    return {min(batch_size, n) for n in lengths if n} | {n % batch_size for n in lengths} - {0}


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


# ---------------------------------------------------------------- kfold_cache_speedup


@dataclass(frozen=True, kw_only=True)
class KFoldConfig:
    """Defaults: VGG16 at its default input size (what `run --backbone vgg16` uses) on JPEGs of
    the fisheries camera size. (A first version used 128x128 inputs on 600 640x480 JPEGs: 3.96x;
    a smaller input shrinks the extraction the cache saves, not the heads.)"""

    images: int = 300
    image_size: tuple[int, int] = (1280, 720)
    n_classes: int = 8
    backbone: str = "vgg16"
    input_size: tuple[int, int] = (224, 224)
    folds: int = 5
    extract_batch: int = 32
    head: HeadConfig = field(default_factory=lambda: HeadConfig(pooling="avg"))
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=10, batch_size=32, patience=3))


KFOLD = {False: KFoldConfig(),
         True: KFoldConfig(images=40, image_size=(320, 240), input_size=(64, 64))}


@dataclass(frozen=True, kw_only=True)
class KFoldCase:
    """Everything both arms share: the images, folds and the built backbone."""

    config: KFoldConfig
    extractor: Extractor
    items: list[tuple[str, str]]
    labels: np.ndarray
    folds: np.ndarray


class Arm:
    """One way of running the K folds: its folder, its clock and what it produced."""

    def __init__(self, folder: Path, n_rows: int, n_classes: int) -> None:
        self.folder = folder
        self.clock = Stopwatch()
        self.extract_seconds = 0.0
        self.folds: list[FoldResult] = []
        self.oof = np.zeros((n_rows, n_classes))
        self.trainer: HeadTrainer | None = None  # one per arm, as kit.cv.heads.HeadFolds

    def extract(self, case: KFoldCase, name: str, part: slice = slice(None)) -> None:
        """Extract the images `part` into the store `name` (timed on this arm's clock)."""
        seconds = self.clock.run(lambda: _extract(case, self.folder / name, part))
        self.extract_seconds += seconds

    def features(self, case: KFoldCase, name: str) -> np.ndarray:
        """Every image's row from the store `name` (timed on this arm's clock)."""
        store = FeatureStore(self.folder / name, case.extractor.key)
        return self.clock.run(lambda: store.get([d for d, _ in case.items]))

    def train(self, case: KFoldCase, x: np.ndarray, fold: int) -> None:
        """Train and predict one fold on features `x` (timed on this arm's clock)."""
        task = FoldTask(fold=fold, seed=SEED, folder=self.folder / "cv" / f"fold{fold}",
                        val_index=np.flatnonzero(case.folds == fold))
        data, build = _ensemble_data(case, x), head_registry().get("dense")

        def fold() -> FoldResult:
            if self.trainer is None:
                self.trainer = head_trainer(data, build, case.config.head)
            return run_fold(task, data=data, build=build, head=case.config.head,
                            train=case.config.train, trainer=self.trainer)

        result = self.clock.run(fold)
        self.oof[result.val_index] = result.oof
        self.folds.append(result)

    def details(self, labels: np.ndarray) -> dict[str, Any]:
        return {"seconds": round(self.clock.seconds, 2),
                "own_cpu_seconds": round(self.clock.cpu_seconds, 2),
                "extract_seconds": round(self.extract_seconds, 2),
                "head_seconds": round(sum(f.seconds for f in self.folds), 2),
                "best_epochs": [f.best_epoch for f in self.folds],
                "cv_log_loss": round(log_loss(labels, self.oof), 4),
                "foreign_cpu_share": round(self.clock.foreign_share, 3)}


def _extract(case: KFoldCase, folder: Path, part: slice) -> float:
    """Extract the images `part` into the store under `folder`; return the extract seconds."""
    items = case.items[part]
    report = extract(FeatureStore(folder, case.extractor.key), items,
                     forward=case.extractor.forward, batch_size=case.config.extract_batch)
    if report.computed != len(items):
        raise RuntimeError(f"extracted {report.computed} of {len(items)} images: "
                           f"{report.unreadable[:3]}")
    return report.seconds


def _ensemble_data(case: KFoldCase, x: np.ndarray) -> EnsembleData:
    return EnsembleData(variants=("plain",), x_train={"plain": x}, y_train=case.labels,
                        x_test={"plain": np.zeros((0,), np.float32)},
                        n_classes=case.config.n_classes)


def _run_arms(case: KFoldCase, work: Path) -> tuple[Arm, Arm]:
    """Cached: extract every image once, then train each fold on the cached rows.
    Re-extract: for each fold, extract every image again into a fresh store, then train.

    On a shared machine a neighbour can slow whichever arm happens to be running, so the arms
    are interleaved: the cached arm's one extraction is done in K slices (each image still
    once, into one store), slice k beside the re-extract arm's pass k; the folds' trainings
    then alternate.
    """
    n_rows, n_classes, k = len(case.labels), case.config.n_classes, case.config.folds
    cached = Arm(work / "cached", n_rows, n_classes)
    again = Arm(work / "reextract", n_rows, n_classes)
    x_again = []
    for fold, part in enumerate(split(n_rows, k)):
        cached.extract(case, "features", part)
        again.extract(case, f"features-fold{fold}")
        x_again.append(again.features(case, f"features-fold{fold}"))
    x_cached = cached.features(case, "features")
    for fold in range(k):
        again.train(case, x_again[fold], fold)
        cached.train(case, x_cached, fold)
    return cached, again


def kfold_cache_speedup(quick: bool) -> Measurement:
    """5 folds on cached features vs. the same 5 folds re-extracting features for each fold."""
    config = KFOLD[quick]
    with work_folder("kfold") as work:
        images = write_jpegs(work / "jpeg", count=config.images, size=config.image_size,
                             n_classes=config.n_classes, seed=SEED)
        shapes = batch_shapes([slice(0, config.images), *split(config.images, config.folds)],
                              config.extract_batch)
        case = KFoldCase(config=config,
                         extractor=build_extractor(config.backbone, config.input_size, shapes),
                         items=digest_items(images), labels=images.labels,
                         folds=assign_folds(images.labels, n_splits=config.folds, seed=SEED))
        warm_seconds = warm_up_training(config.train, config.n_classes)
        cached, again = _run_arms(case, work)
    speedup = again.clock.seconds / cached.clock.seconds
    details = {
        "cpu_time_ratio": round(again.clock.cpu_seconds / cached.clock.cpu_seconds, 3),
        "cached": cached.details(case.labels),
        "reextract": again.details(case.labels),
        "max_abs_oof_difference": float(np.max(np.abs(cached.oof - again.oof))),
        "images": config.images, "image_size": list(config.image_size),
        "n_classes": config.n_classes,
        "backbone": config.backbone, "weights": "none", "input_size": list(config.input_size),
        "folds": config.folds, "extract_batch": config.extract_batch,
        "head": {"name": "dense", "pooling": config.head.pooling, "hidden": config.head.hidden},
        "train": {"epochs": config.train.epochs, "batch_size": config.train.batch_size,
                  "patience": config.train.patience},
        "excluded_seconds": {"build_and_trace_backbone": round(case.extractor.build_seconds, 2),
                             "keras_training_warm_up": round(warm_seconds, 2)},
        "onednn": os.environ.get(ONEDNN_ENV), "quick": quick,
    }
    for name, arm in (("cached", cached), ("re-extract", again)):
        print(f"  {name:10s} {arm.clock.seconds:7.1f} s (extract {arm.extract_seconds:.1f} s, "
              f"heads {sum(f.seconds for f in arm.folds):.1f} s)")
    return Measurement(value=speedup, unit="x", target=">= 4", met=speedup >= 4,
                       details=details)


# ---------------------------------------------------------------- pipeline_efficiency


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    images: int = 128
    image_size: tuple[int, int] = (1280, 720)
    backbone: str = "vgg16"
    input_size: tuple[int, int] = (224, 224)
    batch_size: int = 16
    workers: int = 2
    rounds: int = 4  # arms alternate: memory, pipeline | pipeline, memory | ...


PIPELINE = {False: PipelineConfig(),
            True: PipelineConfig(images=16, input_size=(64, 64), batch_size=4)}


def _decode_serial(items: Sequence[tuple[str, str]], size: tuple[int, int]) -> list[np.ndarray]:
    """Decode every file in this thread exactly as kit.features.cache does (draft JPEG, then resize)."""
    return [resize(load_image(Path(f), draft=size), size) for _, f in items]


def _decode_threaded(items: Sequence[tuple[str, str]], config: PipelineConfig) -> int:
    """Run kit's threaded decoder alone (no forward pass); return the images decoded."""
    return sum(len(batch) for batch, _ in decoded_batches(
        items, variant="plain", size=config.input_size, batch_size=config.batch_size,
        workers=config.workers))


def _forward_batches(forward: Forward, batches: Sequence[np.ndarray]) -> None:
    for batch in batches:
        np.asarray(forward(batch))


def _alternate_arms(config: PipelineConfig, extractor: Extractor, items: list[tuple[str, str]],
                    decoded: list[np.ndarray], store: FeatureStore) -> tuple[Stopwatch, Stopwatch]:
    """Time both arms on the same images, round by round, alternating which goes first."""
    memory, pipeline = Stopwatch(), Stopwatch()
    for index, chunk in enumerate(split(len(items), config.rounds)):
        images = decoded[chunk]
        batches = [np.stack(images[i:i + config.batch_size])
                   for i in range(0, len(images), config.batch_size)]
        steps = [(memory, functools.partial(_forward_batches, extractor.forward, batches)),
                 (pipeline, functools.partial(extract, store, items[chunk],
                                              forward=extractor.forward,
                                              batch_size=config.batch_size,
                                              workers=config.workers))]
        for clock, step in steps if index % 2 == 0 else steps[::-1]:
            clock.run(step)
    return memory, pipeline


def pipeline_efficiency(quick: bool) -> Measurement:
    """JPEG-to-features rate of kit.features.cache.extract / forward rate on batches in memory."""
    config = PIPELINE[quick]
    with work_folder("pipeline") as work:
        images = write_jpegs(work / "jpeg", count=config.images, size=config.image_size,
                             n_classes=8, seed=SEED + 1)
        jpeg_bytes = images.total_bytes
        items = digest_items(images)
        extractor = build_extractor(config.backbone, config.input_size, batch_shapes(
            split(config.images, config.rounds), config.batch_size))
        decoded, serial_seconds = timed(lambda: _decode_serial(items, config.input_size))
        _, threaded_seconds = timed(lambda: _decode_threaded(items, config))
        store = FeatureStore(work / "features", extractor.key)
        memory, pipeline = _alternate_arms(config, extractor, items, decoded, store)
        stored = len(items) - len(store.missing([d for d, _ in items]))
    if stored != len(items):
        raise RuntimeError(f"the pipeline stored {stored} of {len(items)} images")
    n = config.images
    memory_rate, pipeline_rate = n / memory.seconds, n / pipeline.seconds
    ratio = pipeline_rate / memory_rate
    details = {
        "cpu_time_ratio": round(memory.cpu_seconds / pipeline.cpu_seconds, 3),
        "pipeline_images_per_s": round(pipeline_rate, 3),
        "memory_images_per_s": round(memory_rate, 3),
        "pipeline_seconds": round(pipeline.seconds, 3),
        "memory_seconds": round(memory.seconds, 3),
        "own_cpu_seconds": {"memory": round(memory.cpu_seconds, 2),
                            "pipeline": round(pipeline.cpu_seconds, 2)},
        "foreign_cpu_share": {"memory": round(memory.foreign_share, 3),
                              "pipeline": round(pipeline.foreign_share, 3)},
        "decode_ms_per_image_serial": round(1000 * serial_seconds / n, 2),
        "decode_images_per_s_threaded": round(n / threaded_seconds, 1),
        "decode_cpu_share_of_forward": round((serial_seconds / n) * memory_rate, 4),
        "images": n, "image_size": list(config.image_size),
        "jpeg_mb": round(jpeg_bytes / 1e6, 1), "rounds": config.rounds,
        "backbone": config.backbone, "weights": "none", "input_size": list(config.input_size),
        "batch_size": config.batch_size, "decode_workers": config.workers,
        "onednn": os.environ.get(ONEDNN_ENV), "quick": quick,
    }
    print(f"  from JPEG files {pipeline_rate:7.2f} img/s; in memory {memory_rate:7.2f} img/s; "
          f"serial decode {details['decode_ms_per_image_serial']} ms/img")
    return Measurement(value=ratio, unit="ratio", target=">= 0.9", met=ratio >= 0.9,
                       details=details)


# ---------------------------------------------------------------- onednn_speedup


@dataclass(frozen=True, kw_only=True)
class OneDnnConfig:
    backbones: tuple[str, ...] = ("vgg16", "resnet50", "efficientnet_b0")
    input_size: tuple[int, int] = (224, 224)
    batch_size: int = 16
    rounds: int = 6  # per backbone: off, on | on, off | off, on | ...
    slice_seconds: float = 2.0  # each round times at least this long and at least one batch


ONEDNN = {False: OneDnnConfig(),
          True: OneDnnConfig(input_size=(64, 64), batch_size=4, rounds=2, slice_seconds=0.3)}


def _timed_slice(forward: Forward, batch: np.ndarray, min_seconds: float) -> dict[str, float]:
    batches, start = 0, time.perf_counter()
    while batches < 1 or time.perf_counter() - start < min_seconds:
        np.asarray(forward(batch))
        batches += 1
    seconds = time.perf_counter() - start
    return {"images": batches * len(batch), "seconds": seconds}


def _tf_onednn_enabled() -> bool | None:
    """Whether the loaded TensorFlow runs oneDNN ops (a private API; None where it is missing)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def onednn_worker(backbones: Sequence[str], quick: bool) -> None:
    """Serve timed forward slices under this process's TF_ENABLE_ONEDNN_OPTS.

    Builds and warms every backbone, prints `{"ready": ...}`, then for each backbone name read
    from stdin prints one JSON line with the images and seconds of one slice. Runs until EOF.
    """
    config = ONEDNN[quick]
    width, height = config.input_size
    batch = np.random.default_rng(SEED).integers(
        0, 256, (config.batch_size, height, width, 3), dtype=np.uint8)
    forwards = {name: build_extractor(name, config.input_size, (config.batch_size,)).forward
                for name in backbones}
    print(json.dumps({"ready": sorted(forwards), "env": os.environ.get(ONEDNN_ENV),
                      "tf_onednn_enabled": _tf_onednn_enabled()}), flush=True)
    for line in sys.stdin:
        name = line.strip()
        result = _timed_slice(forwards[name], batch, config.slice_seconds)
        print(json.dumps({"backbone": name, **result}), flush=True)


class OneDnnWorker:
    """A `run.py --_onednn-worker` process started with TF_ENABLE_ONEDNN_OPTS=`setting`."""

    def __init__(self, setting: str, backbones: Sequence[str], quick: bool, log: Path) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), WORKER_FLAG,
                   ",".join(backbones)] + (["--quick"] if quick else [])
        self.setting = setting
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                command, env={**os.environ, ONEDNN_ENV: setting}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=stderr, text=True)

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                return json.loads(line)
        code = self.process.wait()
        raise RuntimeError(f"oneDNN worker ({ONEDNN_ENV}={self.setting}) exited with code "
                           f"{code}:\n{self.log.read_text()[-3000:]}")

    def ready(self) -> dict[str, Any]:
        """Wait until the worker has built its models; check TensorFlow took the setting."""
        reply = self._reply()
        if reply["tf_onednn_enabled"] not in (None, self.setting == "1"):
            raise RuntimeError(f"worker started with {ONEDNN_ENV}={self.setting} but TensorFlow "
                               f"reports oneDNN enabled={reply['tf_onednn_enabled']}")
        return reply

    def measure(self, backbone: str, pids: tuple[int, ...]) -> tuple[dict[str, float], float]:
        """One timed slice of `backbone`, and other processes' CPU share meanwhile (`pids`:
        the workers, whose CPU is ours)."""
        assert self.process.stdin is not None
        with CpuMeter(pids) as meter:
            self.process.stdin.write(backbone + "\n")
            self.process.stdin.flush()
            reply = self._reply()
        return reply, meter.foreign_share

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.wait(timeout=60) != 0:
            raise RuntimeError(f"oneDNN worker ({ONEDNN_ENV}={self.setting}) exited with "
                               f"code {self.process.returncode}")


def _compare(workers: dict[str, OneDnnWorker], backbone: str, rounds: int) -> dict[str, Any]:
    """Alternate slices of the two settings (ABBA...) and total each setting's images/s."""
    totals = {s: {"images": 0.0, "seconds": 0.0, "foreign": 0.0} for s in workers}
    pids = tuple(w.process.pid for w in workers.values())
    for index in range(rounds):
        for setting in ("0", "1") if index % 2 == 0 else ("1", "0"):
            reply, foreign = workers[setting].measure(backbone, pids)
            totals[setting]["images"] += reply["images"]
            totals[setting]["seconds"] += reply["seconds"]
            totals[setting]["foreign"] += foreign * reply["seconds"]
    on, off = (totals[s]["images"] / totals[s]["seconds"] for s in ("1", "0"))
    return {"on_images_per_s": round(on, 3), "off_images_per_s": round(off, 3),
            "ratio": round(on / off, 4),
            "seconds": {s: round(t["seconds"], 2) for s, t in totals.items()},
            "foreign_cpu_share": {s: round(t["foreign"] / t["seconds"], 3)
                                  for s, t in totals.items()}}


def onednn_speedup(quick: bool) -> Measurement:
    """Compiled-forward images/s with TF_ENABLE_ONEDNN_OPTS=1 vs =0, one worker process each."""
    config = ONEDNN[quick]
    with work_folder("onednn") as work:
        workers = {s: OneDnnWorker(s, config.backbones, quick, work / f"worker-{s}.log")
                   for s in ("0", "1")}
        try:
            started = {s: w.ready() for s, w in workers.items()}
            per_backbone = {b: _compare(workers, b, config.rounds) for b in config.backbones}
        finally:
            for worker in workers.values():
                worker.close()
    for backbone, b in per_backbone.items():
        print(f"  {backbone:16s} on {b['on_images_per_s']:8.2f} img/s  "
              f"off {b['off_images_per_s']:8.2f} img/s  on/off {b['ratio']:.3f}")
    speedup = geometric_mean([b["ratio"] for b in per_backbone.values()])
    faster = "on (1)" if speedup >= 1 else "off (0)"
    conclusion = (f"oneDNN {faster} is faster here (geometric mean on/off {speedup:.3f}); "
                  f"kit/tf_runtime.py defaults to {ONEDNN_DEFAULT!r}")
    print(f"  {conclusion}")
    details = {"backbones": per_backbone, "input_size": list(config.input_size),
               "batch_size": config.batch_size, "weights": "none", "rounds": config.rounds,
               "slice_seconds": config.slice_seconds, "workers": started,
               "conclusion": conclusion, "quick": quick}
    met = all(b["on_images_per_s"] >= b["off_images_per_s"] for b in per_backbone.values())
    return Measurement(value=speedup, unit="x", target="report", met=met, details=details)


# ---------------------------------------------------------------- command line


# Benchmarks of other features live beside this file, each a function returning the fields of a
# Measurement: (module, function, whether it takes `quick`).
EXTERNAL: tuple[tuple[str, str, bool], ...] = (
    ("size_probe", "size_probe_speedup", True),
    ("size_probe", "size_probe_images_per_s", True),
    ("score_speed", "score_rows_per_s", False),
    ("report_speed", "report_seconds_500", False),
    ("finetune_speed", "finetune_images_per_s", True),
    ("finetune_speed", "head_train_images_per_s", True),
    ("backbones", "backbone_images_per_s", True),
    ("cached_run", "cached_run_over_extraction", True),
)


def _external(module: str, function: str, takes_quick: bool) -> Benchmark:
    def benchmark(quick: bool) -> Measurement:
        fn = getattr(importlib.import_module(module), function)
        return Measurement(**(fn(quick) if takes_quick else fn()))

    benchmark.__name__ = function
    return benchmark


def benchmark_registry() -> Registry[Benchmark]:
    registry: Registry[Benchmark] = Registry("benchmark")
    for benchmark in (kfold_cache_speedup, pipeline_efficiency, onednn_speedup):
        registry.register(benchmark.__name__, benchmark)
    for module, function, takes_quick in EXTERNAL:
        registry.register(function, _external(module, function, takes_quick))
    return registry


def selected(registry: Registry[Benchmark], only: Sequence[str] | None) -> list[str]:
    """Names to run, in the registry's order; `only` entries may hold comma-separated names."""
    if not only:
        return list(registry.names())
    wanted = {name.strip() for entry in only for name in entry.split(",") if name.strip()}
    for name in wanted:
        registry.get(name)  # raises UnknownNameError with close matches
    return [name for name in registry.names() if name in wanted]


def run_one(benchmark: Benchmark, *, quick: bool, max_wait: float) -> tuple[Measurement, float]:
    """Run one benchmark once the machine is quiet; record other processes' CPU use with it."""
    waited = wait_until_quiet(max_wait=max_wait)
    load = os.getloadavg()[0]
    with CpuMeter() as meter:
        measurement, seconds = timed(lambda: benchmark(quick))
    contention = {"disturbed": meter.foreign_share > DISTURBED,
                  "foreign_cpu_share": round(meter.foreign_share, 3),
                  "load_avg_1m_at_start": round(load, 2), "waited_for_quiet_s": round(waited, 1)}
    if meter.foreign_share > DISTURBED:
        print(f"  note: other processes took {meter.foreign_share:.0%} of the CPU meanwhile; "
              "this figure is disturbed", flush=True)
    return replace(measurement, details={**measurement.details, "contention": contention}), seconds


def print_table(rows: dict[str, Measurement], seconds: dict[str, float]) -> None:
    print(f"\n{'benchmark':22s} {'value':>9s} {'unit':6s} {'target':8s} {'met':5s} {'time':>7s}")
    for name, m in rows.items():
        print(f"{name:22s} {m.value:9.3f} {m.unit:6s} {m.target:8s} {str(m.met):5s} "
              f"{seconds[name]:6.0f}s")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="benchmark(s) to run; repeatable or comma-separated")
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny sizes for a smoke test; written to {QUICK_RESULTS_FILE}")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"results file to merge into (default {RESULTS_FILE})")
    parser.add_argument("--max-wait", type=float, default=None, metavar="SECONDS",
                        help="before each benchmark, wait up to this long for other processes "
                             f"to leave the CPU idle (default {MAX_WAIT:.0f}; 0 with --quick)")
    parser.add_argument(WORKER_FLAG, dest="onednn_worker", metavar="BACKBONES",
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Keras warns on every new head's first fit ("triggered tf.function retracing"): expected here.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if args.onednn_worker:
        onednn_worker(args.onednn_worker.split(","), args.quick)
        return 0
    registry = benchmark_registry()
    try:
        names = selected(registry, args.only)
    except UnknownNameError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results_file = args.results or (QUICK_RESULTS_FILE if args.quick else RESULTS_FILE)
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else MAX_WAIT)
    rows: dict[str, Measurement] = {}
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    for name in names:
        print(f"{name}{' (quick)' if args.quick else ''}", flush=True)
        rows[name], seconds[name] = run_one(registry.get(name), quick=args.quick,
                                            max_wait=max_wait)
        merge_results(results_file, {name: rows[name].entry()})
        m = rows[name]
        print(f"  => {m.value:.3f} {m.unit} (target {m.target}, met {m.met}) "
              f"in {seconds[name]:.0f} s", flush=True)
    print_table(rows, seconds)
    print(f"total {time.perf_counter() - start:.0f} s; results merged into {results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
