"""Benchmark `fused_quality`: the fused trainer's scores against the per-fold path's on the demos.

Usage:
    python benchmarks/fused_quality.py               # fisheries and dogs-vs-cats, seeds 0,1,2
    python benchmarks/fused_quality.py --seeds 0     # fewer seeds
    python benchmarks/fused_quality.py --quick       # smoke test: tiny demos, seed 0, 3 folds

For each competition and seed S: the demo dataset generated with seed S (`kit.demo.cache.
ensure_demo_data`, what `python -m kit demo NAME --out DIR --seed S` writes, cached under
`benchmarks/work/fused-quality-data/`), then two whole runs on it, one after the other:
`python -m kit run NAME --data DIR <the demo recipe> --seed S --training fused`, and the same
with `--training per-fold`. The demo recipe is `competition.recipe_for(demo=True)` (what `--demo`
runs: `demo_cnn` with the pretrained demo weights, 64x64, max pooling, 5 folds, TTA 2, 40
epochs), passed as options: every field where it differs from the competition's own recipe.
`kit run` scores each submission against the dataset's `solution.csv` (local public and private
log loss). The runs of one invocation share one work folder (the demo base is pretrained once
per competition); the two paths' run folders differ (the path is part of their key), so
neither resumes the other's folds.

Figures: per competition, each path's CV, public and private log loss per seed, their mean
over seeds, and the differences fused - per-fold. Target (issue 16): |mean difference| at most
0.01 in CV and 0.02 in public and private, for every competition. Value: the largest |mean CV
difference|. `--quick` (tiny demos, seed 0, 3 folds, 4 epochs, TTA 1) only checks that the
script works: its figures go to `benchmarks/work/results.quick.json`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (  # also puts the repository root on sys.path
    QUICK_RESULTS_FILE,
    RESULTS_FILE,
    WORK_DIR,
    Measurement,
    merge_results,
)
from _kitrun import check_training_path, run_kit

from kit.competition import Competition, load_competition
from kit.competition.options import recipe_options
from kit.core.paths import Paths
from kit.demo.cache import ensure_demo_data

COMPETITIONS = ("fisheries", "dogs-vs-cats-redux")
ARMS = ("fused", "per-fold")
SCORES = ("cv", "public", "private")
TOLERANCE = {"cv": 0.01, "public": 0.02, "private": 0.02}  # issue 16
DATA_ROOT = WORK_DIR / "fused-quality-data"
SCRATCH = WORK_DIR / "fused-quality"


@dataclass(frozen=True, kw_only=True)
class QualityConfig:
    competitions: tuple[str, ...] = COMPETITIONS
    seeds: tuple[int, ...] = (0, 1, 2)
    preset: str = "full"  # the demo dataset's (and the demo base's pretraining) preset
    overrides: tuple[str, ...] = ()  # further `kit run` options (after the demo recipe's)
    quick: bool = False


FULL = QualityConfig()
QUICK = QualityConfig(seeds=(0,), preset="tiny", quick=True,
                      overrides=("--folds", "3", "--epochs", "4", "--tta", "1"))


def demo_recipe_words(competition: Competition) -> list[str]:
    """The options that turn the competition's recipe into its demo recipe (what `--demo` runs)."""
    demo, own = competition.recipe_for(demo=True), competition.recipe_for(demo=False)
    words: list[str] = []
    for item in recipe_options():
        value = getattr(demo, item.name)
        if value == getattr(own, item.name):
            continue
        if value is None:
            raise ValueError(f"{competition.name}: the demo recipe's {item.name} is None, which "
                             f"no option ({item.flag}) can set over {getattr(own, item.name)!r}")
        words += item.words(value)
    return words


def run_args(name: str, data: Path, seed: int, arm: str, *, work: Path,
             config: QualityConfig) -> list[str]:
    competition = load_competition(name)
    return ["run", name, "--data", str(data), "--work-dir", str(work), "--submissions-dir",
            str(work / "submissions"), "--demo-preset", config.preset,
            *demo_recipe_words(competition), *config.overrides, "--seed", str(seed),
            "--training", arm]


def scores_of(name: str, seed: int, arm: str, *, data: Path, work: Path,
              config: QualityConfig) -> dict[str, Any]:
    """One run's CV, public and private log loss (and its folds' seconds)."""
    label = f"{name}-seed{seed}-{arm}"
    run = run_kit(run_args(name, data, seed, arm, work=work, config=config),
                  folder=work / "logs", label=label)
    check_training_path(run, arm, label)
    score = run.summary.get("local_score") or {}
    if score.get("public") is None or score.get("private") is None:
        raise RuntimeError(f"{label}: no local public/private score; is {data / 'solution.csv'} "
                           "there?")
    figures = {"cv": run.summary["cv_log_loss"], "public": score["public"],
               "private": score["private"], "folds_seconds": run.timings.get("folds"),
               "wall_seconds": round(run.wall_seconds, 1), "clip": run.summary.get("clip"),
               "calibration": run.record.get("calibration"),
               "best_epochs": [f.get("best_epoch") for f in run.record.get("fold_scores", [])]}
    print(f"    {arm:9s} CV {figures['cv']:.4f}  public {figures['public']:.4f}  private "
          f"{figures['private']:.4f}  (folds {figures['folds_seconds']:.1f} s)", flush=True)
    return figures


