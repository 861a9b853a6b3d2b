"""`python -m kit run`: images to a validated submission, its run record and report.

Every recipe option comes from the one option table (`kit.competition.options`); the command
adds the data options, `--heads` (a comparison of several heads), `--groups`,
`--submissions-dir`, and `--executor`/`--ray-address` (where the work runs, not what it computes).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from kit.cli.common import (
    add_data_options,
    data_root,
    fmt,
    paths_of,
    solution_for,
    write_json,
)
from kit.competition import Competition, Recipe, load_competition
from kit.competition.options import OPTIONS, given, parse_names
from kit.competition.recipe import with_overrides
from kit.core.errors import InputError
from kit.core.paths import Paths


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """Every option of the table, as `kit run` and `kit kernel` take it."""
    for option in OPTIONS:
        if option.switch:
            parser.add_argument(option.flag, dest=option.name, action="store_const", const=True,
                                default=None, help=option.help)
        else:
            parser.add_argument(option.flag, dest=option.name, type=option.parse,
                                metavar=option.metavar, help=option.help)


def register(commands: argparse._SubParsersAction) -> dict:
    run = commands.add_parser("run", help="images to a validated submission")
    run.add_argument("competition", help="competition folder (competitions/fisheries) or name")
    add_data_options(run)
    run.add_argument("--submissions-dir", type=Path, metavar="DIR",
                     help="where submissions go; default ./submissions")
    add_recipe_options(run)
    run.add_argument("--heads", type=parse_names, metavar="H1,H2,...",
                     help="train each head on the same folds and cached features and print one "
                          "comparison table (CV, public, private, time)")
    run.add_argument("--groups", type=Path, metavar="CSV",
                     help="CSV with path,group: group K-fold (no group straddles folds)")
    add_executor_options(run)
    return {"run": cmd_run}


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """`--executor` and `--ray-address`: where the work runs. Not recipe options: they never
    change the numbers, so they are not in the run's configuration (or its hash)."""
    from kit.cv.executors import executor_registry

    parser.add_argument("--executor", choices=executor_registry().names(), default="local",
                        help="where feature extraction and folds run: local (this process, the "
                             "default) or ray (a Ray cluster; pip install -e \".[ray]\"); see "
                             "docs/distributed.md")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="with --executor ray: the cluster's HOST:PORT (default: "
                             "$RAY_ADDRESS, else a local Ray started for the run)")


@contextlib.contextmanager
def executor_of(args: argparse.Namespace, root: Path, paths: Paths) -> Iterator:
    """The executor `--executor` asks for (None: local), closed (the cluster left) afterwards."""
    from kit.cv.executors import close_executor, open_executor

    executor = open_executor(args.executor, address=args.ray_address,
                             shared={"data": Path(root), "work": paths.work}, log=print)
    try:
        yield executor
    finally:
        close_executor(executor)


def recipe_of(args: argparse.Namespace, competition: Competition) -> Recipe:
    """The competition's recipe with the command line's options, checked before data work."""
    from kit.app.check import check_recipe

    recipe_names = {o.name for o in OPTIONS if o.recipe}
    values = {k: v for k, v in given(vars(args)).items() if k in recipe_names}
    if isinstance(values.get("folds"), str):  # --folds auto|stratified|group: the kind
        values["fold_kind"] = values.pop("folds")
    recipe = with_overrides(competition.recipe_for(demo=args.demo), values)
    if args.heads:
        if args.head is not None:
            raise InputError("pass --head NAME or --heads H1,H2,... , not both")
        for head in args.heads:
            check_recipe(dataclasses.replace(recipe, head=head), competition)
    else:
        check_recipe(recipe, competition)
    return recipe


def probe_command(args: argparse.Namespace) -> str:
    """The `kit probe` command for the data this command reads."""
    data = "--demo" if args.demo else f"--data {args.data}" if args.data else ""
    return f"python -m kit probe {args.competition} {data}".rstrip()


