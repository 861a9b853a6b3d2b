"""Safe extraction of competition archives (.zip, .7z) into a data folder.

Kaggle ships competition data as archives, sometimes nested (`train.zip` inside the
competition's zip; fisheries stage 2 as `test_stg2.7z`). Every member is checked before
anything is written, and the whole archive is refused, with a message naming the member, when
one member:

- would land outside the target (an absolute name, a drive letter or a `..` component);
- is a symbolic link, a hard link or a special file (device, FIFO, socket);
- is encrypted, appears twice, or breaks a limit of :class:`ExtractLimits` (total size, member
  count, compression ratio: a small member that inflates to gigabytes of zeros is refused).

Archives are extracted into a temporary folder beside the target, nested archives are
unpacked in place, and the folder is renamed to the target only when everything succeeded. A
marker file records which archives produced the folder: extracting the same archives again is
skipped, and a leftover temporary folder of an interrupted extraction is removed and the work
redone.

`.7z` needs the `py7zr` package (a dependency of kit). Plain `.csv` files (e.g. the sample
submission of dogs-vs-cats) are copied as they are.

Example:
    >>> extract_archives([Path("fisheries.zip")], Path("data/fisheries"))  # doctest: +SKIP
    ExtractResult(target=PosixPath('data/fisheries'), files=..., skipped=False, ...)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from kit.core.atomic import process_alive, temp_tag
from kit.core.errors import InputError

__all__ = [
    "ARCHIVE_SUFFIXES",
    "MARKER",
    "ExtractLimits",
    "ExtractResult",
    "Member",
    "UnsafeArchiveError",
    "extract_archives",
    "list_members",
]

ARCHIVE_SUFFIXES: tuple[str, ...] = (".zip", ".7z")
PLAIN_SUFFIXES: tuple[str, ...] = (".csv",)
MARKER = ".kit-extracted.json"
"""File written into an extracted folder: which archives produced it, how many files, bytes."""

_SKIPPED_PREFIXES = ("__MACOSX/",)  # resource forks added by macOS zip tools
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
Log = Callable[[str], None]


class UnsafeArchiveError(InputError):
    """An archive was refused as a whole; the message names the archive and the member."""


@dataclass(frozen=True, kw_only=True)
class ExtractLimits:
    """Limits that make a hostile or broken archive fail early instead of filling the disk.

    Args:
        max_total_bytes: most bytes all archives (nested ones included) may inflate to. The
            real competitions need about 2.5 GB (fisheries) and 0.9 GB (dogs-vs-cats).
        max_members: most members all archives may hold together.
        max_ratio: most a member may inflate relative to its compressed size; JPEGs barely
            compress, while a zero-filled member inflates about 1000x.
        ratio_floor_bytes: members smaller than this are exempt from the ratio check (a small
            text file may compress well).
        max_depth: how deep archives may nest (1: no archive inside an archive).
    """

    max_total_bytes: int = 64 * 2**30
    max_members: int = 1_000_000
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 8 * 2**20
    max_depth: int = 3

    def __post_init__(self) -> None:
        for name in ("max_total_bytes", "max_members", "ratio_floor_bytes", "max_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer; received {name}={value!r}")
        if not isinstance(self.max_ratio, int | float) or self.max_ratio <= 1:
            raise InputError(f"max_ratio must be a number > 1; received max_ratio={self.max_ratio!r}")


@dataclass(frozen=True, kw_only=True)
class Member:
    """One archive member as its header describes it.

    Args:
        name: the member's name as stored.
        kind: `file`, `dir`, `symlink` (also hard links) or `special`.
        size: uncompressed size in bytes.
        compressed: compressed size in bytes, or None where the format does not say (7z solid
            blocks).
        encrypted: whether the member needs a password.
    """

    name: str
    kind: str
    size: int
    compressed: int | None = None
    encrypted: bool = False


@dataclass(frozen=True, kw_only=True)
class ExtractResult:
    """What :func:`extract_archives` produced.

    Args:
        target: the data folder.
        archives: the archives' file names, in the order given.
        nested: archives found inside them and unpacked in place (paths relative to target).
        files: files written (nested archives excluded).
        bytes: bytes written.
        skipped: True when the folder already held exactly these archives, extracted.
    """

    target: Path
    archives: tuple[str, ...]
    nested: tuple[str, ...]
    files: int
    bytes: int
    skipped: bool

    def to_dict(self) -> dict:
        out = asdict(self)
        out["target"] = str(self.target)
        out["archives"], out["nested"] = list(self.archives), list(self.nested)
        return out


class _Budget:
    """Members and bytes still allowed, shared by all archives of one extraction."""

    def __init__(self, limits: ExtractLimits) -> None:
        self.limits = limits
        self.members = 0
        self.bytes = 0

    def take(self, archive: str, member: Member) -> None:
        self.members += 1
        self.bytes += member.size
        if self.members > self.limits.max_members:
            raise UnsafeArchiveError(
                f"archive {archive} refused: more than {self.limits.max_members} members in all "
                f"(at member {member.name!r}); raise ExtractLimits.max_members if this is genuine"
            )
        if self.bytes > self.limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"archive {archive} refused: member {member.name!r} brings the extracted size to "
                f"{self.bytes} bytes, over the limit of {self.limits.max_total_bytes} bytes"
            )


# ---------------------------------------------------------------- listing


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode):  # 3: unix, mode bits are meaningful
        if stat.S_ISLNK(mode):
            return "symlink"
        if stat.S_ISDIR(mode):
            return "dir"
        if not stat.S_ISREG(mode):
            return "special"
    return "dir" if info.is_dir() else "file"


def _zip_members(path: Path) -> list[Member]:
    try:
        with zipfile.ZipFile(path) as archive:
            return [
                Member(name=info.filename, kind=_zip_kind(info), size=info.file_size,
                       compressed=info.compress_size, encrypted=bool(info.flag_bits & 0x1))
                for info in archive.infolist()
            ]
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"cannot read zip archive {path}: {error}; download it again") from error


def _import_py7zr():
    try:
        import py7zr
    except ImportError as error:
        raise InputError(
            "extracting .7z archives needs the py7zr package, which is not installed: run "
            "`pip install py7zr` (it is a dependency of kit), or extract the archive by hand "
            "(`7z x FILE`) and pass the folder with --data DIR"
        ) from error
    return py7zr


def _7z_kind(entry) -> str:
    if entry.is_symlink or entry.is_junction:
        return "symlink"
    if entry.is_directory:
        return "dir"
    fmt = entry.st_fmt
    if entry.is_socket or (fmt and not (stat.S_ISREG(fmt) or stat.S_ISDIR(fmt))):
        return "special"
    return "file"


def _7z_members(path: Path) -> list[Member]:
    py7zr = _import_py7zr()
    try:
        with py7zr.SevenZipFile(path, mode="r") as archive:
            encrypted = bool(archive.needs_password())
            return [
                Member(name=entry.filename, kind=_7z_kind(entry), size=int(entry.uncompressed or 0),
                       compressed=entry.compressed, encrypted=encrypted)
                for entry in archive.files
            ]
    except py7zr.exceptions.PasswordRequired:
        return [Member(name="(header)", kind="file", size=0, encrypted=True)]
    except (py7zr.exceptions.ArchiveError, OSError) as error:
        raise InputError(f"cannot read 7z archive {path}: {error}; download it again") from error


def list_members(archive: Path) -> list[Member]:
    """The members of a `.zip` or `.7z` archive, read from its headers (nothing is extracted).

    Raises:
        ValueError: the file is missing, of another format, or not a readable archive.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise InputError(f"archive {archive} does not exist; pass the path of a downloaded file")
    suffix = archive.suffix.lower()
    if suffix == ".zip":
        return _zip_members(archive)
    if suffix == ".7z":
        return _7z_members(archive)
    raise InputError(
        f"archive {archive} has an unsupported format {suffix!r}; supported: "
        f"{', '.join(ARCHIVE_SUFFIXES)} (and plain {', '.join(PLAIN_SUFFIXES)} files)"
    )


