"""Tests for kit.scoring.leaderboard: recording scored submissions, ranks and shake-up, the table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kit.competition import load_competition
from kit.runs.record import RunRecord
from kit.scoring.leaderboard import (
    DB_NAME,
    FLAG_NOTE,
    Entry,
    KaggleScores,
    LeaderboardError,
    database,
    entries,
    format_table,
    rank,
    recipe_summary,
    record,
    run_id_of,
    set_kaggle,
    upsert,
)
from kit.scoring.score import ScoreResult

FISH = load_competition("fisheries")


def _score(public: float | None, private: float | None) -> ScoreResult:
    return ScoreResult(public=public, private=private, overall=1.0, n_rows=4, n_public=2,
                       n_private=2)


def _run_record(submission: Path, *, cv: float, backbone: str = "demo_cnn") -> None:
    submission.parent.mkdir(parents=True, exist_ok=True)
    submission.write_text("image,ALB\n")
    RunRecord(competition="fisheries", run_id=submission.stem, run_dir=str(submission.parent),
              created="2024-03-01T10:00:00+00:00", cv_log_loss=cv,
              config={"recipe": {"backbone": backbone, "weights": "demo", "head": "dense",
                                 "pooling": "max", "folds": 5, "tta": 2, "seed": 0},
                      "input_size": [64, 64], "sample": None, "groups_file": None},
              ).write(submission.with_suffix(".json"))


def _entry(run_id: str, public: float | None, private: float | None, cv: float | None = None,
           date: str = "2024-01-01") -> Entry:
    return Entry(competition="fisheries", run_id=run_id, submission=f"{run_id}.csv", date=date,
                 cv_log_loss=cv, local_public=public, local_private=private)


def test_record_reads_the_run_record(tmp_path: Path) -> None:
    submission = tmp_path / "submissions" / "fisheries" / "run-a.csv"
    _run_record(submission, cv=1.061)
    entry = record(submission, _score(0.962, 1.139), competition=FISH,
                   submissions=tmp_path / "submissions")
    assert database(tmp_path / "submissions") == tmp_path / "submissions" / DB_NAME
    assert entries(tmp_path / "submissions" / DB_NAME, "fisheries") == [entry]
    assert (entry.run_id, entry.date, entry.cv_log_loss) == ("run-a", "2024-03-01T10:00:00+00:00",
                                                             1.061)
    assert entry.recipe == "demo_cnn(demo) 64x64 dense/max 5-fold tta2 seed0"
    assert (entry.public, entry.private, entry.score_source) == (0.962, 1.139, "local")


def test_a_submission_without_run_record_uses_its_stem(tmp_path: Path) -> None:
    submission = tmp_path / "by-hand.csv"
    submission.write_text("image,ALB\n")
    entry = record(submission, _score(1.5, 1.6), competition=FISH, submissions=tmp_path)
    assert (entry.run_id, entry.recipe, entry.cv_log_loss) == ("by-hand", "", None)
    assert run_id_of(submission) == "by-hand"


def test_scoring_again_updates_the_entry_and_keeps_kaggle_scores(tmp_path: Path) -> None:
    submission = tmp_path / "fisheries" / "run-a.csv"
    _run_record(submission, cv=1.0)
    record(submission, _score(0.9, 1.1), competition=FISH, submissions=tmp_path)
    db = database(tmp_path)
    set_kaggle(db, "fisheries", "run-a", KaggleScores(ref=7, status="complete", public=0.95,
                                                      private=1.2, message="[run-a] first"))
    record(submission, _score(0.8, 1.0), competition=FISH, submissions=tmp_path)
    record(submission, None, competition=FISH, submissions=tmp_path)  # e.g. from `submit`
    (entry,) = entries(db, "fisheries")
    assert (entry.local_public, entry.local_private) == (0.8, 1.0)
    assert (entry.kaggle_public, entry.kaggle_private, entry.kaggle_ref) == (0.95, 1.2, 7)
    assert (entry.public, entry.private, entry.score_source) == (0.95, 1.2, "kaggle")


def test_set_kaggle_on_an_unknown_run(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match=r"no leaderboard entry for run 'nope' of fisheries"):
        set_kaggle(tmp_path / DB_NAME, "fisheries", "nope", KaggleScores(status="pending"))


def test_ranks_and_shake_up() -> None:
    ranked = rank([
        _entry("leaky", public=0.50, private=1.40, cv=0.45),
        _entry("honest", public=0.70, private=0.80, cv=0.72),
        _entry("middle", public=0.60, private=1.00, cv=0.60),
        _entry("cv-only", public=None, private=None, cv=0.90),
    ])
    assert [r.entry.run_id for r in ranked] == ["leaky", "middle", "honest", "cv-only"]
    assert [(r.public_rank, r.private_rank, r.shake_up) for r in ranked] == [
        (1, 3, -2), (2, 2, 0), (3, 1, 2), (None, None, None)]
    assert [r.cv_rank for r in ranked] == [1, 2, 3, 4]
    as_dict = ranked[0].to_dict()
    for key in ("run_id", "cv_log_loss", "public", "private", "private_rank", "shake_up", "date",
                "recipe"):
        assert key in as_dict


def test_ties_go_to_the_earlier_entry() -> None:
    ranked = rank([_entry("late", 0.5, 0.5, date="2024-02-01"),
                   _entry("early", 0.5, 0.5, date="2024-01-01")])
    assert [(r.entry.run_id, r.public_rank) for r in ranked] == [("early", 1), ("late", 2)]


def test_table_shows_every_column() -> None:
    table = format_table(rank([_entry("leaky", 0.5, 1.4, 0.45), _entry("honest", 0.7, 0.8, 0.72)]))
    lines = table.splitlines()
    assert lines[0].split() == ["#", "run", "id", "date", "cv", "expected", "[95", "%]",
                                "public", "private", "priv#", "shake", "src", "recipe"]
    assert lines[1].split()[:10] == ["1", "leaky", "2024-01-01", "0.4500", "-", "0.5000",
                                     "1.4000", "2", "-1", "local"]
    assert lines[2].split()[8] == "+1"
    assert len(lines) == 3  # nothing flagged, no note


def test_a_public_score_better_than_the_expected_interval_is_flagged() -> None:
    leaky = dataclasses.replace(_entry("leaky", 0.5, 1.4, 1.0), expected=1.0,
                                expected_low=0.8, expected_high=1.2)
    honest = dataclasses.replace(_entry("honest", 0.9, 1.1, 1.0), expected=1.0,
                                 expected_low=0.8, expected_high=1.2)
    ranked = rank([leaky, honest])
    assert [r.flagged for r in ranked] == [True, False]
    assert ranked[0].to_dict()["public_beats_interval"] is True
    lines = format_table(ranked).splitlines()
    assert "1.0000 [0.800, 1.200]" in lines[1] and "0.5000!" in lines[1]
    assert lines[-1] == FLAG_NOTE
    # a score to maximise: flagged above the interval, not below it
    f1 = dataclasses.replace(_entry("f1", 0.95, 0.7), expected=0.7, expected_low=0.6,
                             expected_high=0.8)
    assert f1.public_beats_interval(higher_is_better=True)
    assert not f1.public_beats_interval(higher_is_better=False)
    assert not _entry("none", 0.1, 0.1).public_beats_interval()  # no interval: no flag


def test_the_expected_interval_comes_from_the_run_record(tmp_path: Path) -> None:
    submission = tmp_path / "submissions" / "fisheries" / "run-e.csv"
    _run_record(submission, cv=1.0)
    path = submission.with_suffix(".json")
    run = RunRecord.read(path)
    dataclasses.replace(run, expected_private={"value": 1.1, "low": 0.9, "high": 1.3}).write(path)
    entry = record(submission, _score(0.5, 1.2), competition=FISH,
                   submissions=tmp_path / "submissions")
    assert (entry.expected, entry.expected_low, entry.expected_high) == (1.1, 0.9, 1.3)
    assert entries(tmp_path / "submissions" / DB_NAME, "fisheries")[0].expected_high == 1.3


def test_entries_of_other_competitions_are_apart(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    upsert(db, _entry("a", 0.5, 0.6))
    upsert(db, Entry(competition="dogs-vs-cats-redux", run_id="b", submission="b.csv",
                     date="2024-01-01"))
    assert [e.run_id for e in entries(db, "fisheries")] == ["a"]
    assert entries(tmp_path / "absent.sqlite", "fisheries") == []


def test_a_broken_database_is_named(tmp_path: Path) -> None:
    db = tmp_path / DB_NAME
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LeaderboardError, match=rf"leaderboard database {db} cannot be used: .*; "
                                               r"move it away to start a new one"):
        upsert(db, _entry("a", 0.5, 0.6))


def test_recipe_summary_of_odd_records() -> None:
    assert recipe_summary(None) == ""
    assert recipe_summary(RunRecord(competition="x", run_id="r")) == ""
    assert recipe_summary(RunRecord(competition="x", run_id="r", config={
        "recipe": {"backbone": "vgg16", "weights": "imagenet", "head": "dense",
                   "pooling": "flatten", "folds": 5, "tta": 2, "seed": 1},
        "input_size": [224, 224], "sample": 500, "groups_file": "g.csv"})) == (
        "vgg16(imagenet) 224x224 dense/flatten 5-fold-group tta2 seed1 sample500")
