"""Running `python -m kit ...` as a child process and measuring it, for the whole-run benchmarks
(`scale.py`, `cached_run.py`, `fused_quality.py`).

`run_kit` starts the command, samples the memory of its process tree every `SAMPLE_SECONDS` in a
thread (`TreeSampler`: the sum of `RssAnon` and of `VmRSS` over the process and every descendant,
read from `/proc/<pid>/status`; Linux only), times it, records other processes' CPU share
meanwhile (`_common.CpuMeter`), and reads back the run's `--json` summary and the run record it
points to (`timings`, `training`, `fold_scores`, ...).

Anonymous memory (`RssAnon`) is what the process allocated itself; file pages (the
memory-mapped feature cache, read JPEGs) are in `VmRSS` but not in `RssAnon`, and the kernel can
drop them under pressure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import REPO, CpuMeter

SAMPLE_SECONDS = 0.2
HEARTBEAT_SECONDS = 60.0  # how often a long child run prints its progress
GB = 1e9  # memory figures are in GB (10^9 bytes), the unit of issue 14's target
_STATUS_FIELDS = ("RssAnon", "VmRSS", "VmHWM")


# ---------------------------------------------------------------- memory of a process tree


def _status(pid: int) -> dict[str, int]:
    """`RssAnon`, `VmRSS` and `VmHWM` of a process in bytes (empty once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in _STATUS_FIELDS:
            values[name] = int(rest.split()[0]) * 1024  # the kernel writes kB (KiB)
    return values


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process now running."""
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            after_name = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents[int(entry.name)] = int(after_name[1])
    return parents


def _children(pid: int) -> list[int]:
    """The children of `pid`, from each of its threads' `children` file (cheap: no scan)."""
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return []
    for tid in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


# Kernels built without CONFIG_PROC_CHILDREN have no `children` files: scan every process then.
_HAS_CHILDREN_FILES = Path(f"/proc/self/task/{os.getpid()}/children").is_file()


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it."""
    if _HAS_CHILDREN_FILES:
        children = _children
    else:
        by_parent: dict[int, list[int]] = {}
        for pid, parent in _parents().items():
            by_parent.setdefault(parent, []).append(pid)

        def children(pid: int) -> list[int]:
            return by_parent.get(pid, [])

    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children(pid))
    return tree


@dataclass(frozen=True, kw_only=True)
class MemoryPeak:
    """The largest memory of a process tree seen by the sampler (bytes)."""

    anon_bytes: int  # largest sum of RssAnon over the tree in one sample
    rss_bytes: int  # largest sum of VmRSS over the tree in one sample
    root_hwm_bytes: int  # the kernel's peak VmRSS of the root process (between samples too)
    samples: int
    max_processes: int

    def to_dict(self) -> dict[str, Any]:
        return {"peak_anon_gb": round(self.anon_bytes / GB, 3),
                "peak_rss_gb": round(self.rss_bytes / GB, 3),
                "root_vm_hwm_gb": round(self.root_hwm_bytes / GB, 3),
                "memory_samples": self.samples, "max_processes": self.max_processes,
                "sample_seconds": SAMPLE_SECONDS}


class TreeSampler(threading.Thread):
    """Samples the summed RssAnon and VmRSS of `root`'s process tree until `finish()`."""

    def __init__(self, root: int, interval: float = SAMPLE_SECONDS) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self._stop_event = threading.Event()
        self.anon = self.rss = self.hwm = self.samples = self.processes = 0
        self.current_anon = 0

    def sample(self) -> None:
        anon = rss = 0
        tree = process_tree(self.root)
        for pid in tree:
            status = _status(pid)
            anon += status.get("RssAnon", 0)
            rss += status.get("VmRSS", 0)
            if pid == self.root and "VmHWM" in status:
                self.hwm = max(self.hwm, status["VmHWM"])
        self.current_anon = anon
        self.anon, self.rss = max(self.anon, anon), max(self.rss, rss)
        self.samples += 1
        self.processes = max(self.processes, len(tree))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def finish(self) -> MemoryPeak:
        self._stop_event.set()
        self.join()
        return MemoryPeak(anon_bytes=self.anon, rss_bytes=self.rss, root_hwm_bytes=self.hwm,
                          samples=self.samples, max_processes=self.processes)


# ---------------------------------------------------------------- running a kit command


@dataclass(frozen=True, kw_only=True)
class ChildRun:
    """A finished `python -m kit ...` child: its clock, CPU, contention and memory."""

    command: tuple[str, ...]
    log: Path
    wall_seconds: float
    cpu_seconds: float  # the child tree's own CPU time
    foreign_cpu_share: float  # other processes' share of the machine's CPU meanwhile
    memory: MemoryPeak
    summary: dict[str, Any] = field(default_factory=dict)  # the --json file, if asked for
    record: dict[str, Any] = field(default_factory=dict)  # the run record it points to

    @property
    def timings(self) -> dict[str, float]:
        return dict(self.record.get("timings") or self.summary.get("timings") or {})


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait(process: subprocess.Popen, sampler: TreeSampler, label: str) -> int:
    """Wait for `process`, printing its progress every `HEARTBEAT_SECONDS`."""
    start = last = time.perf_counter()
    while process.poll() is None:
        time.sleep(0.5)
        now = time.perf_counter()
        if now - last >= HEARTBEAT_SECONDS:
            last = now
            print(f"    {label}: {now - start:6.0f} s, RssAnon {sampler.current_anon / GB:.2f} GB "
                  f"(peak {sampler.anon / GB:.2f} GB)", flush=True)
    return process.returncode


def spawn_kit(args: Sequence[str], *, log: Path, label: str) -> ChildRun:
    """Run `python -m kit ARGS` from the repository root, measured; raise if it fails."""
    command = (sys.executable, "-m", "kit", *map(str, args))
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out, CpuMeter() as meter:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        sampler = TreeSampler(process.pid)
        sampler.start()
        try:
            code = _wait(process, sampler, label)
        finally:
            if process.poll() is None:  # interrupted: do not leave the child running
                process.terminate()
                process.wait()
            memory = sampler.finish()
        wall = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{label}: `{' '.join(command)}` exited with code {code}; the last "
                           f"lines of {log}:\n{_tail(log)}")
    return ChildRun(command=command, log=log, wall_seconds=wall,
                    cpu_seconds=meter.own_cpu_seconds, foreign_cpu_share=meter.foreign_share,
                    memory=memory)