# ---------------------------------------------------------------- checking


def _safe_parts(archive: str, name: str) -> tuple[str, ...]:
    """The member's path components, or UnsafeArchiveError when it could leave the target."""
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"archive {archive} refused: member {name!r} has an invalid name")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        raise UnsafeArchiveError(
            f"archive {archive} refused: member {name!r} has an absolute path and would land "
            "outside the target folder"
        )
    parts = tuple(p for p in PurePosixPath(unified).parts if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(
            f"archive {archive} refused: member {name!r} has a '..' component and could land "
            "outside the target folder"
        )
    return parts


def _check_members(archive: str, members: list[Member], limits: ExtractLimits,
                   budget: _Budget) -> list[Member]:
    """Checks every member; returns those to extract (files and dirs, macOS forks dropped)."""
    seen: set[tuple[str, ...]] = set()
    kept = []
    for member in members:
        if member.encrypted:
            raise UnsafeArchiveError(
                f"archive {archive} refused: member {member.name!r} is encrypted; extract it by "
                "hand with its password and pass the folder with --data DIR"
            )
        parts = _safe_parts(archive, member.name)
        if member.kind == "symlink":
            raise UnsafeArchiveError(
                f"archive {archive} refused: member {member.name!r} is a link; links are never "
                "extracted"
            )
        if member.kind == "special":
            raise UnsafeArchiveError(
                f"archive {archive} refused: member {member.name!r} is a special file (device, "
                "FIFO or socket)"
            )
        if not parts or member.name.replace("\\", "/").startswith(_SKIPPED_PREFIXES):
            continue
        if member.kind == "file":
            if parts in seen:
                raise UnsafeArchiveError(
                    f"archive {archive} refused: member {member.name!r} appears twice"
                )
            seen.add(parts)
            if (member.compressed is not None and member.size >= limits.ratio_floor_bytes
                    and member.size > limits.max_ratio * max(member.compressed, 1)):
                raise UnsafeArchiveError(
                    f"archive {archive} refused: member {member.name!r} inflates from "
                    f"{member.compressed} to {member.size} bytes, a ratio over the limit of "
                    f"{limits.max_ratio:g} (a decompression bomb?)"
                )
        budget.take(archive, member)
        kept.append(member)
    return kept


# ---------------------------------------------------------------- extracting


def _inside(root: Path, parts: tuple[str, ...]) -> Path:
    destination = root.joinpath(*parts)
    if not destination.resolve().is_relative_to(root.resolve()):
        raise UnsafeArchiveError(f"member {'/'.join(parts)!r} would land outside {root}")
    return destination


def _extract_zip(path: Path, dest: Path, members: list[Member]) -> tuple[int, int]:
    files = written = 0
    wanted = {m.name: m for m in members}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            member = wanted.get(info.filename)
            if member is None:
                continue
            target = _inside(dest, _safe_parts(path.name, info.filename))
            if member.kind == "dir":
                target.mkdir(parents=True, exist_ok=True)
                continue
            if target.exists():
                raise UnsafeArchiveError(
                    f"archive {path.name} refused: member {info.filename!r} would overwrite a "
                    "file from another archive"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            count = 0
            with archive.open(info) as source, open(target, "xb") as sink:
                for chunk in iter(lambda source=source: source.read(_CHUNK), b""):
                    count += len(chunk)
                    if count > member.size:  # never trust a stream past its header
                        raise UnsafeArchiveError(
                            f"archive {path.name} refused: member {info.filename!r} inflates "
                            f"past its declared {member.size} bytes"
                        )
                    sink.write(chunk)
            files += 1
            written += count
    return files, written


def _extract_7z(path: Path, dest: Path, members: list[Member],
                everything: list[Member]) -> tuple[int, int]:
    py7zr = _import_py7zr()
    declared = sum(m.size for m in everything)  # solid blocks inflate skipped members too
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with py7zr.SevenZipFile(path, mode="r", max_extract_size=max(declared, 0) + 1) as archive:
            archive.extract(path=dest, targets=[m.name for m in members])
    except py7zr.exceptions.DecompressionBombError as error:
        raise UnsafeArchiveError(
            f"archive {path.name} refused: it inflates past its declared {declared} bytes"
        ) from error
    except py7zr.exceptions.PasswordRequired as error:
        raise UnsafeArchiveError(
            f"archive {path.name} refused: it is encrypted; extract it by hand with its password "
            "and pass the folder with --data DIR"
        ) from error
    except (py7zr.exceptions.ArchiveError, OSError) as error:
        raise InputError(f"cannot extract 7z archive {path}: {error}") from error
    files = written = 0
    for entry in dest.rglob("*"):
        if entry.is_symlink():  # belt and braces: members were checked above
            raise UnsafeArchiveError(f"archive {path.name} produced a link {entry}; refused")
        if entry.is_file():
            files += 1
            written += entry.stat().st_size
    return files, written


def _extract_one(path: Path, dest: Path, limits: ExtractLimits, budget: _Budget) -> tuple[int, int]:
    """Extracts (or copies) one file into `dest`; returns (files, bytes)."""
    suffix = path.suffix.lower()
    if suffix in PLAIN_SUFFIXES:
        if not path.is_file():
            raise InputError(f"archive {path} does not exist; pass the path of a downloaded file")
        size = path.stat().st_size
        budget.take(path.name, Member(name=path.name, kind="file", size=size))
        destination = dest / path.name
        if destination.exists():
            raise UnsafeArchiveError(f"{path.name} is given twice (or also inside an archive)")
        shutil.copyfile(path, destination)
        return 1, size
    everything = list_members(path)
    members = _check_members(path.name, everything, limits, budget)
    declared, archive_size = sum(m.size for m in everything), path.stat().st_size
    if declared >= limits.ratio_floor_bytes and declared > limits.max_ratio * max(archive_size, 1):
        raise UnsafeArchiveError(  # many small members, each under the per-member floor
            f"archive {path.name} refused: it inflates from {archive_size} to {declared} bytes, "
            f"a ratio over the limit of {limits.max_ratio:g} (a decompression bomb?)"
        )
    if suffix == ".7z":
        scratch = Path(tempfile.mkdtemp(prefix=".7z-", dir=dest))
        try:
            counts = _extract_7z(path, scratch, members, everything)
            _merge(scratch, dest, path.name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return counts
    return _extract_zip(path, dest, members)


def _merge(source: Path, dest: Path, archive: str) -> None:
    """Moves the tree `source` into `dest`; a file that already exists there is an error."""
    for entry in sorted(source.rglob("*")):
        relative = entry.relative_to(source)
        target = dest / relative
        if entry.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif target.exists():
            raise UnsafeArchiveError(
                f"archive {archive} refused: member {relative.as_posix()!r} would overwrite a "
                "file from another archive"
            )
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(entry, target)


def _nested(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in ARCHIVE_SUFFIXES)


def _fingerprint(archives: Sequence[Path]) -> list[dict]:
    out = []
    for path in archives:
        info = path.stat()
        out.append({"name": path.name, "size": info.st_size, "mtime_ns": info.st_mtime_ns})
    return out


def _read_marker(target: Path) -> dict | None:
    try:
        return json.loads((target / MARKER).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def _check_inputs(archives: Sequence[Path]) -> list[Path]:
    if isinstance(archives, str | Path) or not archives:
        raise InputError(
            f"archives must be a non-empty list of files; received archives={archives!r}"
        )
    paths = [Path(a).expanduser() for a in archives]
    for path in paths:
        if not path.is_file():
            raise InputError(f"archive {path} does not exist; pass the path of a downloaded file")
        suffix = path.suffix.lower()
        if suffix not in ARCHIVE_SUFFIXES + PLAIN_SUFFIXES:
            raise InputError(
                f"archive {path} has an unsupported format {suffix!r}; supported: "
                f"{', '.join(ARCHIVE_SUFFIXES)} (and plain {', '.join(PLAIN_SUFFIXES)} files)"
            )
    names = [p.name for p in paths]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"archives with the same file name given twice: {twice}")
    return paths


def extract_archives(archives: Sequence[Path], target: Path, *,
                     limits: ExtractLimits | None = None, log: Log | None = None) -> ExtractResult:
    """Extracts `archives` (and the archives inside them) into the folder `target`, safely.

    The contract: `target` ends up holding exactly the archives' files, or is left as it was.
    Pass every archive of a dataset in one call; a later call with other archives replaces the
    folder as a whole. A call with the same archives (same names, sizes and modification times)
    as the folder's marker does nothing and returns `skipped=True`.

    Args:
        archives: `.zip` or `.7z` files (plain `.csv` files are copied).
        target: the data folder; its parent is created. It must not exist, be empty, or hold a
            previous extraction (never a folder of other files, which is not touched).
        limits: size, count, ratio and nesting limits; the defaults fit the real competitions.
        log: called with one line per archive.

    Raises:
        UnsafeArchiveError: a member escapes the target, is a link or a special file, is
            encrypted, or a limit is broken (the message names the archive and the member).
        ValueError: a file is missing, of an unsupported format or unreadable, or `target`
            holds files kit did not extract.
    """
    limits = limits or ExtractLimits()
    paths = _check_inputs(archives)
    target = Path(target).expanduser()
    fingerprint = _fingerprint(paths)
    _finish_interrupted(target, log)
    marker = _read_marker(target)
    if marker is not None and marker.get("archives") == fingerprint:
        return ExtractResult(target=target, archives=tuple(p.name for p in paths),
                             nested=tuple(marker.get("nested", ())), files=int(marker["files"]),
                             bytes=int(marker["bytes"]), skipped=True)
    staging = _staging(target, marker, log)
    try:
        counts = _extract_all(paths, staging, limits, log)
        record = {"archives": fingerprint, "nested": counts.nested, "files": counts.files,
                  "bytes": counts.bytes}
        (staging / MARKER).write_text(json.dumps(record, indent=2))
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExtractResult(target=target, archives=tuple(p.name for p in paths),
                         nested=tuple(counts.nested), files=counts.files, bytes=counts.bytes,
                         skipped=False)


def _siblings(target: Path, kind: str) -> list[tuple[Path, bool]]:
    """`.<name>.<kind>-<host>-<pid>-...` folders beside `target`, and whether their writer is
    a process still alive on this host (older kits named them without the host)."""
    out = []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.{kind}-(?:(?P<host>[0-9a-f]{{6}})-)?"
                         r"(?P<pid>\d+)")
    for path in sorted(target.parent.glob(f".{target.name}.{kind}-*")):
        match = pattern.match(path.name)
        alive = bool(match and match["host"] == temp_tag().split("-")[0]
                     and process_alive(int(match["pid"])))
        out.append((path, alive))
    return out


def _finish_interrupted(target: Path, log: Log | None) -> None:
    """Finish a replacement a killed extraction left half-done: the old data folder set aside
    (`.<name>.old-*`) is removed once the new one is in place, or put back when it is not."""
    if not target.parent.is_dir():
        return
    for old, alive in _siblings(target, "old"):
        if alive:
            continue
        if target.exists():
            if log:
                log(f"removing the old data an interrupted extraction left: {old}")
            shutil.rmtree(old, ignore_errors=True)
        else:  # killed between setting the old folder aside and moving the new one in
            os.replace(old, target)


def _staging(target: Path, marker: dict | None, log: Log | None) -> Path:
    """A new empty folder beside `target` to extract into (leftovers of an interrupted
    extraction removed first), made with the user's umask like any other folder."""
    if target.exists() and (not target.is_dir() or (marker is None and any(target.iterdir()))):
        raise InputError(
            f"{target} already exists and holds files that kit did not extract; choose a new or "
            "empty folder (--data DIR), or remove it first"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale, alive in _siblings(target, "partial"):
        if not alive:  # an interrupted extraction: redo it
            if log:
                log(f"removing the leftovers of an interrupted extraction: {stale}")
            shutil.rmtree(stale, ignore_errors=True)
    staging = target.parent / f".{target.name}.partial-{temp_tag()}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    return staging


@dataclass
class _Counts:
    files: int = 0
    bytes: int = 0
    nested: list[str] = field(default_factory=list)

    def add(self, counts: tuple[int, int]) -> None:
        self.files, self.bytes = self.files + counts[0], self.bytes + counts[1]


def _extract_all(paths: Sequence[Path], staging: Path, limits: ExtractLimits,
                 log: Log | None) -> _Counts:
    """Every archive, then the archives inside them, level by level, into `staging`."""
    budget = _Budget(limits)
    counts = _Counts()
    for path in paths:
        if log:
            log(f"extracting {path.name}")
        counts.add(_extract_one(path, staging, limits, budget))
    for depth in range(2, limits.max_depth + 2):
        inner = _nested(staging)
        if not inner:
            break
        if depth > limits.max_depth:
            raise UnsafeArchiveError(
                f"archive {inner[0].relative_to(staging).as_posix()} is nested deeper than "
                f"{limits.max_depth} levels; refused"
            )
        for path in inner:
            relative = path.relative_to(staging).as_posix()
            if log:
                log(f"extracting nested {relative}")
            counts.add((-1, -path.stat().st_size))
            counts.add(_extract_one(path, path.parent, limits, budget))
            path.unlink()
            counts.nested.append(relative)
    return counts


def _swap_in(staging: Path, target: Path) -> None:
    """Replace `target` with the finished `staging` folder."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{temp_tag()}"
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
