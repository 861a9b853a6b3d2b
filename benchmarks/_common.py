"""Shared pieces of the benchmarks: the result record, the results file, synthetic JPEGs, timing.

Importing this module puts the repository root on `sys.path`, so `python benchmarks/run.py`
uses the `kit` package of this checkout without installing it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BENCH_DIR = REPO / "benchmarks"
WORK_DIR = BENCH_DIR / "work"  # git-ignored
RESULTS_FILE = BENCH_DIR / "results.json"
QUICK_RESULTS_FILE = WORK_DIR / "results.quick.json"
JPEG_QUALITY = 90

T = TypeVar("T")


# ---------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One benchmark's figure, its target and the raw numbers behind it."""

    value: float
    unit: str
    target: str
    met: bool
    details: dict[str, Any] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        """The record stored in results.json (adds the date and the machine)."""
        return {
            "value": round(float(self.value), 4),
            "unit": self.unit,
            "target": self.target,
            "met": bool(self.met),
            "details": self.details,
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(),
        }


def machine_info() -> dict[str, Any]:
    """Facts about this machine and its software (versions read without importing them)."""

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "tensorflow": version("tensorflow"),
        "keras": version("keras"),
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def merge_results(path: Path, entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Update only `entries`' keys in the JSON file at `path` (atomically); return the whole file.

    Entries written by other benchmarks are kept as they are.
    """
    from kit.core.atomic import atomic_write_text

    merged: dict[str, Any] = {}
    if path.is_file():
        merged = json.loads(path.read_text())
        if not isinstance(merged, dict):
            raise ValueError(f"{path} must hold a JSON object of benchmark entries; "
                             f"received a {type(merged).__name__}")
    merged.update(entries)
    atomic_write_text(path, json.dumps(dict(sorted(merged.items())), indent=2) + "\n")
    return merged


# ---------------------------------------------------------------- timing and work folders


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Call `fn` and return its result with the wall-clock seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


@contextmanager
def work_folder(name: str) -> Iterator[Path]:
    """A fresh folder under benchmarks/work/, removed afterwards."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=WORK_DIR))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- other processes' CPU use


@dataclass(frozen=True)
class _CpuSnapshot:
    wall: float
    machine_busy: float  # CPU seconds every process on the machine has used since boot
    own: float  # CPU seconds of this process and its finished children


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (0 once it is gone)."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def _snapshot(pids: tuple[int, ...]) -> _CpuSnapshot:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    times = os.times()
    own = times.user + times.system + times.children_user + times.children_system
    return _CpuSnapshot(wall=time.perf_counter(), machine_busy=busy / os.sysconf("SC_CLK_TCK"),
                        own=own + sum(_process_cpu_seconds(pid) for pid in pids))


class CpuMeter:
    """How much of the machine's CPU other processes took while a `with` block ran.

    `foreign_share` is their CPU seconds / (wall seconds x cores): 0 on an otherwise idle
    machine, 0.5 when something else kept one of two cores busy. `pids` are running child
    processes whose CPU counts as ours (finished, waited-for children always do). Linux only.
    """

    def __init__(self, pids: tuple[int, ...] = ()) -> None:
        self.pids = pids

    def __enter__(self) -> CpuMeter:
        self._start = _snapshot(self.pids)
        self._end: _CpuSnapshot | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        self._end = _snapshot(self.pids)

    @property
    def own_cpu_seconds(self) -> float:
        """CPU seconds this process (and `pids`) used in the block."""
        end = self._end or _snapshot(self.pids)
        return end.own - self._start.own

    @property
    def foreign_share(self) -> float:
        end = self._end or _snapshot(self.pids)
        wall = end.wall - self._start.wall
        foreign = (end.machine_busy - self._start.machine_busy) - (end.own - self._start.own)
        return max(0.0, foreign / (wall * (os.cpu_count() or 1))) if wall > 0 else 0.0


class Stopwatch:
    """Accumulates the wall time of the steps of one benchmark arm, and other processes' CPU
    share during them (interleaving two arms' steps spreads a busy neighbour over both)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0  # this process's own CPU time in the steps
        self._foreign_seconds = 0.0

    def run(self, fn: Callable[[], T]) -> T:
        with CpuMeter() as meter:
            result, seconds = timed(fn)
        self.seconds += seconds
        self.cpu_seconds += meter.own_cpu_seconds
        self._foreign_seconds += meter.foreign_share * seconds
        return result

    @property
    def foreign_share(self) -> float:
        return self._foreign_seconds / self.seconds if self.seconds else 0.0


def wait_until_quiet(*, max_wait: float, threshold: float = 0.1, sample: float = 3.0) -> float:
    """Wait (up to `max_wait` s) until other processes use < `threshold` of the CPU; return the
    seconds waited. Benchmarks on a shared machine are only comparable when it is quiet."""
    start = time.perf_counter()
    while True:
        with CpuMeter() as meter:
            time.sleep(sample)
        waited = time.perf_counter() - start
        if meter.foreign_share < threshold or waited >= max_wait:
            return waited
        print(f"  waiting: other processes use {meter.foreign_share:.0%} of the CPU", flush=True)


# ---------------------------------------------------------------- synthetic JPEGs


@dataclass(frozen=True, kw_only=True)
class ImageSet:
    """Synthetic labelled JPEG files."""

    files: tuple[Path, ...]
    labels: np.ndarray  # int64, one per file
    size: tuple[int, int]  # (width, height)

    @property
    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def synthetic_image(rng: np.random.Generator, size: tuple[int, int], label: int,
                    n_classes: int) -> np.ndarray:
    """A BGR photo-like image: smooth random background, clutter, one class-coloured 'fish'."""
    width, height = size
    coarse = rng.integers(30, 220, (height // 48 + 2, width // 48 + 2, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(3, 7))):  # deck clutter
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(image, p1, p2, colour, thickness=int(rng.integers(2, 12)))
    hue = int(180 * label / n_classes)
    colour_hsv = np.uint8([[[hue, 200, 220]]])
    colour = tuple(int(c) for c in cv2.cvtColor(colour_hsv, cv2.COLOR_HSV2BGR)[0, 0])
    centre = (int(rng.integers(width // 4, 3 * width // 4)),
              int(rng.integers(height // 4, 3 * height // 4)))
    length = int(min(width, height) * rng.uniform(0.15, 0.3))
    axes = (length, max(4, int(length * (0.2 + 0.6 * label / n_classes))))
    cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    noise = rng.normal(0.0, 6.0, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def write_jpegs(folder: Path, *, count: int, size: tuple[int, int], n_classes: int,
                seed: int) -> ImageSet:
    """Write `count` synthetic JPEGs (quality 90), labels balanced and shuffled, from `seed`."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % n_classes).astype(np.int64)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, label in enumerate(labels):
        file = folder / f"img_{i:05d}.jpg"
        image = synthetic_image(rng, size, int(label), n_classes)
        if not cv2.imwrite(str(file), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"cv2.imwrite could not write {file}")
        files.append(file)
    return ImageSet(files=tuple(files), labels=labels, size=size)
