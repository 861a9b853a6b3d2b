"""`python -m kit score`: the public and private local score of a submission."""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.cli.common import add_data_options, data_root, fmt, paths_of, solution_for, write_json
from kit.competition import load_competition
from kit.core.errors import InputError


def register(commands: argparse._SubParsersAction) -> dict:
    score = commands.add_parser("score", help="public and private log loss of a submission")
    score.add_argument("competition")
    score.add_argument("submission", type=Path)
    score.add_argument("--solution", type=Path, metavar="FILE",
                       help="solution CSV with a Usage column (default with --demo: the demo's)")
    add_data_options(score)
    return {"score": cmd_score}


def cmd_score(args: argparse.Namespace) -> int:
    from kit.scoring.leaderboard import record
    from kit.scoring.score import score_file

    competition = load_competition(args.competition)
    paths = paths_of(args)
    root = None
    if args.solution is None:
        if not (args.demo or args.data is not None):
            raise InputError(
                "no solution file: pass --solution FILE (a CSV with the submission's columns "
                "and Usage), or --demo to score against the demo's solution"
            )
        root = data_root(args, competition)
    solution = solution_for(args, root)
    if solution is None:
        raise InputError(f"no solution.csv in {root}; pass --solution FILE")
    result = score_file(args.submission, solution, competition)
    record(args.submission, result, competition=competition, submissions=paths.submissions)
    print(f"{args.submission}: public {fmt(result.public)} ({result.n_public} rows), "
          f"private {fmt(result.private)} ({result.n_private} rows), "
          f"all {result.overall:.4f} ({result.n_rows} rows)")
    write_json(args.json, result.to_dict())
    return 0
