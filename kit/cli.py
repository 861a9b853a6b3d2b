"""Command line: `python -m kit {run,demo,score} ...`.

Every command that computes numbers prints a short summary and writes the full result as JSON
with `--json PATH`. Bad input exits with status 2 and one `error:` line naming the problem and
the fix; nothing is half-written.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from kit.atomic import atomic_write_text
from kit.competition import MODES, Competition, load_competition
from kit.paths import Paths

EXIT_USAGE = 2
DEMO_PRESETS = ("full", "tiny")
# Modules adding subcommands: each defines `register(commands) -> dict[str, handler]`, where
# `commands` is the argparse subparsers object and a handler maps parsed args to an exit status.
EXTENSIONS: tuple[str, ...] = ("kit.probes.cli", "kit.kaggle_cli", "kit.report_cli")
Handler = Callable[[argparse.Namespace], int]


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"input size must look like 224x224 (width x height); received {text!r}"
        ) from error
    return width, height


def _folds(text: str) -> int | str:
    if text == "group":
        return text
    try:
        return int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--folds takes a number of folds or 'group'; received {text!r}"
        ) from error


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--seeds takes comma-separated integers such as 0,1,2; received {text!r}"
        ) from error
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds must not repeat a seed; received {text!r}")
    return seeds


def _names(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names; received {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"names must not repeat; received {text!r}")
    return names


def _augment(text: str) -> tuple[str, ...]:
    return () if text.strip() == "none" else _names(text)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--data", type=Path, metavar="DIR",
                       help="a folder in the competition's Kaggle layout")
    group.add_argument("--demo", action="store_true",
                       help="use the built-in demo dataset (generated once, cached)")
    parser.add_argument("--demo-preset", choices=DEMO_PRESETS, default="full",
                        help="demo dataset size (default: full)")
    parser.add_argument("--work-dir", type=Path, metavar="DIR",
                        help="working files (cache, folds, demo data); default ./.kit or "
                             "$KIT_WORK_DIR")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the result as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kit",
        description="Kaggle image-classification kit with leakage analysis.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="images to a validated submission")
    run.add_argument("competition", help="competition folder (competitions/fisheries) or name")
    _add_data_options(run)
    run.add_argument("--submissions-dir", type=Path, metavar="DIR",
                     help="where submissions go; default ./submissions")
    run.add_argument("--backbone", help="conv base (vgg16, resnet50, inception_v3, xception, "
                                        "mobilenet_v3_small, efficientnet_b0, demo_cnn)")
    run.add_argument("--weights", help="imagenet, none, or PATH to a weights file")
    run.add_argument("--input-size", type=_size, metavar="WxH", help="e.g. 224x224")
    run.add_argument("--head", help="head trained on cached features: dense, metadata-merge, "
                                    "bbox, fcn or crop")
    run.add_argument("--heads", type=_names, metavar="H1,H2,...",
                     help="train each head on the same folds and cached features and print one "
                          "comparison table (CV, public, private, time)")
    run.add_argument("--mode", choices=MODES,
                     help="features (default: heads on cached features) or finetune (unfreeze "
                          "the last blocks of the base; slow, no feature cache)")
    run.add_argument("--finetune-blocks", type=int, metavar="N",
                     help="with --mode finetune: how many of the base's last blocks to train")
    run.add_argument("--base-lr-factor", type=float, metavar="F",
                     help="with --mode finetune: the base's learning rate is F x the head's")
    run.add_argument("--augment", type=_augment, metavar="A1,A2",
                     help="with --mode finetune: augmentations among flip, rotate, zoom, "
                          "brightness ('none' for none)")
    run.add_argument("--pseudo-label", type=float, metavar="THRESHOLD",
                     help="retrain each fold with the test images its own model predicts with "
                          "probability >= THRESHOLD (e.g. 0.9)")
    run.add_argument("--loss", help="loss by name (categorical_crossentropy, label_smoothing, "
                                    "focal, or the competition's own)")
    run.add_argument("--schedule", help="learning-rate schedule by name (plateau, constant, "
                                        "step, exponential, warmup, or the competition's own)")
    run.add_argument("--metadata", type=_names, metavar="COL1,COL2",
                     help="image-table columns the metadata-merge head uses (default: size)")
    run.add_argument("--fcn-input-size", type=_size, metavar="WxH",
                     help="input size of the fcn head, e.g. 640x360")
    run.add_argument("--box-loss-weight", type=float, metavar="W",
                     help="weight of the box loss (1 - GIoU) of the bbox and crop heads "
                          "(class loss: 1)")
    run.add_argument("--box-input-size", type=_size, metavar="WxH",
                     help="input size the bbox and crop heads find the box in, e.g. 448x256")
    run.add_argument("--box-variants", type=int, metavar="N",
                     help="flip and crop views the box heads train on and predict with (1-8)")
    run.add_argument("--learning-rate", type=float, metavar="LR", help="head learning rate")
    run.add_argument("--pooling", help="flatten, avg or max")
    run.add_argument("--folds", type=_folds, metavar="K|group",
                     help="number of stratified folds, or 'group' for group K-fold over the "
                          "groups `kit probe` inferred")
    run.add_argument("--tta", type=int, metavar="N", help="test-time augmentation passes")
    run.add_argument("--seed", type=int, metavar="S", help="random seed")
    run.add_argument("--seeds", type=_seeds, metavar="S1,S2,...",
                     help="train every fold once per seed and average (K folds x seeds)")
    run.add_argument("--epochs", type=int, help="maximum epochs per fold")
    run.add_argument("--batch-size", type=int, help="batch size for features and heads")
    run.add_argument("--sample", type=int, metavar="N",
                     help="run on a stratified random N-image subset of train")
    run.add_argument("--groups", type=Path, metavar="CSV",
                     help="CSV with path,group: group K-fold (no group straddles folds)")

    demo = commands.add_parser("demo", help="write the demo dataset")
    demo.add_argument("competition")
    demo.add_argument("--out", type=Path, required=True, metavar="DIR")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--preset", choices=DEMO_PRESETS, default="full")

    score = commands.add_parser("score", help="public and private log loss of a submission")
    score.add_argument("competition")
    score.add_argument("submission", type=Path)
    score.add_argument("--solution", type=Path, metavar="FILE",
                       help="solution CSV with a Usage column (default with --demo: the demo's)")
    _add_data_options(score)
    return parser


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """`--data/--demo/--demo-preset/--work-dir/--json`, for extension subcommands."""
    _add_data_options(parser)


def data_root(args: argparse.Namespace, competition: Competition) -> Path:
    """The dataset folder selected by `--demo`, `--data` or a previous download."""
    return _data_root(args, competition, _paths(args))


def write_json(path: Path | None, payload: dict) -> None:
    _write_json(path, payload)


def _paths(args: argparse.Namespace) -> Paths:
    return Paths.from_options(work=args.work_dir,
                              submissions=getattr(args, "submissions_dir", None))


def _data_root(args: argparse.Namespace, competition: Competition, paths: Paths) -> Path:
    if args.demo:
        from kit.demo.cache import ensure_demo_data

        return ensure_demo_data(competition, paths, preset=args.demo_preset)
    if args.data is not None:
        if not args.data.is_dir():
            raise ValueError(f"--data {args.data} is not a folder")
        return args.data
    downloaded = paths.downloaded_data(competition.name)
    if (downloaded / competition.train_folder).is_dir():
        return downloaded
    raise ValueError(
        f"no data for {competition.name}: pass --demo for the built-in demo dataset, "
        f"--data DIR for a folder in the Kaggle layout, or download the competition data "
        f"first: python -m kit download {competition.name} (Kaggle credentials needed; "
        f"it lands in {downloaded})"
    )


def _write_json(path: Path | None, payload: dict) -> None:
    if path is not None:
        atomic_write_text(path, json.dumps(payload, indent=2, default=str))


def _recipe(args: argparse.Namespace, competition: Competition):
    recipe = competition.recipe_for(demo=args.demo)
    overrides = {
        "backbone": args.backbone, "weights": args.weights, "input_size": args.input_size,
        "head": args.head, "pooling": args.pooling,
        "folds": None if args.folds == "group" else args.folds, "tta": args.tta,
        "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size,
        "mode": args.mode, "finetune_blocks": args.finetune_blocks,
        "base_lr_factor": args.base_lr_factor, "pseudo_label": args.pseudo_label,
        "loss": args.loss, "schedule": args.schedule, "metadata": args.metadata,
        "fcn_input_size": args.fcn_input_size, "box_loss_weight": args.box_loss_weight,
        "learning_rate": args.learning_rate, "augment": args.augment,
        "box_input_size": args.box_input_size, "box_variants": args.box_variants,
    }
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "backbone" in changes and changes["backbone"] != recipe.backbone:
        changes.setdefault("input_size", None)  # the new backbone's own default size
    recipe = dataclasses.replace(recipe, **changes)
    from kit.pipeline import check_recipe

    if args.heads:
        if args.head is not None:
            raise ValueError("pass --head NAME or --heads H1,H2,... , not both")
        for head in args.heads:
            check_recipe(dataclasses.replace(recipe, head=head), competition)
    else:
        check_recipe(recipe, competition)
    return recipe


def _solution_for(args: argparse.Namespace, root: Path | None) -> Path | None:
    if getattr(args, "solution", None) is not None:
        return args.solution
    if root is not None and (root / "solution.csv").is_file():
        return root / "solution.csv"
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from kit.pipeline import DataSource, RunOptions

    competition = load_competition(args.competition)
    paths = _paths(args)
    recipe = _recipe(args, competition)  # validated here, before any data work
    root = _data_root(args, competition, paths)
    groups = args.groups
    if args.folds == "group":
        if groups is not None:
            raise ValueError("--folds group uses the groups kit probe inferred; with --groups CSV "
                             "pass a number of folds instead")
        groups = paths.groups_file(competition.name, root)
        if not groups.is_file():
            raise ValueError(
                f"--folds group needs inferred groups, and {groups} does not exist: run "
                f"`python -m kit probe {args.competition}` on the same data first, or pass "
                "--groups CSV with path,group columns"
            )
    options = RunOptions(competition=competition,
                         data=DataSource(root=root, demo=args.demo, demo_preset=args.demo_preset),
                         recipe=recipe, paths=paths, sample=args.sample, groups_file=groups,
                         seeds=args.seeds)
    solution = _solution_for(args, root)
    if not args.heads:
        summary = _run_one(options, solution, competition, paths)
        _write_json(args.json, summary)
        return 0
    from kit.comparison import compare_heads

    summary = compare_heads(options, args.heads,
                            run_one=lambda o: _run_one(o, solution, competition, paths))
    _write_json(args.json, summary)
    return 0


def _run_one(options, solution: Path | None, competition: Competition, paths: Paths) -> dict:
    """One `kit run` with local scoring, the report and the printed summary."""
    from kit.pipeline import run

    result = run(options, log=print)
    summary = dict(result.summary)
    if solution is not None:
        from kit.leaderboard import record
        from kit.scoring import score_file

        score = score_file(result.submission, solution, competition)
        record(result.submission, score, competition=competition, submissions=paths.submissions)
        summary["local_score"] = score.to_dict()
        summary["local_score"]["baseline"] = _baseline(result.train_labels, solution,
                                                        competition)
    summary["report"] = _report(result.record, competition)
    _print_run(summary)
    return summary


def _report(record: Path, competition: Competition) -> str | None:
    """Write the run's HTML report; a failure is reported, never a reason to fail the run (the
    submission and its record are already written)."""
    from kit.report import write_report

    try:
        return str(write_report(record))
    except (ValueError, KeyError, OSError) as error:
        print(f"warning: the report was not written ({error}); the submission is complete. "
              f"Retry with: python -m kit report {competition.name} {record.stem}",
              file=sys.stderr)
        return None


def _baseline(train_labels, solution: Path, competition: Competition) -> dict:
    """What always predicting the run's training class prior scores on the solution."""
    from kit.scoring import prior_scores, read_solution

    return prior_scores(train_labels, read_solution(solution, competition), competition).to_dict()


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _print_run(summary: dict) -> None:
    print(f"run {summary['run_id']}: CV log loss {summary['cv_log_loss']:.4f} "
          f"(class prior {summary['prior_log_loss']:.4f}, ratio {summary['cv_vs_prior']:.2f}); "
          f"clip {summary['clip']}")
    print(f"submission: {summary['submission']} ({summary['n_test']} rows)")
    if summary.get("bbox_iou") is not None:
        print(f"bbox: mean IoU {summary['bbox_iou']:.3f} of out-of-fold boxes")
    score = summary.get("local_score")
    if score:
        base = score["baseline"]
        print(f"local score: public {_fmt(score['public'])} (prior {_fmt(base['public'])}), "
              f"private {_fmt(score['private'])} (prior {_fmt(base['private'])})")
    if summary.get("report"):
        print(f"report: {summary['report']}")
    print(f"time: {summary['timings']['total']:.1f} s")


