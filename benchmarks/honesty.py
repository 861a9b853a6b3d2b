"""Benchmark `honesty`: does the number a run gives land near the private score it gets?

Usage:
    python benchmarks/honesty.py                        # 5 demos x seeds 0, 1, 2 (about 2 h here)
    python benchmarks/honesty.py --only state-farm --seeds 0
    python benchmarks/honesty.py --quick                # fisheries seed 0 on the tiny preset

For every competition demo and seed: the demo dataset generated with that seed
(`python -m kit demo NAME --out DIR --seed S`), then two arms, each through the real command line
with the competition's demo recipe:

- `today`: `kit run ... --folds stratified --calibration clip`, the behaviour before issue 12
  (stratified folds, the clip chosen on out-of-fold rows);
- `default`: `kit probe ...` then `kit run ...` with the defaults (`--folds auto`, which reads
  the probe's findings and the declared groups; `--calibration auto`).

Each arm's CV (the run's out-of-fold score), its expected private score and interval, and the
public and private scores against the demo's hidden solution are recorded. The figures: per demo,
the median and largest |expected - private| of the default arm (and |CV - private| of both), the
number of (demo, seed) cases whose private score fell inside the default's interval, its mean
width, and the default's private score against today's. Targets (issue 12): median |CV - private|
<= 0.10 nats on each log-loss demo, never above 0.25, <= 0.05 for F1; the interval holds private
in >= 13 of 15 cases; the default's private no worse than today's by more than 0.02 on any demo.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from statistics import median
from typing import Any

from _common import QUICK_RESULTS_FILE, RESULTS_FILE, WORK_DIR, Measurement, merge_results

from kit.competition import load_competition
from kit.competition.options import OPTIONS

DEMOS = ("fisheries", "dogs-vs-cats-redux", "state-farm", "dog-breed", "plant-seedlings")
SEEDS = (0, 1, 2)
FIXED = ("backbone", "weights", "seed", "fold_kind", "folds", "training", "calibration")
TARGETS = {"log_loss": (0.10, 0.25), "f1": 0.05, "coverage": 13 / 15, "private_worse": 0.02}


def recipe_words(name: str) -> list[str]:
    """The competition's demo recipe as command-line options (the ones an arm does not set)."""
    recipe = load_competition(name).recipe_for(demo=True)
    words: list[str] = []
    for option in OPTIONS:
        value = getattr(recipe, option.name, None) if option.recipe else None
        if value is not None and option.name not in FIXED:
            words += option.words(value)
    return words


def kit(args: list[str], env: dict[str, str], log: Path) -> None:
    """One `python -m kit` command; its output goes to `log`; a failure stops the benchmark."""
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "kit", *args], env=env, stdout=out,
                              stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`python -m kit {' '.join(args)}` failed ({done.returncode}); "
                         f"see {log}")


def run_arm(name: str, seed: int, arm: str, base: Path, env: dict[str, str],
            preset: str) -> dict[str, Any]:
    """Run one arm on one (demo, seed) and read back its figures."""
    data = base / "data"
    if not (data / "solution.csv").is_file():
        kit(["demo", name, "--out", str(data), "--seed", str(seed), "--preset", preset], env,
            base / "demo.log")
    common = [name, "--data", str(data), "--backbone", "demo_cnn", "--weights", "demo",
              "--seed", str(seed), *recipe_words(name)]
    out = base / f"{arm}.json"
    if arm == "today":
        kit(["run", *common, "--folds", "stratified", "--calibration", "clip", "--json",
             str(out)], env, base / "today.log")
    else:
        kit(["probe", name, "--data", str(data), "--no-attention", "--json",
             str(base / "probe.json")], env, base / "probe.log")
        kit(["run", *common, "--json", str(out)], env, base / "default.log")
    return figures(json.loads(out.read_text()))


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """An arm's CV, expected interval, public and private scores, and what they say."""
    record = json.loads(Path(summary["record"]).read_text())
    expected, score = summary["expected_private"], summary["local_score"]
    private = score["private"]
    cv = summary.get("cv_score", summary["cv_log_loss"])
    return {"metric": summary.get("metric", "log_loss"), "cv": cv,
            "expected": expected["value"], "low": expected["low"], "high": expected["high"],
            "width": expected["high"] - expected["low"], "public": score["public"],
            "private": private, "cv_error": abs(cv - private),
            "expected_error": abs(expected["value"] - private),
            "inside": expected["low"] <= private <= expected["high"],
            "folds": (record.get("folds") or {}).get("kind", "stratified"),
            "calibration": record.get("calibration"), "reference": expected.get("reference")}


