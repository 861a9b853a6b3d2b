"""Tests for kit.core.atomic."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.core.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_write_bytes_creates_parents_and_returns_path(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "data.bin"
    assert atomic_write_bytes(target, b"\x00\x01") == target
    assert target.read_bytes() == b"\x00\x01"
    assert _entries(target.parent) == ["data.bin"]


def test_write_text_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old")
    atomic_write_text(target, "new\nline\n")
    assert target.read_bytes() == b"new\nline\n"
    assert _entries(tmp_path) == ["run.json"]


def test_write_text_accepts_str_path(tmp_path: Path) -> None:
    assert atomic_write_text(str(tmp_path / "x.txt"), "é") == tmp_path / "x.txt"  # type: ignore[arg-type]
    assert (tmp_path / "x.txt").read_text(encoding="utf-8") == "é"


def test_write_failure_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "sub.csv"
    target.write_text("old")

    def fail_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("kit.core.atomic.os.replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert _entries(tmp_path) == ["sub.csv"]


def test_write_rejects_wrong_types(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="data must be bytes; received data of type str"):
        atomic_write_bytes(tmp_path / "x", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text must be a str; received text of type bytes"):
        atomic_write_text(tmp_path / "x", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path must be a pathlib.Path or str; received path=3"):
        atomic_write_text(3, "x")  # type: ignore[arg-type]
    with pytest.raises(IsADirectoryError, match="is a directory"):
        atomic_write_text(tmp_path, "x")
    assert _entries(tmp_path) == []


def test_atomic_path_success_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "folds.csv"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp != target
        assert tmp.name.endswith(".csv")
        pd.DataFrame({"id": ["a"], "fold": [0]}).to_csv(tmp, index=False)
        assert target.read_text() == "old"
    assert target.read_text().splitlines() == ["id,fold", "a,0"]
    assert _entries(tmp_path) == ["folds.csv"]


def test_atomic_path_failure_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "oof.npy"
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        np.save(tmp, np.arange(3))
        raise RuntimeError("boom")
    assert not target.exists()
    assert _entries(target.parent) == []


def test_atomic_path_keeps_full_suffix_for_writers(tmp_path: Path) -> None:
    target = tmp_path / "models" / "fold0.weights.h5"
    with atomic_path(target) as tmp:
        assert tmp.name.endswith(".weights.h5")
        assert tmp.name.startswith(".fold0.")
        tmp.write_bytes(b"weights")
    assert target.read_bytes() == b"weights"
    with atomic_path(tmp_path / "arr.npy") as tmp:
        np.save(tmp, np.arange(4))  # numpy would append .npy if the suffix were missing
    np.testing.assert_array_equal(np.load(tmp_path / "arr.npy"), np.arange(4))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["arr.npy", "fold0.weights.h5", "models"]


def test_atomic_path_temp_deleted_by_body_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_path(target) as tmp:
        tmp.unlink()
    assert _entries(tmp_path) == []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_umask_mode_and_existing_mode_is_kept(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_text(tmp_path / "new.txt", "x")
    assert _mode(tmp_path / "new.txt") == 0o666 & ~umask
    with atomic_path(tmp_path / "new.csv") as tmp:
        tmp.write_text("x")
    assert _mode(tmp_path / "new.csv") == 0o666 & ~umask
    existing = tmp_path / "kept.txt"
    existing.write_text("old")
    existing.chmod(0o640)
    atomic_write_text(existing, "new")
    assert _mode(existing) == 0o640
