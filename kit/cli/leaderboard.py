"""`python -m kit leaderboard COMPETITION [--fetch]`: the local leaderboard, ranked by public
score, with the private shake-up."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kit.competition import Competition, load_competition
from kit.core.atomic import atomic_write_text
from kit.core.paths import Paths
from kit.kaggle import client as kaggle
from kit.scoring import leaderboard as board
from kit.scoring.metric import get_metric


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def register(commands: argparse._SubParsersAction) -> dict:
    lead = commands.add_parser("leaderboard", help="the local leaderboard of scored submissions")
    lead.add_argument("competition")
    lead.add_argument("--fetch", action="store_true",
                      help="first fetch Kaggle's scores of submitted runs")
    lead.add_argument("--submissions-dir", type=Path, metavar="DIR",
                      help="holds the leaderboard; default ./submissions")
    lead.add_argument("--json", type=Path, metavar="PATH",
                      help="write the entries as a JSON list")
    return {"leaderboard": cmd_leaderboard}


def _fetch(db: Path, competition: Competition) -> int:
    submitted = [e for e in board.entries(db, competition.name) if e.kaggle_status is not None]
    if not submitted:
        print(f"nothing submitted to Kaggle for {competition.name} yet; nothing to fetch")
        return 0
    remote = kaggle.connect(warn=_warn).submissions(competition.slug)
    updated = 0
    for entry in submitted:
        found = kaggle.find_submission(remote, run_id=entry.run_id, ref=entry.kaggle_ref)
        if found is not None:
            kaggle.store_scores(db, competition.name, entry.run_id, found)
            updated += 1
    print(f"fetched Kaggle scores for {updated} of {len(submitted)} submitted runs")
    return updated


def cmd_leaderboard(args: argparse.Namespace) -> int:
    competition = load_competition(args.competition)
    paths = Paths.from_options(submissions=args.submissions_dir)
    db = board.database(paths.submissions)
    if args.fetch:
        _fetch(db, competition)
    metric = get_metric(competition.metric)
    ranked = board.rank(board.entries(db, competition.name),
                        higher_is_better=metric.higher_is_better)
    if ranked:
        print(f"{competition.name}: {len(ranked)} submissions, ranked by public {metric.name} "
              f"({metric.direction} is better; {db})")
        print(board.format_table(ranked))
    else:
        print(f"no scored submissions for {competition.name} in {db} yet: `python -m kit run` "
              "with a solution, or `python -m kit score`, adds them")
    if args.json is not None:
        atomic_write_text(args.json, json.dumps([r.to_dict() for r in ranked], indent=2))
    return 0