def cmd_demo(args: argparse.Namespace) -> int:
    from kit.demo.cache import generate_demo

    competition = load_competition(args.competition)
    out = generate_demo(competition, args.out, preset=args.preset, seed=args.seed)
    print(f"demo dataset for {competition.name} written to {out}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from kit.scoring import score_file

    competition = load_competition(args.competition)
    paths = _paths(args)
    root = None
    if args.solution is None:
        if args.demo or args.data is not None:
            root = _data_root(args, competition, paths)
        else:
            raise ValueError(
                "no solution file: pass --solution FILE (a CSV with the submission's columns "
                "and Usage), or --demo to score against the demo's solution"
            )
    solution = _solution_for(args, root)
    if solution is None:
        raise ValueError(f"no solution.csv in {root}; pass --solution FILE")
    result = score_file(args.submission, solution, competition)
    from kit.leaderboard import record

    record(args.submission, result, competition=competition, submissions=paths.submissions)
    print(f"{args.submission}: public {_fmt(result.public)} ({result.n_public} rows), "
          f"private {_fmt(result.private)} ({result.n_private} rows), "
          f"all {result.overall:.4f} ({result.n_rows} rows)")
    _write_json(args.json, result.to_dict())
    return 0


COMMANDS: dict[str, Handler] = {"run": cmd_run, "demo": cmd_demo, "score": cmd_score}


def parser_and_handlers() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    parser = build_parser()
    handlers = dict(COMMANDS)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in EXTENSIONS:
        handlers.update(importlib.import_module(name).register(commands))
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = parser_and_handlers()
    args = parser.parse_args(argv)
    try:
        return handlers[args.command](args)
    except (ValueError, KeyError, TypeError, FileNotFoundError) as error:
        if os.environ.get("KIT_DEBUG"):
            traceback.print_exc()
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: finished folds and cached features are kept; run the same command "
              "again to resume", file=sys.stderr)
        return 130
