"""Finding run records: the newest run, a run by id (or unique prefix), the run of a submission.

Records live in `<submissions>/<competition>/<run-id>.json`; run ids start with their UTC time,
so sorting them sorts runs oldest first.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from kit.core.errors import InputError
from kit.runs.publish import tidy
from kit.runs.record import RunRecord, record_path

RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}(-[0-9a-f]{4})?$")


def run_ids(folder: Path) -> list[str]:
    """Run ids with a record in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    tidy(folder)
    return sorted(p.stem for p in folder.glob("*.json") if RUN_ID.match(p.stem))


def records_in(folder: Path) -> list[tuple[Path, RunRecord]]:
    """Every readable run record in `folder`, oldest first (other JSON files are skipped)."""
    out = []
    for run_id in run_ids(folder):
        path = folder / f"{run_id}.json"
        try:
            out.append((path, RunRecord.read(path)))
        except (InputError, OSError):
            continue
    return out


def record_of_submission(submission: Path) -> RunRecord | None:
    """The record `kit run` wrote beside a submission, or None (scored by hand, or unreadable)."""
    try:
        return RunRecord.read(record_path(submission))
    except (InputError, OSError):
        return None


def pick_run(folder: Path, competition: str, run_id: str | None) -> Path:
    """The record of `run_id` (or a unique prefix of one) in `folder`; the newest without it.

    Raises:
        InputError: No runs, an unknown id (close matches named) or an ambiguous prefix.
    """
    runs = run_ids(folder)
    if not runs:
        raise InputError(
            f"no runs of {competition} in {folder}: run `python -m kit run {competition} ...` "
            "first, or point --submissions-dir (or $KIT_SUBMISSIONS_DIR) at the folder it wrote to"
        )
    if run_id is None:
        return folder / f"{runs[-1]}.json"
    matches = [r for r in runs if r == run_id] or [r for r in runs if r.startswith(run_id)]
    if len(matches) == 1:
        return folder / f"{matches[0]}.json"
    if matches:
        raise InputError(
            f"run id prefix {run_id!r} matches {len(matches)} runs of {competition}: "
            f"{', '.join(matches[-5:])}; give more of the id"
        )
    close = difflib.get_close_matches(run_id, runs, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise InputError(
        f"unknown run id {run_id!r} for {competition} in {folder}.{hint} Newest runs: "
        f"{', '.join(reversed(runs[-3:]))}"
    )


def _same_root(record: RunRecord, data_root: Path) -> bool:
    return (record.data_root is not None
            and record.data_root.resolve() == Path(data_root).resolve())


def run_on_data(folder: Path, data_root: Path, *, run_id: str | None = None
                ) -> tuple[Path, RunRecord] | None:
    """The run `run_id`, or else the newest run in `folder` made on `data_root`; None if none.

    Raises:
        InputError: `run_id` is given but has no record (the recent ids are named), or its
            record belongs to another data folder.
    """
    records = records_in(folder)
    if run_id is not None:
        for path, record in records:
            if record.run_id == run_id:
                if not _same_root(record, data_root):
                    raise InputError(
                        f"run {run_id} was made on {record.data.get('root')}, not on "
                        f"{Path(data_root).resolve()}; pass the same --data/--demo as that run"
                    )
                return path, record
        known = ", ".join(r.run_id for _, r in records[-5:]) or "none"
        raise InputError(
            f"no run record {run_id}.json in {folder}; recent runs: {known}. Use --run with one "
            "of them, or --submissions-dir where that run wrote its record"
        )
    mine = [(r.created, r.run_id, p, r) for p, r in records if _same_root(r, data_root)]
    if not mine:
        return None
    _, _, path, record = max(mine, key=lambda item: (item[0], item[1]))
    return path, record


__all__ = ["RUN_ID", "pick_run", "record_of_submission", "records_in", "run_ids", "run_on_data"]
