"""Benchmark `scale`: a whole `kit run` on a Dogs vs. Cats Redux-sized dataset: memory, time, growth.

Usage:
    python benchmarks/scale.py                      # full size and 1/4, fused and per-fold (hours)
    python benchmarks/scale.py --arms fused         # the fused path alone
    python benchmarks/scale.py --divisor 50         # 1/50 of the size (the real image sizes and
                                                    # input), to try it out; not the reported figure
    python benchmarks/scale.py --quick              # smoke test: 400 + 200 small images, 64x64

The data (`_dogs_cats_data.py`): 25,000 train + 12,500 test JPEGs of the real size range (longer
side 300-500 px), in the competition's layout, generated once and cached under
`benchmarks/work/scale-data/` (about 1 GB; a rerun reuses it). The 1/4-size dataset is generated
beside it (the same seed: its images are the first quarter of the full set's).

Each run is `python -m kit run dogs-vs-cats-redux --data DIR --backbone mobilenet_v3_small
--weights none --pooling flatten --folds 5 --tta 2 --training ARM` (the fast base at its 224x224
default, flatten features: 28,224 per image; the competition's recipe otherwise: 30 epochs,
patience 5, batch 32), in a fresh work folder (feature cache, run folder, submission) under
`--scratch`, removed after the run: every run extracts its own features. Order: 1/4 size
(fused, per-fold), then full size (fused, per-fold); before each run the script waits (up to
`--max-wait` s) for other processes to leave the CPU quiet.

Measured per run (`_kitrun.run_kit`): peak anonymous memory (the summed `RssAnon` of the run's
process tree, sampled every 0.2 s; file pages of the memory-mapped cache do not count) and
total resident memory (`VmRSS`) beside it; wall time; each stage's seconds from the run record's
`timings` (read_data, hash, features, load_features, folds, submission, total); other
processes' CPU share meanwhile. Growth: each figure at full size / at 1/4 size (linear: 4).

Entries (`results.json`, or `benchmarks/work/results.quick.json` with `--quick`/`--divisor`):
`scale_peak_anon_gb` (target <= 4 GB at full size), `scale_stage_growth` (the largest full/quarter
ratio of a stage taking >= 2 s at full size; target: linear, 4, within 10 %) and
`heads_vs_features` (folds' time / features' time at full size; issue 16's target <= 0.5,
issue 14's <= 1.5), each for the fused path with the per-fold path's figures beside it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import _dogs_cats_data as dvc
from _common import (  # also puts the repository root on sys.path
    QUICK_RESULTS_FILE,
    RESULTS_FILE,
    WORK_DIR,
    Measurement,
    merge_results,
    wait_until_quiet,
)
from _kitrun import check_training_path, run_figures, run_kit

ARMS = ("fused", "per-fold")
MAX_WAIT = 300.0
MEMORY_TARGET_GB = 4.0  # issue 14
HEADS_TARGET = 0.5  # issue 16: folds' time / features' time
ISSUE_14_FOLDS_TARGET = 1.5  # issue 14: the same ratio
LINEAR_TOLERANCE = 0.1  # a stage "grows linearly" up to 10 % above the images' ratio
MIN_JUDGED_SECONDS = 2.0  # shorter stages are reported, not judged: their ratio is noise
DATA_ROOT = WORK_DIR / "scale-data"
SCRATCH = WORK_DIR / "scale"


@dataclass(frozen=True, kw_only=True)
class ScaleConfig:
    """The full-size dataset, the fraction of it the smaller run gets, and the run's recipe."""

    size: dvc.Size
    fraction: int = 4
    backbone: str = "mobilenet_v3_small"
    input_size: tuple[int, int] | None = None  # None: the base's own (224x224)
    pooling: str = "flatten"
    folds: int = 5
    tta: int = 2
    epochs: int | None = None  # None: the competition's recipe (30)
    seed: int = 0
    quick: bool = False
    divisor: int = 1

    @property
    def sizes(self) -> dict[str, dvc.Size]:
        """The two datasets by label, the smaller first."""
        return {f"1/{self.fraction}": self.size.divided(self.fraction), "full": self.size}


