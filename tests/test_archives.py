"""Tests for kit.kaggle.archives: nested competition archives, re-runs, and archive attacks."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from pathlib import Path

import py7zr
import pytest

from kit.kaggle import archives
from kit.kaggle.archives import (
    MARKER,
    ExtractLimits,
    UnsafeArchiveError,
    extract_archives,
    list_members,
)


def _zip(path: Path, members: dict[str, bytes], *, modes: dict[str, int] | None = None) -> Path:
    """A zip of `members`; `modes` gives unix file-type bits (links, FIFOs) to some of them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2017, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            if modes and name in modes:
                info.create_system = 3
                info.external_attr = modes[name] << 16
            archive.writestr(info, data)
    return path


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _7z(path: Path, members: dict[str, bytes]) -> Path:
    with py7zr.SevenZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(data, name)
    return path


def _competition_zip(tmp_path: Path) -> Path:
    """Laid out like Kaggle's fisheries download: inner zips, a zipped CSV and a 7z."""
    train = _zip_bytes({"train/ALB/img_00001.jpg": b"jpeg-1", "train/NoF/img_00002.jpg": b"jpeg-2"})
    stage1 = _zip_bytes({"test_stg1/img_00003.jpg": b"jpeg-3"})
    sample = _zip_bytes({"sample_submission_stg1.csv": b"image,ALB\nimg_00003.jpg,0.5\n"})
    stage2 = _7z(tmp_path / "test_stg2.7z", {"test_stg2/image_00001.jpg": b"jpeg-4"}).read_bytes()
    return _zip(tmp_path / "downloads" / "fisheries.zip", {
        "train.zip": train, "test_stg1.zip": stage1, "sample_submission_stg1.csv.zip": sample,
        "test_stg2.7z": stage2,
    })


# ---------------------------------------------------------------- the normal path


def test_nested_competition_archive_is_fully_extracted(tmp_path: Path) -> None:
    target = tmp_path / "data" / "fisheries"
    result = extract_archives([_competition_zip(tmp_path)], target)
    assert (target / "train" / "ALB" / "img_00001.jpg").read_bytes() == b"jpeg-1"
    assert (target / "test_stg1" / "img_00003.jpg").is_file()
    assert (target / "test_stg2" / "image_00001.jpg").read_bytes() == b"jpeg-4"
    assert (target / "sample_submission_stg1.csv").read_text().startswith("image,ALB")
    assert sorted(p.name for p in target.iterdir()) == [
        MARKER, "sample_submission_stg1.csv", "test_stg1", "test_stg2", "train"]
    assert not result.skipped and result.files == 5
    assert sorted(result.nested) == ["sample_submission_stg1.csv.zip", "test_stg1.zip",
                                     "test_stg2.7z", "train.zip"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["fisheries"]  # no leftovers


def test_the_same_archives_are_not_extracted_twice(tmp_path: Path) -> None:
    archive = _competition_zip(tmp_path)
    target = tmp_path / "data"
    extract_archives([archive], target)
    (target / "train" / "ALB" / "img_00001.jpg").write_bytes(b"touched")
    again = extract_archives([archive], target)
    assert again.skipped and again.files == 5
    assert (target / "train" / "ALB" / "img_00001.jpg").read_bytes() == b"touched"


def test_an_interrupted_extraction_is_redone(tmp_path: Path, monkeypatch) -> None:
    first = _zip(tmp_path / "a.zip", {"train/x.jpg": b"x"})
    second = _zip(tmp_path / "b.zip", {"test/y.jpg": b"y"})
    target = tmp_path / "data"
    real = archives._extract_one
    calls = []

    def crash_on_second(path, dest, limits, budget):
        calls.append(path.name)
        if path.name == "b.zip":
            raise KeyboardInterrupt
        return real(path, dest, limits, budget)

    monkeypatch.setattr(archives, "_extract_one", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        extract_archives([first, second], target)
    assert not target.exists() and list(tmp_path.glob(".data.partial-*")) == []
    monkeypatch.setattr(archives, "_extract_one", real)
    stale = tmp_path / ".data.partial-killed"  # what a kill -9 leaves behind
    (stale / "train").mkdir(parents=True)
    result = extract_archives([first, second], target)
    assert not result.skipped and result.files == 2
    assert not stale.exists()
    assert json.loads((target / MARKER).read_text())["files"] == 2


def test_other_archives_replace_a_previous_extraction(tmp_path: Path) -> None:
    target = tmp_path / "data"
    extract_archives([_zip(tmp_path / "a.zip", {"old.txt": b"1"})], target)
    extract_archives([_zip(tmp_path / "b.zip", {"new.txt": b"2"})], target)
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]


def test_plain_csv_files_are_copied(tmp_path: Path) -> None:
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("id,label\n1,0.5\n")
    train = _zip(tmp_path / "train.zip", {"train/cat.0.jpg": b"c"})
    result = extract_archives([train, sample], tmp_path / "cats")
    assert (tmp_path / "cats" / "sample_submission.csv").read_text() == "id,label\n1,0.5\n"
    assert result.files == 2 and result.to_dict()["archives"] == ["train.zip",
                                                                  "sample_submission.csv"]


def test_macos_resource_forks_are_skipped(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"train/x.jpg": b"x", "__MACOSX/train/._x.jpg": b"junk"})
    extract_archives([archive], tmp_path / "data")
    assert not (tmp_path / "data" / "__MACOSX").exists()


