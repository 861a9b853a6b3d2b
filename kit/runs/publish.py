"""Publishing a run: its submission CSV and its run record appear together or not at all.

The CSV is written first under a hidden pending name (`.<run-id>.csv.<host>-<pid>.pending`),
then the record (atomically), then the CSV is renamed into place. A run killed before the record
leaves only the pending CSV, which the next command in the folder removes; one killed between the
record and the rename leaves a complete record and its pending CSV, and the next command finishes
the rename. So a `<run-id>.csv` never stands without its `<run-id>.json`, and nothing hidden is
left for good. Every command that writes or reads a submissions folder calls `tidy` first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kit.core.atomic import process_alive, remove_stale_temps, temp_tag
from kit.runs.record import RunRecord

_PENDING = re.compile(r"^\.(?P<run_id>.+)\.csv\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)\.pending$")


@dataclass(frozen=True)
class Pending:
    """A submission written but not yet published."""

    folder: Path
    run_id: str
    path: Path

    @property
    def submission(self) -> Path:
        return self.folder / f"{self.run_id}.csv"

    @property
    def record(self) -> Path:
        return self.folder / f"{self.run_id}.json"


def tidy(folder: Path) -> None:
    """Finish or remove what a killed publication left in `folder` (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    remove_stale_temps(folder)
    host = temp_tag().split("-", 1)[0]
    for path in folder.iterdir():
        match = _PENDING.match(path.name)
        if not match or (match["host"] == host and process_alive(int(match["pid"]))):
            continue
        record = folder / f"{match['run_id']}.json"
        if record.is_file():
            os.replace(path, folder / f"{match['run_id']}.csv")
        else:
            path.unlink(missing_ok=True)


def stage(folder: Path, run_id: str, write: Callable[[Path], object]) -> Pending:
    """Write the submission under its pending name with `write(path)` (which validates it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tidy(folder)
    pending = Pending(folder=folder, run_id=run_id,
                      path=folder / f".{run_id}.csv.{temp_tag()}.pending")
    try:
        write(pending.path)
    except BaseException:
        pending.path.unlink(missing_ok=True)
        raise
    return pending


def commit(pending: Pending, record: RunRecord) -> tuple[Path, Path]:
    """Write the record, then rename the submission into place; returns (submission, record).

    On an exception (or Ctrl-C) neither is left behind.
    """
    try:
        record.write(pending.record)
        os.replace(pending.path, pending.submission)
    except BaseException:
        pending.path.unlink(missing_ok=True)
        if not pending.submission.is_file():
            pending.record.unlink(missing_ok=True)
        raise
    return pending.submission, pending.record


def abandon(pending: Pending) -> None:
    """Drop a staged submission whose run failed before its record."""
    pending.path.unlink(missing_ok=True)


__all__ = ["Pending", "abandon", "commit", "stage", "tidy"]