FULL = ScaleConfig(size=dvc.Size(n_train=25_000, n_test=12_500, long_side=(300, 500)))
QUICK = ScaleConfig(size=dvc.Size(n_train=400, n_test=200, long_side=(64, 160)),
                    input_size=(64, 64), epochs=5, quick=True)


def run_args(config: ScaleConfig, data: Path, arm: str, work: Path) -> list[str]:
    """The `python -m kit` words of one run."""
    args = ["run", "dogs-vs-cats-redux", "--data", str(data), "--work-dir", str(work),
            "--submissions-dir", str(work / "submissions"), "--backbone", config.backbone,
            "--weights", "none", "--pooling", config.pooling, "--folds", str(config.folds),
            "--tta", str(config.tta), "--seed", str(config.seed), "--training", arm]
    if config.input_size is not None:
        args += ["--input-size", "x".join(map(str, config.input_size))]
    if config.epochs is not None:
        args += ["--epochs", str(config.epochs)]
    return args


def prepare_data(config: ScaleConfig, root: Path) -> tuple[dict[str, Path], dict[str, float]]:
    """Both datasets (generated unless cached); their folders and the seconds generating took."""
    folders, seconds = {}, {}
    for label, size in config.sizes.items():
        start = time.perf_counter()
        folders[label], written = dvc.ensure(root, size, seed=config.seed)
        took = time.perf_counter() - start
        seconds[label] = round(took, 1) if written else 0.0
        state = f"generated in {took:.0f} s" if written else "cached"
        print(f"  data {label}: {size.n_train} train + {size.n_test} test, {state}: "
              f"{folders[label]}", flush=True)
    return folders, seconds