def compare(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Means over seeds of each path's scores, the differences fused - per-fold, and whether
    they are within `TOLERANCE`."""
    seeds = list(per_seed)
    means = {arm: {s: sum(per_seed[seed][arm][s] for seed in seeds) / len(seeds)
                   for s in SCORES} for arm in ARMS}
    difference = {s: means["fused"][s] - means["per-fold"][s] for s in SCORES}
    per_seed_difference = {seed: {s: round(r["fused"][s] - r["per-fold"][s], 5) for s in SCORES}
                           for seed, r in per_seed.items()}
    return {"per_seed": per_seed, "mean": {a: {s: round(v, 5) for s, v in m.items()}
                                           for a, m in means.items()},
            "difference": {s: round(v, 5) for s, v in difference.items()},
            "per_seed_difference": per_seed_difference,
            "met": {s: abs(difference[s]) <= TOLERANCE[s] for s in SCORES}}


def measure(config: QualityConfig, *, data_root: Path, scratch: Path) -> dict[str, Any]:
    """Every competition and seed, both paths; the comparison per competition."""
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
    paths = Paths(work=data_root, submissions=work / "unused")
    results = {}
    try:
        for name in config.competitions:
            per_seed = {}
            for seed in config.seeds:
                data = ensure_demo_data(load_competition(name), paths, preset=config.preset,
                                        seed=seed)
                print(f"  {name} seed {seed}: {data}", flush=True)
                per_seed[seed] = {arm: scores_of(name, seed, arm, data=data, work=work,
                                                 config=config) for arm in ARMS}
            results[name] = compare(per_seed)
    finally:
        logs = scratch / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        if (work / "logs").is_dir():
            shutil.move(work / "logs", logs)  # kept for a look after the run
        shutil.rmtree(work, ignore_errors=True)
    return results


def measurement(config: QualityConfig, results: dict[str, Any]) -> Measurement:
    value = max(abs(r["difference"]["cv"]) for r in results.values())
    met = all(all(r["met"].values()) for r in results.values())
    target = (f"|fused - per-fold| (mean over seeds) <= {TOLERANCE['cv']:g} in CV, "
              f"<= {TOLERANCE['public']:g} in public and private")
    details = {"competitions": results, "seeds": list(config.seeds), "preset": config.preset,
               "overrides": list(config.overrides), "quick": config.quick,
               "demo_recipe_words": {n: demo_recipe_words(load_competition(n))
                                     for n in config.competitions}}
    return Measurement(value=value, unit="log loss", target=target, met=met, details=details)


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'competition':20s}{'score':>9s}{'fused':>9s}{'per-fold':>10s}{'diff':>9s}"
          f"{'limit':>7s}{'met':>6s}")
    for name, r in results.items():
        for s in SCORES:
            print(f"{name:20s}{s:>9s}{r['mean']['fused'][s]:9.4f}{r['mean']['per-fold'][s]:10.4f}"
                  f"{r['difference'][s]:+9.4f}{TOLERANCE[s]:7.2f}{str(r['met'][s]):>6s}")
    print("(means over the seeds; diff = fused - per-fold)")


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--seeds takes integers such as 0,1,2; received "
                                         f"{text!r}") from error
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"--seeds takes distinct integers >= 0; received "
                                         f"{text!r}")
    return seeds


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny demos, seed 0, 3 folds, 4 epochs; written to "
                             f"{QUICK_RESULTS_FILE}")
    parser.add_argument("--seeds", type=parse_seeds, default=None, metavar="S1,S2,...",
                        help="demo and run seeds (default 0,1,2; --quick: 0)")
    parser.add_argument("--competitions", default=",".join(COMPETITIONS), metavar="A,B",
                        help=f"default {','.join(COMPETITIONS)}")
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT, metavar="DIR",
                        help=f"where the demo datasets are cached (default {DATA_ROOT})")
    parser.add_argument("--scratch", type=Path, default=SCRATCH, metavar="DIR",
                        help=f"the runs' work folder (removed afterwards) and logs "
                             f"(default {SCRATCH})")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"results file to merge into (default {RESULTS_FILE})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = QUICK if args.quick else FULL
    names = tuple(n.strip() for n in args.competitions.split(",") if n.strip())
    config = QualityConfig(competitions=tuple(load_competition(n).name for n in names),
                           seeds=args.seeds or config.seeds, preset=config.preset,
                           overrides=config.overrides, quick=config.quick)
    start = time.perf_counter()
    results = measure(config, data_root=args.data_root, scratch=args.scratch)
    entry = measurement(config, results)
    results_file = args.results or (QUICK_RESULTS_FILE if config.quick else RESULTS_FILE)
    merge_results(results_file, {"fused_quality": entry.entry()})
    print_table(results)
    print(f"fused_quality: {entry.value:.4f} (target {entry.target}; met {entry.met}); "
          f"{time.perf_counter() - start:.0f} s; merged into {results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
