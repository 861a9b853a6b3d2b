"""Benchmark `cached_run_over_extraction`: a whole cached `kit run` / its feature extraction.

Usage:
    python benchmarks/cached_run.py                  # merged into benchmarks/results.json
    python benchmarks/cached_run.py --quick          # smoke test (benchmarks/work/results.quick.json)
    python benchmarks/run.py --only cached_run_over_extraction   # the same, through the runner

The setting is `kfold_cache_speedup`'s (`run.KFOLD`, read from there): 300 JPEGs of 1280x720 from
`_common.write_jpegs` (seed 0, 8 balanced classes), VGG16 at 224x224 with `weights=none`, the
dense head with average pooling, hidden 256, 10 epochs, patience 3, batch 32, 5 folds. They are
laid out as the fisheries competition's training set (`train/<CLASS>/img_NNNNN.jpg`), with 80
test images (`test_stg1/`, from another seed; about the real set's test/train ratio, 1,000 /
3,777) and `sample_submission_stg1.csv`. `--quick`: 40 JPEGs of 320x240 at 64x64, 10 test images.

Two whole runs, one after the other on the same data, each in a fresh work folder (so each
extracts its own features): `python -m kit run fisheries --data DIR ... --tta 2 --training
fused`, then the same with `--training per-fold`. Each run's figure is its record's
`timings.total` (every stage: reading, hashing, features with TTA, folds, clip, submission) /
`timings.features` (the features stage: building the base and extracting every image's plain
and flipped views). Value: the fused run's; the per-fold run's is beside it in `details`, with
both runs' stage timings, wall time, CPU and other processes' CPU share, memory and CV.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from _common import (  # also puts the repository root on sys.path
    QUICK_RESULTS_FILE,
    RESULTS_FILE,
    Measurement,
    merge_results,
    wait_until_quiet,
    work_folder,
    write_jpegs,
)
from _kitrun import check_training_path, run_figures, run_kit

COMPETITION = "fisheries"
CLASSES = ("ALB", "BET", "DOL", "LAG", "NoF", "OTHER", "SHARK", "YFT")
ARMS = ("fused", "per-fold")
TARGET = 1.1  # issue 16
TTA = 2
MAX_WAIT = 300.0
SEED = 0


@dataclass(frozen=True, kw_only=True)
class CachedRunConfig:
    """The test images this benchmark adds to kfold_cache_speedup's setting."""

    test_images: int = 80
    test_seed: int = SEED + 7


CACHED_RUN = {False: CachedRunConfig(), True: CachedRunConfig(test_images=10)}


def kfold_setting(quick: bool):
    """kfold_cache_speedup's configuration (`run.KFOLD`); imported here, where it is used,
    because run.py imports TensorFlow, which this process does not need otherwise."""
    from run import KFOLD

    return KFOLD[quick]


def write_dataset(root: Path, quick: bool) -> Path:
    """The setting's JPEGs in the fisheries layout, with a stage-1 test set and its sample."""
    kfold, config = kfold_setting(quick), CACHED_RUN[quick]
    if len(CLASSES) != kfold.n_classes:
        raise ValueError(f"the kfold setting has {kfold.n_classes} classes; fisheries has "
                         f"{len(CLASSES)}")
    data = root / "data"
    train = write_jpegs(root / "train-jpeg", count=kfold.images, size=kfold.image_size,
                        n_classes=kfold.n_classes, seed=SEED)
    for i, (file, label) in enumerate(zip(train.files, train.labels, strict=True)):
        target = data / "train" / CLASSES[int(label)] / f"img_{i:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        file.rename(target)
    test = write_jpegs(root / "test-jpeg", count=config.test_images, size=kfold.image_size,
                       n_classes=kfold.n_classes, seed=config.test_seed)
    names = [f"img_{kfold.images + i:05d}.jpg" for i in range(len(test.files))]
    (data / "test_stg1").mkdir(parents=True)
    for file, name in zip(test.files, names, strict=True):
        file.rename(data / "test_stg1" / name)
    sample = pd.DataFrame({"image": names, **{c: 1 / len(CLASSES) for c in CLASSES}})
    sample.to_csv(data / "sample_submission_stg1.csv", index=False)
    return data


