"""Loading a competition: `competitions/<name>/competition.py` by folder or bare name."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
from pathlib import Path

from kit.competition.declaration import Competition
from kit.core.errors import DeclarationError, InputError

COMPETITION_FILE = "competition.py"


def competitions_roots() -> tuple[Path, ...]:
    """Folders searched for competitions by bare name: `./competitions`, then the repository's."""
    repo = Path(__file__).resolve().parents[2] / "competitions"
    here = Path.cwd() / "competitions"
    return tuple(dict.fromkeys([here.resolve(), repo]))


def known_competitions() -> tuple[str, ...]:
    names: set[str] = set()
    for root in competitions_roots():
        if root.is_dir():
            names.update(p.name for p in root.iterdir() if (p / COMPETITION_FILE).is_file())
    return tuple(sorted(names))


def competition_folder(ref: str | Path) -> Path:
    """The folder of a competition: a path to it, or a bare name looked up in
    `competitions_roots()` (a same-named folder here without a competition.py does not count).

    Raises:
        InputError: No such competition (close matches and the known ones named).
    """
    path = Path(ref).expanduser()
    if (path / COMPETITION_FILE).is_file() or (path.is_dir() and len(path.parts) > 1):
        return path.resolve()
    if len(path.parts) == 1:
        for root in competitions_roots():
            if (root / path.name).is_dir():
                return (root / path.name).resolve()
    known = known_competitions()
    close = difflib.get_close_matches(path.name, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise InputError(
        f"unknown competition {str(ref)!r}: no such folder.{hint} Known competitions: "
        f"{', '.join(known) or 'none'} (pass a folder holding {COMPETITION_FILE}, "
        "e.g. competitions/fisheries)"
    )


def load_competition(ref: str | Path) -> Competition:
    """Load `COMPETITION` from a competition folder (path or bare name).

    Example:
        >>> load_competition("competitions/fisheries").classes[:2]
        ('ALB', 'BET')
    """
    folder = competition_folder(ref)
    source = folder / COMPETITION_FILE
    if not source.is_file():
        raise InputError(
            f"competition folder {folder} has no {COMPETITION_FILE}; a competition folder "
            "declares one Competition there"
        )
    spec = importlib.util.spec_from_file_location(f"kit_competition_{folder.name}", source)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot import {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    competition = getattr(module, "COMPETITION", None)
    if not isinstance(competition, Competition):
        raise DeclarationError(
            f"{source} must define COMPETITION = kit.competition.Competition(...); "
            f"received {type(competition).__name__}"
        )
    if competition.name != folder.name:
        competition = dataclasses.replace(competition, name=folder.name)
    return competition


__all__ = ["COMPETITION_FILE", "competition_folder", "competitions_roots", "known_competitions",
           "load_competition"]