# ---------------------------------------------------------------- refusals of input


def test_a_folder_of_other_files_is_never_touched(tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"already exists and holds files that kit did not "
                                         r"extract; choose a new or empty folder"):
        extract_archives([_zip(tmp_path / "a.zip", {"x": b"x"})], target)
    assert (target / "notes.txt").read_text() == "keep"


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    rar = tmp_path / "data.rar"
    rar.write_bytes(b"Rar!")
    with pytest.raises(ValueError, match=r"has an unsupported format '\.rar'; supported: \.zip, "
                                         r"\.7z"):
        extract_archives([rar], tmp_path / "out")
    with pytest.raises(ValueError, match=r"archive .*nope\.zip does not exist"):
        extract_archives([tmp_path / "nope.zip"], tmp_path / "out")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"cannot read zip archive .*broken\.zip"):
        extract_archives([broken], tmp_path / "out")
    with pytest.raises(ValueError, match=r"archives must be a non-empty list"):
        extract_archives([], tmp_path / "out")


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match=r"max_members must be a positive integer; "
                                         r"received max_members=0"):
        ExtractLimits(max_members=0)
    with pytest.raises(ValueError, match=r"max_ratio must be a number > 1"):
        ExtractLimits(max_ratio=0.5)


# ---------------------------------------------------------------- attacks


