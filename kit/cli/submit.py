"""`python -m kit submit COMPETITION FILE [-m MESSAGE] [--wait S]`: validates and uploads a
submission, the run id in its description, and fetches Kaggle's score into the local
leaderboard."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from kit.cli.common import add_data_options, data_root, write_json
from kit.competition import Competition, load_competition
from kit.core.errors import InputError
from kit.core.paths import Paths
from kit.kaggle import client as kaggle
from kit.runs.find import record_of_submission
from kit.scoring import leaderboard as board
from kit.scoring.submission import SubmissionError, read_submission, validate_submission

POLL_SECONDS = 10.0
_sleep = time.sleep  # replaced in tests


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.5f}"


def register(commands: argparse._SubParsersAction) -> dict:
    submit = commands.add_parser("submit", help="upload a submission to Kaggle")
    submit.add_argument("competition")
    submit.add_argument("submission", type=Path)
    submit.add_argument("-m", "--message", help="description (the run id is put in front)")
    submit.add_argument("--wait", type=float, default=0.0, metavar="S",
                        help="seconds to wait for Kaggle's score (default 0: look once)")
    submit.add_argument("--submissions-dir", type=Path, metavar="DIR",
                        help="holds the leaderboard; default ./submissions")
    add_data_options(submit)
    return {"submit": cmd_submit}


def _sample(competition: Competition, args: argparse.Namespace) -> tuple[Path, pd.DataFrame] | None:
    """The sample submission of the data selected by --data/--demo or downloaded, if any."""
    from kit.data.layout import read_sample_submission

    try:
        root = data_root(args, competition)
    except InputError:
        return None
    for sample in competition.submission.samples:
        path = root / sample.file
        if path.is_file():
            return path, read_sample_submission(path, competition.submission.id_column)
    return None


def _check_for_submit(frame: pd.DataFrame, competition: Competition, args: argparse.Namespace,
                      source: str) -> str:
    id_column = competition.submission.id_column
    found = _sample(competition, args)
    if found is not None:  # Kaggle rescales each row of a per-class submission to sum 1
        upper = None if competition.submission.kind == "per_class" else 1.0
        validate_submission(frame, found[1], id_column=id_column, source=source, upper=upper)
        return f"matches {found[0].name}"
    expected = [id_column, *competition.submission_columns()]
    missing = [c for c in expected if c not in frame.columns]
    unknown = [str(c) for c in frame.columns if c not in expected]
    if missing or unknown:
        raise SubmissionError(f"{source}: columns do not match {competition.name}; missing "
                              f"columns: {missing}; unknown columns: {unknown}. Expected "
                              f"{expected} (in any order).")
    return ("columns checked; ids not checked (no sample submission: download the data or "
            "pass --data DIR)")


def _poll(client: kaggle.KaggleClient, slug: str, run_id: str, ref: int | None,
          wait: float) -> kaggle.RemoteSubmission | None:
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        found = kaggle.find_submission(client.submissions(slug), run_id=run_id, ref=ref)
        remaining = deadline - time.monotonic()
        if (found is not None and found.status != "pending") or remaining <= 0:
            return found
        _sleep(min(POLL_SECONDS, remaining))


def cmd_submit(args: argparse.Namespace) -> int:
    competition = load_competition(args.competition)
    source = str(args.submission)
    frame = read_submission(args.submission, id_column=competition.submission.id_column)
    checked = _check_for_submit(frame, competition, args, source)
    paths = Paths.from_options(work=args.work_dir, submissions=args.submissions_dir)
    run_id = board.run_id_of(args.submission)
    recipe = board.recipe_summary(record_of_submission(args.submission))
    message = kaggle.submission_message(run_id, args.message or recipe or "kit")
    client = kaggle.connect(warn=_warn)
    print(f"submitting {args.submission} to {competition.slug} ({checked}): {message}")
    receipt = client.submit(competition.slug, args.submission, message)
    board.record(args.submission, None, competition=competition, submissions=paths.submissions)
    db = board.database(paths.submissions)
    board.set_kaggle(db, competition.name, run_id,
                     board.KaggleScores(ref=receipt.ref, status="pending", message=message))
    remote = _poll(client, competition.slug, run_id, receipt.ref, args.wait)
    if remote is not None:
        kaggle.store_scores(db, competition.name, run_id, remote)
    status = remote.status if remote is not None else "pending"
    if remote is not None and remote.status == "error":
        _warn(f"Kaggle could not score {args.submission}: {remote.error or 'no reason given'}")
    elif remote is None or remote.public is None:
        print(f"submitted; Kaggle has no score yet: run `python -m kit leaderboard "
              f"{args.competition} --fetch` later")
    else:
        print(f"Kaggle score: public {_fmt(remote.public)}, private {_fmt(remote.private)}")
    write_json(args.json, {
        "competition": competition.name, "run_id": run_id, "submission": source,
        "message": message, "kaggle_ref": receipt.ref if remote is None else remote.ref,
        "status": status, "public": None if remote is None else remote.public,
        "private": None if remote is None else remote.private,
    })
    return 0