def per_demo(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one demo over its seeds."""
    default = [c["default"] for c in cases]
    today = [c["today"] for c in cases]
    sign = -1 if default[0]["metric"] != "log_loss" else 1  # a higher F1 is better
    return {"metric": default[0]["metric"], "seeds": [c["seed"] for c in cases],
            "median_expected_error": median(d["expected_error"] for d in default),
            "max_expected_error": max(d["expected_error"] for d in default),
            "median_cv_error": median(d["cv_error"] for d in default),
            "today_median_cv_error": median(t["cv_error"] for t in today),
            "inside": sum(d["inside"] for d in default), "today_inside":
                sum(t["inside"] for t in today),
            "mean_width": sum(d["width"] for d in default) / len(default),
            "private_worse_than_today": max(sign * (d["private"] - t["private"])
                                            for d, t in zip(default, today, strict=True))}


def verdict(demos: dict[str, dict[str, Any]]) -> tuple[bool, dict[str, Any]]:
    """Whether every target is met, and the overall figures."""
    n_cases = sum(len(d["seeds"]) for d in demos.values())
    inside = sum(d["inside"] for d in demos.values())
    ok = inside >= TARGETS["coverage"] * n_cases
    for d in demos.values():
        if d["metric"] == "log_loss":
            ok &= d["median_expected_error"] <= TARGETS["log_loss"][0]
            ok &= d["max_expected_error"] <= TARGETS["log_loss"][1]
        else:
            ok &= d["median_expected_error"] <= TARGETS["f1"]
        ok &= d["private_worse_than_today"] <= TARGETS["private_worse"]
    widths = [d["mean_width"] for d in demos.values()]
    return bool(ok), {"cases": n_cases, "inside": inside,
                      "mean_width": sum(widths) / len(widths)}


def print_table(cases: dict[str, list[dict[str, Any]]]) -> None:
    print(f"\n{'demo':20s} {'seed':>4s} {'arm':8s} {'folds':10s} {'CV':>7s} {'expected':>24s} "
          f"{'public':>7s} {'private':>7s} {'|CV-p|':>7s} {'|E-p|':>6s} in")
    for name, rows in cases.items():
        for case in rows:
            for arm in ("today", "default"):
                f = case[arm]
                print(f"{name:20s} {case['seed']:4d} {arm:8s} {f['folds']:10s} {f['cv']:7.4f} "
                      f"{f['expected']:7.4f} [{f['low']:6.3f}, {f['high']:6.3f}] "
                      f"{f['public']:7.4f} {f['private']:7.4f} {f['cv_error']:7.4f} "
                      f"{f['expected_error']:6.3f} {'yes' if f['inside'] else 'NO'}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="NAME,...", help="these demos only (comma-separated)")
    parser.add_argument("--seeds", default="0,1,2", metavar="S,...")
    parser.add_argument("--quick", action="store_true",
                        help=f"fisheries, seed 0, tiny preset; written to {QUICK_RESULTS_FILE}")
    parser.add_argument("--results", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = ("fisheries",) if args.quick else (
        tuple(n.strip() for n in args.only.split(",")) if args.only else DEMOS)
    seeds = (0,) if args.quick else tuple(int(s) for s in args.seeds.split(","))
    preset = "tiny" if args.quick else "full"
    root = WORK_DIR / ("honesty-quick" if args.quick else "honesty")
    cases: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        for seed in seeds:
            base = root / name / f"s{seed}"
            base.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "KIT_WORK_DIR": str(root / "work"),
                   "KIT_SUBMISSIONS_DIR": str(base / "submissions")}
            case = {"seed": seed, **{arm: run_arm(name, seed, arm, base, env, preset)
                                     for arm in ("today", "default")}}
            cases.setdefault(name, []).append(case)
            print(f"{name} seed {seed}: default {case['default']['expected']:.4f} "
                  f"[{case['default']['low']:.3f}, {case['default']['high']:.3f}] private "
                  f"{case['default']['private']:.4f}; today CV {case['today']['cv']:.4f} "
                  f"private {case['today']['private']:.4f}", flush=True)
    demos = {name: per_demo(rows) for name, rows in cases.items()}
    met, overall = verdict(demos)
    measurement = Measurement(
        value=overall["inside"] / overall["cases"], unit="share of cases inside the interval",
        target="median |E-private| <= 0.10 (log loss; F1 0.05), max <= 0.25; >= 13/15 inside; "
               "private no worse than today's by > 0.02", met=met,
        details={"overall": overall, "demos": demos, "cases": cases, "quick": args.quick})
    print_table(cases)
    results = args.results or (QUICK_RESULTS_FILE if args.quick else RESULTS_FILE)
    merge_results(results, {"honesty": measurement.entry()})
    print(f"\nhonesty: {overall['inside']} of {overall['cases']} private scores inside the "
          f"interval (mean width {overall['mean_width']:.3f}); targets met: {met}; merged into "
          f"{results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
