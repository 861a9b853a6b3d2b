"""The local leaderboard: every scored submission in a small SQLite table, ranked like Kaggle's.

The database is `<submissions dir>/leaderboard.sqlite`, one row per (competition, run id):
date, recipe summary and CV log loss (from the `<run-id>.json` run record beside the
submission), the local public/private log loss (scored against a solution file) and, once
submitted, Kaggle's own public/private scores. Scoring a submission again updates its row.

The ranking is by public log loss (Kaggle's score where known, else the local one); each entry
also shows its private rank and the shake-up between them (public rank minus private rank:
positive means it climbed on the private leaderboard).

Example:
    >>> record(Path("submissions/fisheries/run1.csv"), score, competition=fisheries,
    ...        submissions=Path("submissions"))  # doctest: +SKIP
    >>> print(format_table(rank(entries(database(Path("submissions")), "fisheries"))))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from kit.competition import Competition
from kit.core.errors import InputError, UnknownNameError
from kit.runs.find import record_of_submission
from kit.runs.record import RunRecord

__all__ = [
    "DB_NAME",
    "Entry",
    "FLAG_NOTE",
    "KaggleScores",
    "LeaderboardError",
    "RankedEntry",
    "database",
    "entries",
    "format_table",
    "rank",
    "recipe_summary",
    "record",
    "run_id_of",
    "set_kaggle",
    "upsert",
]

DB_NAME = "leaderboard.sqlite"
_COLUMNS = ("competition", "run_id", "submission", "date", "recipe", "cv_log_loss",
            "local_public", "local_private", "cv_score", "expected", "expected_low",
            "expected_high", "kaggle_public", "kaggle_private", "kaggle_ref", "kaggle_status",
            "kaggle_message")
_LOCAL = _COLUMNS[:12]  # what `record` writes; Kaggle's fields are set by `set_kaggle`
# columns added after the first version: added to old files
_ADDED = {"cv_score": "REAL", "expected": "REAL", "expected_low": "REAL",
          "expected_high": "REAL"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    competition TEXT NOT NULL,
    run_id TEXT NOT NULL,
    submission TEXT NOT NULL,
    date TEXT NOT NULL,
    recipe TEXT NOT NULL DEFAULT '',
    cv_log_loss REAL,
    local_public REAL,
    local_private REAL,
    cv_score REAL,
    expected REAL,
    expected_low REAL,
    expected_high REAL,
    kaggle_public REAL,
    kaggle_private REAL,
    kaggle_ref INTEGER,
    kaggle_status TEXT,
    kaggle_message TEXT,
    PRIMARY KEY (competition, run_id)
)
"""


class LeaderboardError(InputError):
    """The leaderboard database cannot be read or written; the message names the file."""


