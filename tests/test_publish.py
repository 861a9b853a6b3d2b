"""Nothing left behind: a writer killed (SIGKILL) mid-write or mid-publication leaves files the
next command removes or finishes, and a submission never stands without its record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.core.atomic import remove_stale_temps
from kit.runs.find import run_ids
from kit.runs.publish import commit, stage, tidy
from kit.runs.record import RunRecord
from tests.conftest import REPO

RUN = "20260101-000000-abcdef12-0a1b"

CHILD = """
import sys, time
from pathlib import Path
from kit.core.atomic import atomic_path
from kit.runs.publish import stage
from kit.runs.record import RunRecord
folder, step = Path(sys.argv[1]), sys.argv[2]
if step == "temp":
    with atomic_path(folder / "shard-0.npy") as tmp:
        tmp.write_bytes(b"half")
        (folder / "ready").write_text("1")
        time.sleep(60)
pending = stage(folder, "RUN", lambda path: path.write_text("id,label\\n1,0.5\\n"))
if step == "record":
    RunRecord(competition="c", run_id="RUN", run_dir="r").write(pending.record)
(folder / "ready").write_text("1")
time.sleep(60)
"""


def _killed_at(folder: Path, step: str) -> None:
    """Run the child up to `step`, then SIGKILL it (a real kill: no cleanup runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen([sys.executable, "-c", CHILD.replace("RUN", RUN), str(folder),
                              step], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not (folder / "ready").exists():
            assert child.poll() is None and time.monotonic() < deadline, "child did not start"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    (folder / "ready").unlink()


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_submission_killed_before_its_record_is_removed(tmp_path: Path):
    _killed_at(tmp_path, "staged")
    assert len(_hidden(tmp_path)) == 1 and not (tmp_path / f"{RUN}.csv").exists()
    assert run_ids(tmp_path) == []  # reading the folder tidies it
    assert _hidden(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_a_publication_killed_after_its_record_is_finished(tmp_path: Path):
    _killed_at(tmp_path, "record")
    assert (tmp_path / f"{RUN}.json").is_file() and not (tmp_path / f"{RUN}.csv").exists()
    tidy(tmp_path)
    assert (tmp_path / f"{RUN}.csv").read_text() == "id,label\n1,0.5\n"
    assert _hidden(tmp_path) == []


def test_a_temporary_file_of_a_killed_writer_goes_and_a_live_ones_stays(tmp_path: Path):
    _killed_at(tmp_path, "temp")
    assert len(_hidden(tmp_path)) == 1 and not (tmp_path / "shard-0.npy").exists()
    live = tmp_path / f".x.{os.getpid()}.tmp"  # not our naming: never touched
    from kit.core.atomic import temp_tag

    mine = tmp_path / f".shard-1.{temp_tag()}-{'0' * 12}.tmp.npy"  # this live process's
    live.write_text("")
    mine.write_text("")
    assert [p.name for p in remove_stale_temps(tmp_path)][0].startswith(".shard-0.")
    assert _hidden(tmp_path) == sorted([live.name, mine.name])


def test_publishing_writes_the_record_and_the_csv_and_an_error_leaves_neither(tmp_path: Path):
    record = RunRecord(competition="c", run_id=RUN, run_dir="r")
    pending = stage(tmp_path, RUN, lambda path: path.write_text("id\n"))
    assert commit(pending, record) == (tmp_path / f"{RUN}.csv", tmp_path / f"{RUN}.json")
    assert _hidden(tmp_path) == []

    def broken(path: Path) -> None:
        path.write_text("half")
        raise ValueError("the submission is invalid")

    with pytest.raises(ValueError, match="invalid"):
        stage(tmp_path / "other", RUN, broken)
    assert list((tmp_path / "other").iterdir()) == []