def run_args(quick: bool, data: Path, arm: str, work: Path) -> list[str]:
    """The `python -m kit` words of one whole run in the kfold setting."""
    kfold = kfold_setting(quick)
    if kfold.extract_batch != kfold.train.batch_size:
        raise ValueError("kit run extracts with the heads' batch size (--batch-size); the kfold "
                         f"setting has extract_batch={kfold.extract_batch}, train batch_size="
                         f"{kfold.train.batch_size}")
    return ["run", COMPETITION, "--data", str(data), "--work-dir", str(work),
            "--submissions-dir", str(work / "submissions"), "--backbone", kfold.backbone,
            "--weights", "none", "--input-size", "x".join(map(str, kfold.input_size)),
            "--head", "dense", "--pooling", kfold.head.pooling, "--hidden", str(kfold.head.hidden),
            "--dropout", str(kfold.head.dropout), "--epochs", str(kfold.train.epochs),
            "--patience", str(kfold.train.patience), "--batch-size", str(kfold.train.batch_size),
            "--learning-rate", str(kfold.train.learning_rate), "--folds", str(kfold.folds),
            "--tta", str(TTA), "--seed", str(SEED), "--training", arm]


def run_arm(quick: bool, data: Path, arm: str, work: Path, max_wait: float) -> dict[str, Any]:
    """One whole run in a fresh work folder; its figures and its total / features."""
    waited = wait_until_quiet(max_wait=max_wait) if max_wait > 0 else 0.0
    run = run_kit(run_args(quick, data, arm, work / arm), folder=work / "logs", label=arm)
    check_training_path(run, arm, arm)
    shutil.rmtree(work / arm, ignore_errors=True)
    figures = run_figures(run)
    timings = figures["timings"]
    figures["total_over_features"] = round(timings["total"] / timings["features"], 4)
    figures["waited_for_quiet_s"] = round(waited, 1)
    print(f"  {arm:9s} total {timings['total']:6.1f} s = features {timings['features']:6.1f} s "
          f"+ the rest {timings['total'] - timings['features']:5.1f} s (folds "
          f"{timings['folds']:.1f} s): {figures['total_over_features']:.3f}x; wall "
          f"{figures['wall_seconds']:.0f} s; other processes {figures['foreign_cpu_share']:.0%}",
          flush=True)
    return figures


def measure(quick: bool, max_wait: float = 0.0) -> Measurement:
    """Both runs on the same data, fused first; the fused run's total / features."""
    with work_folder("cached-run") as work:
        data = write_dataset(work, quick)
        runs = {arm: run_arm(quick, data, arm, work, max_wait) for arm in ARMS}
    value = runs["fused"]["total_over_features"]
    kfold = kfold_setting(quick)
    details = {
        "total_over_features": {arm: r["total_over_features"] for arm, r in runs.items()},
        "runs": runs,
        "setting": {"from": "kfold_cache_speedup (run.KFOLD)", "images": kfold.images,
                    "image_size": list(kfold.image_size), "n_classes": kfold.n_classes,
                    "backbone": kfold.backbone, "weights": "none",
                    "input_size": list(kfold.input_size), "folds": kfold.folds,
                    "head": {"name": "dense", **asdict(kfold.head)},
                    "train": {"epochs": kfold.train.epochs, "patience": kfold.train.patience,
                              "batch_size": kfold.train.batch_size},
                    "tta": TTA, **asdict(CACHED_RUN[quick])},
        "quick": quick,
    }
    return Measurement(value=value, unit="ratio", target=f"<= {TARGET:g}", met=value <= TARGET,
                       details=details)


def cached_run_over_extraction(quick: bool = False) -> dict[str, Any]:
    """The figure as `benchmarks/run.py` registers external benchmarks (its EXTERNAL list)."""
    return asdict(measure(quick))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"40 JPEGs of 320x240 at 64x64; written to {QUICK_RESULTS_FILE}")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"results file to merge into (default {RESULTS_FILE})")
    parser.add_argument("--max-wait", type=float, default=None, metavar="SECONDS",
                        help=f"before each run, wait up to this long for a quiet CPU "
                             f"(default {MAX_WAIT:.0f}; 0 with --quick)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else MAX_WAIT)
    measurement = measure(args.quick, max_wait)
    results_file = args.results or (QUICK_RESULTS_FILE if args.quick else RESULTS_FILE)
    merge_results(results_file, {"cached_run_over_extraction": measurement.entry()})
    per_fold = measurement.details["total_over_features"]["per-fold"]
    print(f"cached_run_over_extraction: {measurement.value:.3f} (per-fold {per_fold:.3f}; "
          f"target {measurement.target}, met {measurement.met}); merged into {results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
