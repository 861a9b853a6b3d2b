"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

Every writer goes through a temporary file in the destination's own directory (so the final
``os.replace`` is a same-filesystem rename, atomic on POSIX and Windows) and removes it on failure
(an exception, Ctrl-C). A process killed outright cannot remove it; the temporary file's name
carries the host and process id that made it (``.<name>.<host>-<pid>-<random>.tmp``), so
:func:`remove_stale_temps`, which the kit calls on every folder it writes into, removes the ones
whose process is gone and leaves those of a writer still at work.

Example:
    >>> from pathlib import Path
    >>> import numpy as np
    >>> with atomic_path(Path("/tmp/kit-example/oof.npy")) as tmp:  # doctest: +SKIP
    ...     np.save(tmp, np.zeros(3))
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kit.core.errors import DeclarationError, InputError, MissingFileError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "process_alive",
           "remove_stale_temps", "temp_tag"]

# Temporary files are created with mode 0o666, so the kernel applies the umask exactly as for a
# plain open(); a replaced file's own mode is carried over.
_NEW_FILE_MODE = 0o666


def _check_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise DeclarationError(
            f"path must be a pathlib.Path or str; received path={path!r} "
            f"of type {type(path).__name__}. Pass Path('...')."
        )
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise InputError(f"path must name a file; received path={str(path)!r}.")
    if path.is_dir():
        raise IsADirectoryError(
            f"path must name a file, but {str(path)!r} is a directory; choose a file name inside it."
        )
    return path


STALE_FOREIGN_SECONDS = 24 * 3600  # another host's (or an older kit's) temporary file
_TEMP = re.compile(r"^\..+\.(?:(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-)?[0-9a-f]{12}\.tmp(\.[^/]*)?$")


def _host() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def temp_tag() -> str:
    """`<host>-<pid>`: who made a temporary file, so a later command can tell a dead writer's."""
    return f"{_host()}-{os.getpid()}"


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_stale(path: Path, match: re.Match[str]) -> bool:
    if match["pid"] is not None and match["host"] == _host():
        return not process_alive(int(match["pid"]))
    try:
        return time.time() - path.stat().st_mtime > STALE_FOREIGN_SECONDS
    except FileNotFoundError:
        return False


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files in `folder` (not below it) whose writer is gone; return them.

    A temporary file of a process alive on this host is kept (it may still be writing); one of
    another host, or without a tag (an older kit), is removed once it is a day old.
    """
    removed = []
    if not Path(folder).is_dir():
        return removed
    for path in Path(folder).iterdir():
        match = _TEMP.match(path.name)
        if match and path.is_file() and _is_stale(path, match):
            _remove_quietly(path)
            removed.append(path)
    return removed


def _create_temp(parent: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """Create a new empty file beside the target (umask applied); return its fd and path."""
    while True:
        candidate = parent / f"{prefix}{temp_tag()}-{uuid.uuid4().hex[:12]}{suffix}"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE)
        except FileExistsError:
            continue
        return fd, candidate


def _keep_mode(tmp: Path, path: Path) -> None:
    """Give the temporary file the mode of the file it replaces, if there is one."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically, creating parent directories.

    Args:
        path: Destination file; replaced if it exists.
        data: The complete file contents.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        TypeError: If ``data`` is not bytes-like or ``path`` is not path-like.
    """
    path = _check_path(path)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DeclarationError(
            f"data must be bytes; received data of type {type(data).__name__}. "
            "Use atomic_write_text for str."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = _create_temp(path.parent, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        _keep_mode(tmp_path, path)
        os.replace(tmp_path, path)
    except BaseException:
        _remove_quietly(tmp_path)
        raise
    return path


def atomic_write_text(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Writes ``text`` to ``path`` atomically (encoded with ``encoding``), creating parent dirs.

    Newlines are written as given (no platform translation).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        TypeError: If ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise DeclarationError(
            f"text must be a str; received text of type {type(text).__name__}. "
            "Use atomic_write_bytes for bytes."
        )
    return atomic_write_bytes(path, text.encode(encoding))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path`` for libraries that write files themselves.

    The temporary name ends with all of ``path``'s suffixes (``.npy``, ``.csv``, ``.weights.h5``)
    because some writers append or check them. On normal exit the file is fsynced and renamed
    to ``path``; on an exception it is removed and the exception propagates. The temporary
    file exists (empty) when yielded; if the body deletes it without writing a new one,
    ``FileNotFoundError`` is raised and ``path`` is left untouched.

    Example:
        >>> with atomic_path(Path("folds.csv")) as tmp:  # doctest: +SKIP
        ...     df.to_csv(tmp, index=False)
    """
    path = _check_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    fd, tmp_path = _create_temp(path.parent, f".{stem}.", f".tmp{suffix}")
    os.close(fd)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise MissingFileError(
                f"nothing was written to the temporary file for {path}; "
                "write to the path yielded by atomic_path."
            )
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        _keep_mode(tmp_path, path)
        os.replace(tmp_path, path)
    except BaseException:
        _remove_quietly(tmp_path)
        raise
