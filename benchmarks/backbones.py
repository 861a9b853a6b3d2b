"""Benchmark `backbone_images_per_s`: images/s of every conv base's forward pass on this machine.

Usage:
    python benchmarks/backbones.py                   # every base, merged into results.json
    python benchmarks/backbones.py --only convnext_tiny,efficientnet_v2_b0
    python benchmarks/backbones.py --device gpu      # on a GPU machine (default: auto)
    python benchmarks/backbones.py --quick           # smoke test: 2 bases at 64x64, tiny batches

Each base is built with seeded random weights (`weights=none`: a forward pass takes as long
with any weights) at its default input size, and timed by `kit.features.inventory.
measure_throughput`: kit's compiled forward pass (`kit.features.extract.compiled_forward`, what
feature extraction runs) on random uint8 batches already in memory, so no decoding is counted.
One warm-up batch (tracing, oneDNN set-up) is excluded, then `--batches` batches of
`--batch-size` images are timed. Before each base the script waits (up to `--max-wait` s) for
other processes to leave the CPU quiet, and records their CPU share while that base is built,
warmed up and timed (`foreign_cpu_share`; above 0.1 the figure is flagged `disturbed`).

The entry is `backbone_images_per_s` for a CPU run and `backbone_images_per_s_gpu` for a GPU
run (so a GPU machine's figures never overwrite the CPU's): `details.images_per_s` maps each
base to its images/s; `details.per_base` holds the input size, seconds, build seconds and
contention of each; `value` is the number of bases measured. `--quick` figures go to
benchmarks/work/results.quick.json unless `--results` says otherwise. `demo_cnn` (the demo's
own small base) is timed only when `--only` names it.

`backbone_images_per_s(quick)` is the same CPU figure in the form `benchmarks/run.py` takes for
its EXTERNAL benchmarks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from _common import (  # also puts the repository root on sys.path
    QUICK_RESULTS_FILE,
    RESULTS_FILE,
    CpuMeter,
    Measurement,
    merge_results,
    wait_until_quiet,
)

from kit.core.errors import KitError
from kit.features.backbones import backbone_registry, get_backbone
from kit.features.inventory import (
    DEVICES,
    measure_throughput,
    release_models,
    resolve_device,
)

ENTRY = {"cpu": "backbone_images_per_s", "gpu": "backbone_images_per_s_gpu"}
QUICK_BASES = ("efficientnet_v2_b0", "convnext_tiny")
DISTURBED = 0.1
MAX_WAIT = 300.0


@dataclass(frozen=True, kw_only=True)
class Config:
    """What to time: the bases, an input size for all of them (None: each its own), batches."""

    bases: tuple[str, ...]
    input_size: tuple[int, int] | None = None
    batch_size: int = 16
    batches: int = 4
    warmup: int = 1
    quick: bool = False


FULL = Config(bases=tuple(n for n in backbone_registry().names() if n != "demo_cnn"))
QUICK = Config(bases=QUICK_BASES, input_size=(64, 64), batch_size=4, batches=2, quick=True)


def config_of(args: argparse.Namespace) -> Config:
    """The configuration the options select (`--quick`: 2 bases, 64x64, batch 4, 2 batches)."""
    names = tuple(backbone_registry().names()) if args.only is None else tuple(
        get_backbone(n.strip()).name for n in args.only.split(",") if n.strip())
    if args.quick:
        return replace(QUICK, bases=names if args.only else QUICK.bases)
    return Config(bases=names if args.only else FULL.bases, batch_size=args.batch_size,
                  batches=args.batches)


def time_base(name: str, config: Config, device: str, max_wait: float) -> dict[str, Any]:
    """Images/s of one base, with the contention during its timing."""
    waited = wait_until_quiet(max_wait=max_wait) if max_wait > 0 else 0.0
    with CpuMeter() as meter:
        speed = measure_throughput(get_backbone(name), config.input_size,
                                   batch_size=config.batch_size, batches=config.batches,
                                   warmup=config.warmup, device=device)
    release_models()
    size = config.input_size or get_backbone(name).input_size
    share = meter.foreign_share
    print(f"  {name:20s} {size[0]}x{size[1]}  {speed.images_per_s:8.2f} img/s  "
          f"(build+warm-up {speed.build_seconds:.1f} s, other processes {share:.0%})",
          flush=True)
    return {"images_per_s": round(speed.images_per_s, 3), "input_size": list(size),
            "seconds": round(speed.seconds, 3), "build_seconds": round(speed.build_seconds, 2),
            "foreign_cpu_share": round(share, 3), "disturbed": share > DISTURBED,
            "waited_for_quiet_s": round(waited, 1)}


def measure(config: Config, device: str = "auto",
            max_wait: float = 0.0) -> tuple[str, Measurement]:
    """Time every base of `config`; return the results.json key and its entry."""
    tf_device, description = resolve_device(device)
    kind = "gpu" if tf_device.startswith("/GPU") else "cpu"
    print(f"backbone_images_per_s on {description}: batch {config.batch_size}, "
          f"{config.batches} timed batches after {config.warmup} warm-up", flush=True)
    per_base = {name: time_base(name, config, kind, max_wait) for name in config.bases}
    details = {
        "images_per_s": {name: row["images_per_s"] for name, row in per_base.items()},
        "per_base": per_base, "device": description, "device_kind": kind,
        "batch_size": config.batch_size, "batches": config.batches, "warmup": config.warmup,
        "weights": "none (random, seeded): a forward pass takes as long with any weights",
        "what": "kit's compiled forward pass on uint8 batches in memory (no decoding)",
        "disturbed": sorted(n for n, row in per_base.items() if row["disturbed"]),
        "quick": config.quick,
    }
    return ENTRY[kind], Measurement(value=len(per_base), unit="bases", target="report",
                                    met=True, details=details)


def backbone_images_per_s(quick: bool = False) -> dict[str, Any]:
    """The CPU figure as `benchmarks/run.py` registers external benchmarks (its EXTERNAL list:
    a function named after the entry, returning a Measurement's fields; run.py waits for a quiet
    machine and records the contention itself)."""
    _, measurement = measure(QUICK if quick else FULL, device="cpu")
    return asdict(measurement)


def print_table(details: dict[str, Any]) -> None:
    """The measured images/s, fastest first."""
    rows = sorted(details["per_base"].items(), key=lambda item: -item[1]["images_per_s"])
    print(f"\n{'base':20s} {'input':>9s} {'img/s':>9s} {'min/10k':>8s} {'other CPU':>9s}")
    for name, row in rows:
        size = "x".join(map(str, row["input_size"]))
        minutes = 10_000 / row["images_per_s"] / 60
        print(f"{name:20s} {size:>9s} {row['images_per_s']:9.2f} {minutes:8.1f} "
              f"{row['foreign_cpu_share']:9.0%}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="NAME,...", help="these bases only (comma-separated)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="auto (a GPU when TensorFlow sees one), cpu or gpu")
    parser.add_argument("--batch-size", type=int, default=16, metavar="N")
    parser.add_argument("--batches", type=int, default=4, metavar="N",
                        help="timed batches per base after one warm-up batch (default 4)")
    parser.add_argument("--quick", action="store_true",
                        help=f"2 bases at 64x64, batch 4; written to {QUICK_RESULTS_FILE}")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"results file to merge into (default {RESULTS_FILE})")
    parser.add_argument("--max-wait", type=float, default=None, metavar="SECONDS",
                        help=f"before each base, wait up to this long for a quiet CPU "
                             f"(default {MAX_WAIT:.0f}; 0 with --quick)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = config_of(args)
        max_wait = args.max_wait if args.max_wait is not None else (
            0.0 if args.quick else MAX_WAIT)
        key, measurement = measure(config, args.device, max_wait)
    except KitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results_file = args.results or (QUICK_RESULTS_FILE if args.quick else RESULTS_FILE)
    merge_results(results_file, {key: measurement.entry()})
    print_table(measurement.details)
    print(f"{key}: {len(config.bases)} bases; merged into {results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
