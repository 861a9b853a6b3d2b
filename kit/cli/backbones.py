"""`python -m kit backbones [--measure] [--only NAME,...] [--json PATH]`: every conv base in one
table, to choose one by what it costs on this machine and what it is worth.

Per base: input size, feature map, floats per image for each pooling, parameters, the ImageNet
top-1 Keras publishes, whether its ImageNet weights are in the local Keras cache, the feature
cache's size per 10,000 images; with `--measure`, the images/s of kit's compiled forward pass
on this machine (random weights) and the minutes to extract 10,000 images. Facts computed once
are kept in `<work>/backbones/facts.json`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kit.cli.common import paths_of, write_json
from kit.competition.options import POOLINGS, parse_size
from kit.core.errors import InputError, UnknownNameError
from kit.features.backbones import Backbone, backbone_registry, check_input_size, get_backbone
from kit.features.inventory import (
    CACHE_IMAGES,
    BaseFacts,
    FactsCache,
    Throughput,
    cache_bytes,
    describe,
    keras_version,
    measure_throughput,
    release_models,
)


def register(commands: argparse._SubParsersAction) -> dict:
    parser = commands.add_parser(
        "backbones", help="every conv base: cost, feature size, top-1, cached weights, speed")
    parser.add_argument("--measure", action="store_true",
                        help="also time each base's compiled forward pass here (random weights)")
    parser.add_argument("--only", metavar="NAME,...",
                        help="only these bases (comma-separated registry names)")
    parser.add_argument("--input-size", type=parse_size, metavar="WxH",
                        help="one input size for every base (default: each base's own)")
    parser.add_argument("--batch-size", type=int, default=16, metavar="N",
                        help="images per timed batch with --measure (default 16)")
    parser.add_argument("--batches", type=int, default=3, metavar="N",
                        help="timed batches per base with --measure, after one warm-up batch "
                             "(default 3)")
    parser.add_argument("--work-dir", type=Path, metavar="DIR",
                        help="keeps computed shapes in backbones/facts.json; default ./.kit or "
                             "$KIT_WORK_DIR")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the table as JSON")
    return {"backbones": cmd_backbones}


def selected_backbones(only: str | None) -> list[Backbone]:
    """The bases `--only` names (in its order), or every registered base."""
    registry = backbone_registry()
    if only is None:
        return [registry.get(name) for name in registry.names()]
    names = [n.strip() for n in only.split(",") if n.strip()]
    if not names:
        raise InputError(f"--only {only!r}: name at least one base, e.g. --only convnext_tiny")
    chosen = []
    for name in dict.fromkeys(names):
        try:
            chosen.append(get_backbone(name))
        except UnknownNameError as error:
            raise UnknownNameError(f"--only {name}: {error}") from None
    return chosen


def _check_options(args: argparse.Namespace, bases: list[Backbone]) -> None:
    for flag, value in (("--batch-size", args.batch_size), ("--batches", args.batches)):
        if value < 1:
            raise InputError(f"{flag} {value}: must be an integer >= 1")
    if args.input_size is not None:
        for base in bases:
            try:
                check_input_size(base, args.input_size)
            except InputError as error:
                size = "x".join(str(v) for v in args.input_size)
                raise InputError(f"--input-size {size}: {error}") from None


def _measure(base: Backbone, args: argparse.Namespace) -> Throughput:
    print(f"  timing {base.name} ...", file=sys.stderr, flush=True)
    try:
        return measure_throughput(base, args.input_size, batch_size=args.batch_size,
                                  batches=args.batches)
    finally:
        release_models()


def _row(facts: BaseFacts, speed: Throughput | None) -> dict[str, Any]:
    row = facts.to_dict()
    row["measured"] = None if speed is None else speed.to_dict()
    row["minutes_per_10k_images"] = (None if speed is None
                                     else round(CACHE_IMAGES / speed.images_per_s / 60, 2))
    return row


def cmd_backbones(args: argparse.Namespace) -> int:
    bases = selected_backbones(args.only)
    _check_options(args, bases)
    cache = FactsCache(paths_of(args).work / "backbones" / "facts.json")
    rows = []
    for base in bases:
        facts = describe(base, args.input_size, cache=cache)
        speed = _measure(base, args) if args.measure else None
        rows.append((facts, speed))
    print(format_table(rows))
    print(footnotes(rows))
    write_json(args.json, {
        "keras": keras_version(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "measured": bool(args.measure), "cache_images": CACHE_IMAGES,
        "device": next((s.device for _, s in rows if s is not None), None),
        "bases": [_row(facts, speed) for facts, speed in rows]})
    return 0


# ---------------------------------------------------------------- the table


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def _cells(facts: BaseFacts, speed: Throughput | None) -> list[str]:
    top1 = "-" if facts.imagenet_top1 is None else f"{facts.imagenet_top1:.1f}%"
    weights = ("n/a" if facts.imagenet_file is None
               else "cached" if facts.weights_path is not None else "missing")
    cells = [facts.name, "x".join(map(str, facts.input_size)),
             "x".join(map(str, facts.feature_shape)),
             *(f"{facts.floats(p):,}" for p in POOLINGS),
             f"{facts.params / 1e6:.1f}M", top1, weights, _bytes(cache_bytes(facts.feature_shape))]
    if speed is not None:
        cells += [f"{speed.images_per_s:.1f}",
                  f"{CACHE_IMAGES / speed.images_per_s / 60:.1f}"]
    return cells


def format_table(rows: list[tuple[BaseFacts, Throughput | None]]) -> str:
    """The table `kit backbones` prints: one line per base, columns aligned."""
    header = ["base", "input", "feature map", *(f"floats {p}" for p in POOLINGS), "params",
              "top-1", "weights", "cache/10k"]
    if any(speed is not None for _, speed in rows):
        header += ["img/s", "min/10k"]
    lines = [header, *(_cells(facts, speed) for facts, speed in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
                     for line in lines)


def footnotes(rows: list[tuple[BaseFacts, Throughput | None]]) -> str:
    """What the columns mean, under the table."""
    notes = [
        "floats <pooling>: what the head reads per image and TTA view after that pooling.",
        f"cache/10k: disk of the feature cache for {CACHE_IMAGES:,} images and one TTA view "
        "(float32): it holds the whole feature map whatever the pooling (a run reads it "
        "memory-mapped, batch by batch).",
        "top-1: ImageNet top-1 of the Keras weights as Keras publishes it (sources: --json).",
        "weights: cached = the no-top ImageNet file is in the Keras cache; missing = "
        "--weights imagenet needs network or the file copied there.",
    ]
    speed = next((s for _, s in rows if s is not None), None)
    if speed is not None:
        notes.append(
            f"img/s: kit's compiled forward pass (no decoding) with random weights (the speed "
            f"does not depend on them), batch {speed.batch_size}, {speed.batches} timed batches "
            f"after {speed.warmup} warm-up, on {speed.device}; min/10k: minutes to extract "
            f"{CACHE_IMAGES:,} images (one TTA view).")
    return "\n".join(notes)
