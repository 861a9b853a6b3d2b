"""Benchmark `probe_group_false_alarms`: how often the groups verdict cries wolf, and how often it
finds a real group effect, when judged by a run's head (`kit.probes.leakcv.measure_cv`).

Usage:
    python benchmarks/probe_false_alarms.py              # 60 null + 20 effect seeds (~2 min)
    python benchmarks/probe_false_alarms.py --quick      # 10 + 4 seeds

Data: the synthetic feature maps of `tests/test_probes_leakcv.py` (8 groups of 24 images, 3
classes): without an effect, groups are arbitrary labels over images whose features carry only
the class; with one, each group has its own look and mostly one class. The seeds here (20 and
up) are not the ones the tests or the rule's design used (0-19). Each seed: the run's head
(max pooling, hidden 16) in 3 repeats of stratified and grouped 4-fold, one fused pass, judged
by `kit.probes.cvgap.judge_gap` at alpha 0.05.

Figures: the share of null seeds flagged as a leak (value; target <= 0.05, the test's level) and
the share of effect seeds flagged (target >= 0.9), both in `details`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from _common import QUICK_RESULTS_FILE, RESULTS_FILE, Measurement, merge_results

from tests.test_probes_leakcv import HEAD, _data, _measure


def flagged(seeds: Sequence[int], *, effect: bool) -> list[bool]:
    return [_measure(*_data(seed, effect=effect), head=HEAD).comparisons["groups"].leak
            for seed in seeds]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 null and 4 effect seeds")
    args = parser.parse_args(argv)
    n_null, n_effect = (10, 4) if args.quick else (60, 20)
    start = time.perf_counter()
    null = flagged(range(20, 20 + n_null), effect=False)
    found = flagged(range(20, 20 + n_effect), effect=True)
    false_rate, power = sum(null) / n_null, sum(found) / n_effect
    measurement = Measurement(
        value=false_rate, unit="share of null seeds flagged",
        target="<= 0.05 false alarms; >= 0.9 of real effects found",
        met=false_rate <= 0.05 and power >= 0.9,
        details={"null_seeds": n_null, "null_flagged": sum(null), "effect_seeds": n_effect,
                 "effect_flagged": sum(found), "power": power,
                 "seconds": round(time.perf_counter() - start, 1), "quick": args.quick})
    results = QUICK_RESULTS_FILE if args.quick else RESULTS_FILE
    merge_results(results, {"probe_group_false_alarms": measurement.entry()})
    print(f"groups verdict by the run's head: {sum(null)} of {n_null} null seeds flagged, "
          f"{sum(found)} of {n_effect} effect seeds found; met {measurement.met}; merged into "
          f"{results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