@pytest.mark.parametrize(("name", "why"), [
    ("../evil.txt", r"has a '\.\.' component"),
    ("train/../../evil.txt", r"has a '\.\.' component"),
    ("..\\evil.txt", r"has a '\.\.' component"),
    ("/tmp/evil.txt", r"has an absolute path"),
    ("C:/evil.txt", r"has an absolute path"),
])
def test_members_escaping_the_target_refuse_the_whole_archive(tmp_path: Path, name: str,
                                                              why: str) -> None:
    archive = _zip(tmp_path / "in" / "evil.zip", {"train/ok.jpg": b"ok", name: b"pwned"})
    with pytest.raises(UnsafeArchiveError,
                       match=re.escape(f"archive evil.zip refused: member {name!r}") + f".*{why}"):
        extract_archives([archive], tmp_path / "out" / "data")
    assert not (tmp_path / "out" / "data").exists()
    assert list((tmp_path / "out").iterdir()) == []  # no partial folder left either
    assert not (tmp_path / "out" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(("mode", "what"), [
    (stat.S_IFLNK | 0o777, "is a link"),
    (stat.S_IFIFO | 0o644, r"is a special file \(device, FIFO or socket\)"),
    (stat.S_IFCHR | 0o644, "is a special file"),
])
def test_links_and_special_files_refuse_the_whole_archive(tmp_path: Path, mode: int,
                                                          what: str) -> None:
    archive = _zip(tmp_path / "links.zip", {"train/ok.jpg": b"ok", "train/passwd": b"/etc/passwd"},
                   modes={"train/passwd": mode})
    with pytest.raises(UnsafeArchiveError,
                       match=rf"^archive links\.zip refused: member 'train/passwd' {what}"):
        extract_archives([archive], tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_a_symlink_in_a_7z_is_refused(tmp_path: Path) -> None:
    link, ok = tmp_path / "link", tmp_path / "ok.jpg"
    os.symlink("/etc/passwd", link)
    ok.write_bytes(b"ok")
    archive = tmp_path / "test_stg2.7z"
    with py7zr.SevenZipFile(archive, "w") as seven:
        seven.write(ok, "test_stg2/ok.jpg")
        seven.write(link, "test_stg2/link.jpg")
    assert [m.kind for m in list_members(archive)] == ["file", "symlink"]
    with pytest.raises(UnsafeArchiveError,
                       match=r"^archive test_stg2\.7z refused: member 'test_stg2/link\.jpg' is a "
                             r"link"):
        extract_archives([archive], tmp_path / "data")


def test_an_attack_inside_a_nested_archive_is_found(tmp_path: Path) -> None:
    inner = _zip_bytes({"train/ok.jpg": b"ok", "../../escaped.txt": b"pwned"})
    outer = _zip(tmp_path / "competition.zip", {"train.zip": inner})
    with pytest.raises(UnsafeArchiveError,
                       match=r"^archive train\.zip refused: member '\.\./\.\./escaped\.txt'"):
        extract_archives([outer], tmp_path / "a" / "b" / "data")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert list((tmp_path / "a" / "b").iterdir()) == []


def test_a_large_zero_filled_member_is_refused_before_writing(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", {"train/zeros.jpg": bytes(40 * 2**20)})
    assert archive.stat().st_size < 200_000  # 40 MB of zeros in well under 1% of the space
    with pytest.raises(UnsafeArchiveError,
                       match=r"^archive bomb\.zip refused: member 'train/zeros\.jpg' inflates from "
                             r"\d+ to 41943040 bytes, a ratio over the limit of 200"):
        extract_archives([archive], tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_a_zero_filled_7z_is_refused(tmp_path: Path) -> None:
    one = _7z(tmp_path / "one.7z", {"zeros.bin": bytes(40 * 2**20)})
    with pytest.raises(UnsafeArchiveError,
                       match=r"^archive one\.7z refused: member 'zeros\.bin' inflates from \d+ to "
                             r"41943040 bytes"):
        extract_archives([one], tmp_path / "data")
    # members each under the ratio floor, in a solid block: the archive as a whole is checked
    solid = _7z(tmp_path / "solid.7z", {f"{i}.bin": bytes(5 * 2**20) for i in range(4)})
    with pytest.raises(UnsafeArchiveError, match=r"^archive solid\.7z refused: it inflates from "
                                                 r"\d+ to 20971520 bytes, a ratio over the limit"):
        extract_archives([solid], tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_many_small_zero_filled_members_are_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "spray.zip", {f"{i}.bin": bytes(2**20) for i in range(12)})
    with pytest.raises(UnsafeArchiveError, match=r"^archive spray\.zip refused: it inflates from "
                                                 r"\d+ to 12582912 bytes, a ratio over the limit"):
        extract_archives([archive], tmp_path / "data")


def test_total_size_and_member_count_limits(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", {f"train/{i}.jpg": bytes([i]) * 100 for i in range(5)})
    with pytest.raises(UnsafeArchiveError,
                       match=r"^archive many\.zip refused: member 'train/2\.jpg' brings the "
                             r"extracted size to 300 bytes, over the limit of 250 bytes"):
        extract_archives([archive], tmp_path / "a", limits=ExtractLimits(max_total_bytes=250))
    with pytest.raises(UnsafeArchiveError,
                       match=r"^archive many\.zip refused: more than 3 members in all \(at "
                             r"member 'train/3\.jpg'\)"):
        extract_archives([archive], tmp_path / "b", limits=ExtractLimits(max_members=3))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_nesting_depth_is_limited(tmp_path: Path) -> None:
    level3 = _zip_bytes({"x.txt": b"x"})
    level2 = _zip_bytes({"inner.zip": level3})
    outer = _zip(tmp_path / "outer.zip", {"middle.zip": level2})
    with pytest.raises(UnsafeArchiveError, match=r"inner\.zip is nested deeper than 2 levels"):
        extract_archives([outer], tmp_path / "data", limits=ExtractLimits(max_depth=2))
    result = extract_archives([outer], tmp_path / "data")
    assert (tmp_path / "data" / "x.txt").read_text() == "x" and result.files == 1


def test_encrypted_members_and_duplicates_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "enc.zip"
    _zip(archive, {"a.txt": b"a"})
    data = bytearray(archive.read_bytes())
    # set the "encrypted" flag bit in the local and the central header
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset] |= 0x1
    archive.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchiveError, match=r"member 'a\.txt' is encrypted"):
        extract_archives([archive], tmp_path / "data")
    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as handle:
        handle.writestr("a.txt", b"1")
        with pytest.warns(UserWarning):
            handle.writestr("a.txt", b"2")
    with pytest.raises(UnsafeArchiveError, match=r"member 'a\.txt' appears twice"):
        extract_archives([twice], tmp_path / "data")


# ---------------------------------------------------------------- interrupted replacements, modes

KILL_AFTER_SETTING_ASIDE = """
import os, sys, time
from pathlib import Path
from kit.kaggle import archives
target = Path(sys.argv[1])
def rename_then_die(staging, target):
    old = target.parent / f".{target.name}.old-{archives.temp_tag()}"
    target.rename(old)
    if sys.argv[2] == "after":
        staging.rename(target)
    (target.parent / "ready").write_text("1")
    time.sleep(60)
archives._swap_in = rename_then_die
archives.extract_archives([Path(sys.argv[3])], target)
"""


@pytest.mark.parametrize("moment", ["after", "before"])
def test_a_replacement_killed_midway_is_finished_by_the_next_call(tmp_path: Path, moment: str):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    first = _zip(tmp_path / "a.zip", {"train/x.txt": b"old"})
    second = _zip(tmp_path / "b.zip", {"train/y.txt": b"new"})
    target = tmp_path / "data" / "fisheries"
    extract_archives([first], target)
    child = subprocess.Popen([sys.executable, "-c", KILL_AFTER_SETTING_ASIDE, str(target),
                              moment, str(second)], cwd=REPO)
    deadline = time.monotonic() + 60
    while not (target.parent / "ready").exists():
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    (target.parent / "ready").unlink()
    assert any(p.name.startswith(".fisheries.old-") for p in target.parent.iterdir())
    lines: list[str] = []
    result = extract_archives([second], target, log=lines.append)
    assert sorted(p.name for p in target.parent.iterdir()) == ["fisheries"]
    assert (target / "train" / "y.txt").read_bytes() == b"new"
    assert result.skipped is (moment == "after")  # the new data was in place: nothing to redo


def test_extracted_folders_keep_the_users_umask(tmp_path: Path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "data"
        extract_archives([_zip(tmp_path / "a.zip", {"train/x.txt": b"x"})], target)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "train").stat().st_mode) == 0o755