def run_kit(args: Sequence[str], *, folder: Path, label: str) -> ChildRun:
    """`python -m kit run ...` (ARGS without `--json`), measured, with its summary and record.

    Raises:
        RuntimeError: the command failed, or a fold was resumed from an earlier run (a timed
            run must train every fold itself).
    """
    summary_file = folder / f"{label}.summary.json"
    child = spawn_kit([*args, "--json", str(summary_file)], log=folder / f"{label}.log",
                      label=label)
    summary = json.loads(summary_file.read_text())
    record = json.loads(Path(summary["record"]).read_text())
    resumed = [f["fold"] for f in record.get("fold_scores", []) if f.get("resumed")]
    if resumed:
        raise RuntimeError(f"{label}: folds {resumed} were resumed from an earlier run; use a "
                           "fresh --work-dir")
    return ChildRun(command=child.command, log=child.log, wall_seconds=child.wall_seconds,
                    cpu_seconds=child.cpu_seconds, foreign_cpu_share=child.foreign_cpu_share,
                    memory=child.memory, summary=summary, record=record)


def training_path(run: ChildRun) -> str:
    """The path that trained the folds, as the run record says (`fused` or `per-fold`)."""
    return str((run.record.get("training") or {}).get("path"))


def check_training_path(run: ChildRun, expected: str, label: str) -> None:
    """Raise unless the run record says `expected` trained the folds (a fused run may fall back
    to the per-fold path for what it cannot express; a comparison must know)."""
    path = training_path(run)
    if path != expected:
        raise RuntimeError(f"{label}: asked for --training {expected}, but the run record says "
                           f"training.path={path!r} ({run.log})")


def run_figures(run: ChildRun) -> dict[str, Any]:
    """The figures every whole-run benchmark reports for one run."""
    timings = run.timings
    summary = run.summary
    score = summary.get("local_score") or {}
    return {
        "wall_seconds": round(run.wall_seconds, 2),
        "timings": timings,
        # inside `total` but in no stage (e.g. resolving the weights, writing the record)
        "unstaged_seconds": round(timings.get("total", 0.0) - sum(
            v for k, v in timings.items() if k != "total"), 2),
        # the process's time outside `total`: start-up and imports, local scoring, the report
        "outside_stages_seconds": round(run.wall_seconds - timings.get("total", 0.0), 2),
        "cpu_seconds": round(run.cpu_seconds, 2),
        "foreign_cpu_share": round(run.foreign_cpu_share, 3),
        **run.memory.to_dict(),
        "training_path": training_path(run),
        "cv_log_loss": summary.get("cv_log_loss"),
        "prior_log_loss": summary.get("prior_log_loss"),
        "public": score.get("public"), "private": score.get("private"),
        "best_epochs": [f.get("best_epoch") for f in run.record.get("fold_scores", [])],
        "n_train": summary.get("n_train"), "n_test": summary.get("n_test"),
        "features": run.record.get("features"),
        "command": " ".join(run.command[1:]),
    }