class Scored(Protocol):
    """What :func:`record` needs of a score (`kit.scoring.score.ScoreResult` has it)."""

    public: float | None
    private: float | None


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One submission on the local leaderboard.

    Args:
        competition: competition name (`fisheries`).
        run_id: the submission file's stem.
        submission: the submission file.
        date: when the run was made (ISO 8601), or when it was first recorded.
        recipe: a one-line summary of the recipe (backbone, weights, size, head, folds, TTA).
        cv_log_loss: out-of-fold log loss of the run, if known.
        local_public, local_private: the competition's metric against a local solution file.
        cv_score: out-of-fold score of the run in the competition's metric, if known.
        expected, expected_low, expected_high: the private score the run expected, and its
            95 % interval (the run record's `expected_private`), if known.
        kaggle_public, kaggle_private: Kaggle's scores once fetched.
        kaggle_ref: Kaggle's reference of the submission.
        kaggle_status: `pending`, `complete` or `error` once submitted.
        kaggle_message: the description the submission was sent with.
    """

    competition: str
    run_id: str
    submission: str
    date: str
    recipe: str = ""
    cv_log_loss: float | None = None
    local_public: float | None = None
    local_private: float | None = None
    cv_score: float | None = None
    expected: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    kaggle_public: float | None = None
    kaggle_private: float | None = None
    kaggle_ref: int | None = None
    kaggle_status: str | None = None
    kaggle_message: str | None = None

    @property
    def public(self) -> float | None:
        """Kaggle's public score where fetched, else the local one."""
        return self.kaggle_public if self.kaggle_public is not None else self.local_public

    @property
    def private(self) -> float | None:
        """Kaggle's private score where fetched, else the local one."""
        return self.kaggle_private if self.kaggle_private is not None else self.local_private

    @property
    def cv(self) -> float | None:
        """The out-of-fold score in the competition's metric (log loss where it is unknown)."""
        return self.cv_score if self.cv_score is not None else self.cv_log_loss

    def public_beats_interval(self, *, higher_is_better: bool = False) -> bool:
        """Whether the public score is better than the expected interval allows: a sign that
        something in the public test set (a leak) helps this run more than its CV knew."""
        public, low, high = self.public, self.expected_low, self.expected_high
        if public is None or low is None or high is None:
            return False
        return public > high if higher_is_better else public < low

    @property
    def score_source(self) -> str | None:
        if self.kaggle_public is not None or self.kaggle_private is not None:
            return "kaggle"
        if self.local_public is not None or self.local_private is not None:
            return "local"
        return None


@dataclass(frozen=True, kw_only=True)
class RankedEntry:
    """An entry with its ranks (1 = best; None without that score)."""

    entry: Entry
    public_rank: int | None
    private_rank: int | None
    cv_rank: int | None
    flagged: bool = False  # public beats the expected interval (`Entry.public_beats_interval`)

    @property
    def shake_up(self) -> int | None:
        """Public rank minus private rank: positive means the entry climbed in private."""
        if self.public_rank is None or self.private_rank is None:
            return None
        return self.public_rank - self.private_rank

    def to_dict(self) -> dict:
        return {
            **asdict(self.entry),
            "public": self.entry.public,
            "private": self.entry.private,
            "score_source": self.entry.score_source,
            "public_rank": self.public_rank,
            "private_rank": self.private_rank,
            "cv_rank": self.cv_rank,
            "shake_up": self.shake_up,
            "public_beats_interval": self.flagged,
        }


# ---------------------------------------------------------------- database


def database(submissions: Path) -> Path:
    """The leaderboard file under the submissions folder."""
    return Path(submissions) / DB_NAME


@contextlib.contextmanager
def _connect(db: Path) -> Iterator[sqlite3.Connection]:
    db = Path(db)
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        # closing() closes the file; `with connection` makes one transaction (rolled back on error)
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection, connection:
            connection.execute(_SCHEMA)
            _add_columns(connection)
            yield connection
    except sqlite3.Error as error:
        raise LeaderboardError(
            f"leaderboard database {db} cannot be used: {error}; move it away to start a new one"
        ) from error


def _add_columns(connection: sqlite3.Connection) -> None:
    """Columns a leaderboard written by an earlier version lacks."""
    have = {row[1] for row in connection.execute("PRAGMA table_info(entries)")}
    for name, kind in _ADDED.items():
        if name not in have:
            connection.execute(f"ALTER TABLE entries ADD COLUMN {name} {kind}")


def upsert(db: Path, entry: Entry) -> None:
    """Adds the entry, or updates its local fields (Kaggle's fields are kept)."""
    local = _LOCAL
    placeholders = ", ".join("?" for _ in local)
    updates = ", ".join(f"{c} = excluded.{c}" for c in local[2:])
    with _connect(db) as connection:
        connection.execute(
            f"INSERT INTO entries ({', '.join(local)}) VALUES ({placeholders}) "
            f"ON CONFLICT (competition, run_id) DO UPDATE SET {updates}",
            tuple(getattr(entry, c) for c in local),
        )


@dataclass(frozen=True, kw_only=True)
class KaggleScores:
    """What Kaggle says about a submission; None leaves the stored field as it was.

    Args:
        ref: Kaggle's reference of the submission.
        status: `pending`, `complete` or `error`.
        public, private: Kaggle's scores.
        message: the description the submission was sent with.
    """

    ref: int | None = None
    status: str | None = None
    public: float | None = None
    private: float | None = None
    message: str | None = None


def set_kaggle(db: Path, competition: str, run_id: str, scores: KaggleScores) -> None:
    """Stores Kaggle's answer for an entry.

    Raises:
        KeyError: no entry for (competition, run_id).
    """
    with _connect(db) as connection:
        cursor = connection.execute(
            "UPDATE entries SET kaggle_ref = COALESCE(?, kaggle_ref), "
            "kaggle_status = COALESCE(?, kaggle_status), "
            "kaggle_public = COALESCE(?, kaggle_public), "
            "kaggle_private = COALESCE(?, kaggle_private), "
            "kaggle_message = COALESCE(?, kaggle_message) "
            "WHERE competition = ? AND run_id = ?",
            (scores.ref, scores.status, scores.public, scores.private, scores.message,
             competition, run_id),
        )
        if cursor.rowcount == 0:
            raise UnknownNameError(f"no leaderboard entry for run {run_id!r} of {competition}; "
                                   "record the submission first")


def entries(db: Path, competition: str) -> list[Entry]:
    """Every entry of one competition (an absent database has none)."""
    if not Path(db).is_file():
        return []
    with _connect(db) as connection:
        rows = connection.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM entries WHERE competition = ? ORDER BY date, run_id",
            (competition,),
        ).fetchall()
    return [Entry(**dict(zip(_COLUMNS, row, strict=True))) for row in rows]


# ---------------------------------------------------------------- recording


def run_id_of(submission: Path) -> str:
    """The run id of a submission: its run record's `run_id`, else the file's stem."""
    run = record_of_submission(Path(submission))
    return run.run_id if run is not None and run.run_id else Path(submission).stem