def cmd_run(args: argparse.Namespace) -> int:
    from kit.app.folding import resolve_folding
    from kit.app.setup import DataSource, RunOptions

    competition = load_competition(args.competition)
    paths = paths_of(args)
    recipe = recipe_of(args, competition)  # validated here, before any data work
    root = data_root(args, competition)
    folding = resolve_folding(competition, Path(root), paths, folding=recipe.fold_kind,
                              groups_file=args.groups, command=probe_command(args))
    options = RunOptions(competition=competition,
                         data=DataSource(root=root, demo=args.demo, demo_preset=args.demo_preset),
                         recipe=recipe, paths=paths, sample=args.sample,
                         groups_file=folding.groups_file, groups_declared=folding.groups_declared,
                         folds_note=folding.to_dict(), seeds=args.seeds,
                         allow_missing_classes=bool(args.allow_missing_classes))
    solution = solution_for(args, root)
    with executor_of(args, root, paths) as executor:
        if not args.heads:
            write_json(args.json, run_one(options, solution, competition, paths,
                                          executor=executor))
            return 0
        from kit.app.compare import compare_heads

        summary = compare_heads(options, args.heads, run_one=lambda o: run_one(
            o, solution, competition, paths, executor=executor))
    write_json(args.json, summary)
    return 0


def run_one(options, solution: Path | None, competition: Competition, paths: Paths, *,
            executor=None) -> dict:
    """One `kit run` with local scoring, the report and the printed summary (`executor`: where
    extraction and folds run; None: here)."""
    from kit.app.run import run

    result = run(options, log=print, executor=executor)
    summary = dict(result.summary)
    if solution is not None:
        from kit.scoring.leaderboard import record
        from kit.scoring.score import score_file

        score = score_file(result.submission, solution, competition)
        record(result.submission, score, competition=competition, submissions=paths.submissions)
        summary["local_score"] = score.to_dict()
        summary["local_score"]["baseline"] = _baseline(result.train_labels, solution,
                                                        competition)
    summary["report"] = _report(result.record, competition)
    print_run(summary)
    return summary


def _report(record: Path, competition: Competition) -> str | None:
    """Write the run's HTML report; a failure is reported, never a reason to fail the run (the
    submission and its record are already written)."""
    from kit.report.write import write_report

    try:
        return str(write_report(record))
    except Exception as error:  # noqa: BLE001 - the run is complete; the report is not its result
        if not isinstance(error, InputError | OSError):  # a bug: show where, but keep the run
            traceback.print_exc()
        print(f"warning: the report was not written ({error}); the submission is complete. "
              f"Retry with: python -m kit report {competition.name} {record.stem}",
              file=sys.stderr)
        return None


def _baseline(train_labels, solution: Path, competition: Competition) -> dict:
    """What always predicting the run's training class prior scores on the solution."""
    from kit.scoring.score import prior_scores, read_solution

    return prior_scores(train_labels, read_solution(solution, competition), competition).to_dict()


def print_run(summary: dict) -> None:
    metric = summary.get("metric", "log_loss")
    other = ("" if metric == "log_loss"
             else f"CV {metric} {summary['cv_score']:.4f}; ")
    print(f"run {summary['run_id']}: {other}CV log loss {summary['cv_log_loss']:.4f} "
          f"(class prior {summary['prior_log_loss']:.4f}, ratio {summary['cv_vs_prior']:.2f}); "
          f"clip {summary['clip']}")
    print(f"submission: {summary['submission']} ({summary['n_test']} rows)")
    if summary.get("bbox_iou") is not None:
        print(f"bbox: mean IoU {summary['bbox_iou']:.3f} of out-of-fold boxes")
    score = summary.get("local_score")
    if score:
        base = score["baseline"]
        print(f"local score ({score.get('metric', 'log_loss')}): public {fmt(score['public'])} "
              f"(prior {fmt(base['public'])}), private {fmt(score['private'])} "
              f"(prior {fmt(base['private'])})")
    if summary.get("report"):
        print(f"report: {summary['report']}")
    print(f"time: {summary['timings']['total']:.1f} s")


__all__ = ["add_executor_options", "add_recipe_options", "cmd_run", "executor_of", "print_run",
           "recipe_of", "register", "run_one"]
