"""Benchmarks of the size probe: header-only sizes against a full decode of the same JPEGs.

Usage:
    python benchmarks/size_probe.py            # both figures, merged into benchmarks/results.json
    python benchmarks/size_probe.py --quick    # a smoke test (benchmarks/work/results.quick.json)

`size_probe_speedup`: the same 1280x720 JPEGs read two ways, one run each: header only
(`kit.probes.size.read_sizes`, what `kit probe` uses) and full decode (`kit.data.images.load_image`).
The figure is decode time / header time (target >= 20x).

`size_probe_images_per_s`: images per second of the header-only reading (target >= 1000 on
2 cores). Both figures come from one measurement, made once per process.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from typing import Any

from _common import (  # also puts the repository root on sys.path
    QUICK_RESULTS_FILE,
    RESULTS_FILE,
    CpuMeter,
    Measurement,
    merge_results,
    timed,
    work_folder,
    write_jpegs,
)

from kit.data.images import load_image
from kit.probes.size import read_sizes

SIZE = (1280, 720)
N_IMAGES = 300
N_IMAGES_QUICK = 20
SPEEDUP_TARGET = 20.0
RATE_TARGET = 1000.0
SEED = 0


@functools.lru_cache(maxsize=2)
def _measure(quick: bool) -> dict[str, Any]:
    """Write the JPEGs once, then time header-only reading and full decoding, one run each."""
    count = N_IMAGES_QUICK if quick else N_IMAGES
    with work_folder("size-probe") as folder:
        images = write_jpegs(folder, count=count, size=SIZE, n_classes=8, seed=SEED)
        files = list(images.files)
        names = [f.name for f in files]
        with CpuMeter() as meter:
            reading, header_s = timed(lambda: read_sizes(files, names))
            _, decode_s = timed(lambda: [load_image(f) for f in files])
        total_bytes = images.total_bytes
    if reading.unreadable or any(
        (w, h) != SIZE for w, h in zip(reading.width, reading.height, strict=True)
    ):
        raise RuntimeError(f"header-only sizes are wrong: expected {SIZE} for every image")
    return {"n_images": count, "size": f"{SIZE[0]}x{SIZE[1]}", "header_s": round(header_s, 4),
            "decode_s": round(decode_s, 4), "mean_jpeg_kib": round(total_bytes / count / 1024, 1),
            "foreign_cpu_share": round(meter.foreign_share, 3)}


def size_probe_speedup(quick: bool = False) -> dict[str, Any]:
    """Full-decode time / header-only time on the same 1280x720 JPEGs."""
    details = _measure(quick)
    speedup = details["decode_s"] / details["header_s"]
    return {"value": speedup, "unit": "x", "target": f">= {SPEEDUP_TARGET:g}",
            "met": speedup >= SPEEDUP_TARGET, "details": details}


def size_probe_images_per_s(quick: bool = False) -> dict[str, Any]:
    """Images per second of header-only size reading."""
    details = _measure(quick)
    rate = details["n_images"] / details["header_s"]
    return {"value": rate, "unit": "img/s", "target": f">= {RATE_TARGET:g}",
            "met": rate >= RATE_TARGET, "details": details}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few images, for a smoke test")
    args = parser.parse_args(argv)
    results_file = QUICK_RESULTS_FILE if args.quick else RESULTS_FILE
    for benchmark in (size_probe_speedup, size_probe_images_per_s):
        result = benchmark(args.quick)
        merge_results(results_file, {benchmark.__name__: Measurement(**result).entry()})
        print(f"{benchmark.__name__}: {result['value']:.1f} {result['unit']} "
              f"(target {result['target']}, met {result['met']}) {result['details']}")
    print(f"merged into {results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