def run_arm(config: ScaleConfig, data: Path, arm: str, label: str, *, scratch: Path,
            max_wait: float) -> dict[str, Any]:
    """One measured run in a fresh work folder (removed afterwards); its figures."""
    name = f"{label.replace('/', 'of')}-{arm}"
    work = scratch / name
    shutil.rmtree(work, ignore_errors=True)
    waited = wait_until_quiet(max_wait=max_wait) if max_wait > 0 else 0.0
    print(f"  run {label} {arm}: python -m kit {' '.join(run_args(config, data, arm, work))}",
          flush=True)
    try:
        run = run_kit(run_args(config, data, arm, work), folder=scratch / "logs", label=name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    check_training_path(run, arm, name)
    figures = run_figures(run)
    timings = figures["timings"]
    figures["folds_over_features"] = round(timings["folds"] / timings["features"], 4)
    figures["waited_for_quiet_s"] = round(waited, 1)
    print(f"    wall {figures['wall_seconds']:.0f} s; features {timings['features']:.0f} s, "
          f"folds {timings['folds']:.0f} s ({figures['folds_over_features']:.2f}x); "
          f"RssAnon {figures['peak_anon_gb']:.2f} GB, RSS {figures['peak_rss_gb']:.2f} GB; "
          f"other processes {figures['foreign_cpu_share']:.0%}", flush=True)
    return figures


def growth(small: dict[str, Any], large: dict[str, Any], linear: float) -> dict[str, Any]:
    """Each stage's (and the memory's) ratio large/small, and whether the stages stay linear."""
    ratios: dict[str, float] = {}
    for stage, seconds in large["timings"].items():
        before = small["timings"].get(stage)
        if before:
            ratios[stage] = round(seconds / before, 3)
    for key in ("wall_seconds", "unstaged_seconds", "outside_stages_seconds", "peak_anon_gb",
                "peak_rss_gb"):
        if small[key]:
            ratios[key] = round(large[key] / small[key], 3)
    judged = {s: ratios[s] for s, sec in large["timings"].items()
              if s != "total" and s in ratios and sec >= MIN_JUDGED_SECONDS}
    worst = max(judged, key=judged.__getitem__) if judged else None
    return {"ratios": ratios, "judged": judged, "linear": round(linear, 3),
            "limit": round(linear * (1 + LINEAR_TOLERANCE), 3),
            "worst_stage": worst, "worst_ratio": judged[worst] if worst else None,
            "linear_met": all(r <= linear * (1 + LINEAR_TOLERANCE) for r in judged.values())}


def images(size: dvc.Size) -> int:
    return size.n_train + size.n_test


def measure(config: ScaleConfig, arms: Sequence[str], *, data_root: Path, scratch: Path,
            max_wait: float) -> dict[str, Any]:
    """Every run (smaller size first, then full; each size's arms in `arms` order)."""
    folders, generate_seconds = prepare_data(config, data_root)
    runs = {label: {arm: run_arm(config, folders[label], arm, label, scratch=scratch,
                                 max_wait=max_wait) for arm in arms}
            for label in folders}
    small, large = config.sizes.values()
    linear = images(large) / images(small)
    small_label = next(iter(config.sizes))
    return {"runs": runs,
            "growth": {arm: growth(runs[small_label][arm], runs["full"][arm], linear)
                       for arm in arms},
            "generate_seconds": generate_seconds, "data": {k: str(v) for k, v in folders.items()}}


def settings(config: ScaleConfig, arms: Sequence[str]) -> dict[str, Any]:
    return {"images": {label: {"train": s.n_train, "test": s.n_test}
                       for label, s in config.sizes.items()},
            "long_side": list(config.size.long_side), "backbone": config.backbone,
            "weights": "none", "input_size": list(config.input_size) if config.input_size
            else "the base's default", "pooling": config.pooling, "folds": config.folds,
            "tta": config.tta, "epochs": config.epochs or "recipe", "seed": config.seed,
            "arms": list(arms), "quick": config.quick, "divisor": config.divisor,
            "generator_version": dvc.VERSION}


def entries(config: ScaleConfig, arms: Sequence[str], result: dict[str, Any]
            ) -> dict[str, Measurement]:
    """`scale_peak_anon_gb`, `scale_stage_growth` and `heads_vs_features` of the first arm (the
    fused path by default), the other arm's figures beside them."""
    main, full = arms[0], result["runs"]["full"]
    common = {"arm": main, "settings": settings(config, arms), **result}
    anon = full[main]["peak_anon_gb"]
    memory = Measurement(value=anon, unit="GB", target=f"<= {MEMORY_TARGET_GB:g} GB",
                         met=anon <= MEMORY_TARGET_GB, details={
                             "peak_anon_gb": {a: full[a]["peak_anon_gb"] for a in arms},
                             "peak_rss_gb": {a: full[a]["peak_rss_gb"] for a in arms},
                             **common})
    grown = result["growth"][main]
    stage = Measurement(value=grown["worst_ratio"] or 0.0, unit="x",
                        target=f"<= {grown['linear']:g} (linear) per stage, within "
                               f"{LINEAR_TOLERANCE:.0%}", met=grown["linear_met"],
                        details={"worst_stage": {a: result["growth"][a]["worst_stage"]
                                                 for a in arms}, **common})
    ratio = full[main]["folds_over_features"]
    heads = Measurement(value=ratio, unit="ratio", target=f"<= {HEADS_TARGET:g}",
                        met=ratio <= HEADS_TARGET, details={
                            "folds_over_features": {
                                label: {a: runs[a]["folds_over_features"] for a in arms}
                                for label, runs in result["runs"].items()},
                            "issue_14_target": f"<= {ISSUE_14_FOLDS_TARGET:g}",
                            "issue_14_met": ratio <= ISSUE_14_FOLDS_TARGET, **common})
    return {"scale_peak_anon_gb": memory, "scale_stage_growth": stage,
            "heads_vs_features": heads}


def stages_of(result: dict[str, Any]) -> list[str]:
    """Every stage any run timed, in the order they ran, `total` last."""
    names = dict.fromkeys(s for runs in result["runs"].values() for r in runs.values()
                          for s in r["timings"])
    return [s for s in names if s != "total"] + ["total"]


def print_figures(result: dict[str, Any], arms: Sequence[str]) -> None:
    """One row per run (seconds, GB), then one growth row per arm (full / smaller)."""
    stages = stages_of(result)
    extra = ("unstaged_seconds", "outside_stages_seconds", "peak_anon_gb", "peak_rss_gb")
    print("\n" + f"{'run':16s}{'wall':>8s}" + "".join(f"{s[:9]:>10s}" for s in stages)
          + f"{'unstaged':>9s}{'outside':>9s}{'anon GB':>9s}{'RSS GB':>8s}{'folds/feat':>11s}"
          + f"{'CV':>8s}")
    for label, runs in result["runs"].items():
        for arm in arms:
            r = runs[arm]
            cells = "".join(f"{r['timings'].get(s, float('nan')):10.1f}" for s in stages)
            tail = "".join(f"{r[k]:9.2f}" for k in extra)
            cv = "n/a" if r["cv_log_loss"] is None else f"{r['cv_log_loss']:.4f}"
            print(f"{label + ' ' + arm:16s}{r['wall_seconds']:8.0f}{cells}{tail}"
                  f"{r['folds_over_features']:11.3f}{cv:>8s}")
    for arm in arms:
        ratios = result["growth"][arm]["ratios"]
        cells = "".join(f"{ratios.get(s, float('nan')):10.2f}" for s in stages)
        tail = "".join(f"{ratios.get(k, float('nan')):9.2f}" for k in extra)
        print(f"{'growth ' + arm:16s}{ratios.get('wall_seconds', float('nan')):8.2f}{cells}{tail}")
    print(f"(growth: full / smaller; linear = {result['growth'][arms[0]]['linear']:g}; judged: "
          f"stages taking >= {MIN_JUDGED_SECONDS:g} s at full size)")


def config_of(args: argparse.Namespace) -> ScaleConfig:
    if args.quick:
        return QUICK
    if args.divisor < 1:
        raise SystemExit(f"error: --divisor must be >= 1; received {args.divisor}")
    return replace(FULL, size=FULL.size.divided(args.divisor), divisor=args.divisor)


def parse_arms(text: str) -> tuple[str, ...]:
    arms = tuple(a.strip() for a in text.split(",") if a.strip())
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms or len(set(arms)) != len(arms):
        raise argparse.ArgumentTypeError(f"--arms takes distinct names among {', '.join(ARMS)}; "
                                         f"received {text!r}")
    return arms


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"400 + 200 images of 64-160 px at 64x64, 5 epochs; written to "
                             f"{QUICK_RESULTS_FILE}")
    parser.add_argument("--divisor", type=int, default=1, metavar="N",
                        help="1/N of the full size (real image sizes and input); not the "
                             f"reported figure: written to {QUICK_RESULTS_FILE}")
    parser.add_argument("--arms", type=parse_arms, default=ARMS, metavar="A,B",
                        help="training paths to run, the first one reported (default "
                             "fused,per-fold)")
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT, metavar="DIR",
                        help=f"where the generated datasets are cached (default {DATA_ROOT})")
    parser.add_argument("--scratch", type=Path, default=SCRATCH, metavar="DIR",
                        help="each run's work folder (removed after it; ~10 GB at full size) "
                             f"and the logs (default {SCRATCH})")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"results file to merge into (default {RESULTS_FILE})")
    parser.add_argument("--max-wait", type=float, default=None, metavar="SECONDS",
                        help=f"before each run, wait up to this long for a quiet CPU "
                             f"(default {MAX_WAIT:.0f}; 0 with --quick)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = config_of(args)
    max_wait = args.max_wait if args.max_wait is not None else (0.0 if args.quick else MAX_WAIT)
    start = time.perf_counter()
    result = measure(config, args.arms, data_root=args.data_root, scratch=args.scratch,
                     max_wait=max_wait)
    measured = entries(config, args.arms, result)
    reported = not (config.quick or config.divisor != 1)
    results_file = args.results or (RESULTS_FILE if reported else QUICK_RESULTS_FILE)
    merge_results(results_file, {name: m.entry() for name, m in measured.items()})
    print_figures(result, args.arms)
    for name, m in measured.items():
        print(f"{name}: {m.value:.3f} {m.unit} (target {m.target}, met {m.met})")
    print(f"total {time.perf_counter() - start:.0f} s; merged into {results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
