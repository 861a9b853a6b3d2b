"""What the commands share: the data options, the data folder they select, JSON output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kit.competition import Competition
from kit.core.atomic import atomic_write_text
from kit.core.errors import InputError
from kit.core.paths import Paths

DEMO_PRESETS = ("full", "tiny")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """`--data/--demo/--demo-preset/--work-dir/--json`."""
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


def paths_of(args: argparse.Namespace) -> Paths:
    """The work and submissions folders of a command's options (or their defaults)."""
    return Paths.from_options(work=getattr(args, "work_dir", None),
                              submissions=getattr(args, "submissions_dir", None))


def data_root(args: argparse.Namespace, competition: Competition) -> Path:
    """The dataset folder selected by `--demo`, `--data` or a previous download.

    Raises:
        InputError: `--data` is not a folder, or no data was selected and none downloaded
            (the message names all three ways to get some).
    """
    paths = paths_of(args)
    if args.demo:
        from kit.demo.cache import ensure_demo_data

        return ensure_demo_data(competition, paths, preset=args.demo_preset)
    if args.data is not None:
        if not args.data.is_dir():
            raise InputError(f"--data {args.data} is not a folder")
        return args.data
    downloaded = paths.downloaded_data(competition.name)
    if (downloaded / competition.train_folder).is_dir():
        return downloaded
    raise InputError(
        f"no data for {competition.name}: pass --demo for the built-in demo dataset, "
        f"--data DIR for a folder in the Kaggle layout, or download the competition data "
        f"first: python -m kit download {competition.name} (Kaggle credentials needed; "
        f"it lands in {downloaded})"
    )


def solution_for(args: argparse.Namespace, root: Path | None) -> Path | None:
    """`--solution FILE`, else the dataset's `solution.csv` (the demo data has one)."""
    if getattr(args, "solution", None) is not None:
        return args.solution
    if root is not None and (root / "solution.csv").is_file():
        return root / "solution.csv"
    return None


def write_json(path: Path | None, payload: object) -> None:
    """Write `payload` to `--json PATH` (atomically), if given."""
    if path is not None:
        atomic_write_text(path, json.dumps(payload, indent=2, default=str))


def fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


__all__ = ["DEMO_PRESETS", "add_data_options", "data_root", "fmt", "paths_of", "solution_for",
           "write_json"]