def recipe_summary(run: RunRecord | None) -> str:
    """One line from a run record: `demo_cnn(demo) 64x64 dense/max 5-fold tta2 seed0`."""
    if run is None or not isinstance(run.config.get("recipe"), Mapping):
        return ""
    recipe, config, size = run.recipe, run.config, run.input_size
    parts = [f"{recipe.get('backbone')}({recipe.get('weights')})"]
    if size is not None:
        parts.append(f"{size[0]}x{size[1]}")
    parts += [f"{recipe.get('head')}/{recipe.get('pooling')}",
              f"{recipe.get('folds')}-fold{'-group' if config.get('groups_file') else ''}",
              f"tta{recipe.get('tta')}", f"seed{recipe.get('seed')}"]
    if config.get("sample"):
        parts.append(f"sample{config['sample']}")
    return " ".join(parts)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _expected(run: RunRecord | None) -> dict[str, float | None]:
    found = (run.expected_private or {}) if run is not None else {}
    return {"expected": _float(found.get("value")), "expected_low": _float(found.get("low")),
            "expected_high": _float(found.get("high"))}


def record(submission: Path, score: Scored | None, *, competition: Competition,
           submissions: Path) -> Entry:
    """Appends (or updates) the leaderboard entry of a submission, with its local score.

    The run id, date, recipe summary and CV come from the run record beside the submission
    (`<stem>.json`, written by `kit run`) when there is one; without it the run id is the
    file's stem.

    Args:
        submission: the submission CSV.
        score: its local score (public/private log loss), or None when it has none yet.
        competition: the competition it belongs to.
        submissions: the submissions folder holding the database.
    """
    submission = Path(submission)
    run = record_of_submission(submission)
    date = run.created if run is not None and run.created else None
    entry = Entry(
        competition=competition.name,
        run_id=run_id_of(submission),
        submission=str(submission.resolve()),
        date=date or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        recipe=recipe_summary(run),
        cv_log_loss=_float(run.cv_log_loss) if run is not None else None,
        cv_score=_float(run.cv) if run is not None else None,
        **_expected(run),
        local_public=None if score is None else score.public,
        local_private=None if score is None else score.private,
    )
    db = database(submissions)
    if score is None:
        known = {e.run_id: e for e in entries(db, competition.name)}
        previous = known.get(entry.run_id)
        if previous is not None:  # keep the local scores of an earlier scoring
            entry = Entry(**{**asdict(entry), "local_public": previous.local_public,
                             "local_private": previous.local_private})
    upsert(db, entry)
    return entry


# ---------------------------------------------------------------- ranking


def _ranks(items: list[Entry], key, sign: float) -> dict[str, int]:
    scored = [e for e in items if key(e) is not None]
    scored.sort(key=lambda e: (sign * key(e), e.date, e.run_id))  # ties: the earlier first
    return {e.run_id: i + 1 for i, e in enumerate(scored)}


def rank(items: list[Entry], *, higher_is_better: bool = False) -> list[RankedEntry]:
    """Entries ranked by public score (entries without one last, by CV), with their ranks.

    `higher_is_better`: the competition's metric is a score to maximise (F1, accuracy, AUC)
    rather than a loss.
    """
    sign = -1.0 if higher_is_better else 1.0
    public = _ranks(items, lambda e: e.public, sign)
    private = _ranks(items, lambda e: e.private, sign)
    cv = _ranks(items, lambda e: e.cv, sign)
    ranked = [RankedEntry(entry=e, public_rank=public.get(e.run_id),
                          private_rank=private.get(e.run_id), cv_rank=cv.get(e.run_id),
                          flagged=e.public_beats_interval(higher_is_better=higher_is_better))
              for e in items]
    inf = float("inf")
    ranked.sort(key=lambda r: (r.public_rank or inf, r.cv_rank or inf, r.entry.date))
    return ranked


def _fmt(value: float | int | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


FLAG_NOTE = ("! public beats the expected interval: something in the public test set helps "
             "this run more than its CV knew (a leak, as image size was in fisheries stage 1); "
             "expect the private score to fall back")


def _expected_cell(e: Entry) -> str:
    if e.expected is None:
        return "-"
    return f"{e.expected:.4f} [{_fmt(e.expected_low, '.3f')}, {_fmt(e.expected_high, '.3f')}]"


def format_table(ranked: list[RankedEntry]) -> str:
    """The leaderboard as a fixed-width text table; a flagged run (`!`) is explained below."""
    header = ("#", "run id", "date", "cv", "expected [95 %]", "public", "private", "priv#",
              "shake", "src", "recipe")
    rows = [header]
    for r in ranked:
        e = r.entry
        shake = r.shake_up
        rows.append((
            _fmt(r.public_rank, "d"), e.run_id, e.date[:16].replace("T", " "), _fmt(e.cv),
            _expected_cell(e), _fmt(e.public) + ("!" if r.flagged else ""), _fmt(e.private),
            _fmt(r.private_rank, "d"), "-" if shake is None else f"{shake:+d}",
            e.score_source or ("pending" if e.kaggle_status == "pending" else "-"), e.recipe,
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    table = "\n".join(
        "  ".join(cell.rjust(w) if i not in (1, 2) else cell.ljust(w)
                  for i, (cell, w) in enumerate(zip(row[:-1], widths, strict=True))) + "  " + row[-1]
        for row in rows
    )
    return table + ("\n" + FLAG_NOTE if any(r.flagged for r in ranked) else "")
