"""`python -m kit download COMPETITION [--data DIR] [--archive FILE ...]`: the competition's
archives through the Kaggle API (or archives downloaded by hand), extracted safely."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kit.cli.common import write_json
from kit.competition import load_competition
from kit.core.paths import Paths
from kit.kaggle import client as kaggle


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def register(commands: argparse._SubParsersAction) -> dict:
    download = commands.add_parser(
        "download", help="competition data from Kaggle (or archives), extracted safely")
    download.add_argument("competition")
    download.add_argument("--data", type=Path, metavar="DIR",
                          help="extract here (default: <work>/data/<competition>)")
    download.add_argument("--archive", type=Path, action="append", metavar="FILE",
                          help="an archive downloaded by hand (.zip, .7z or .csv); repeatable; "
                               "no Kaggle API call is made")
    download.add_argument("--work-dir", type=Path, metavar="DIR",
                          help="working files; default ./.kit or $KIT_WORK_DIR")
    download.add_argument("--json", type=Path, metavar="PATH", help="write the result as JSON")
    return {"download": cmd_download}


def cmd_download(args: argparse.Namespace) -> int:
    from kit.kaggle.archives import extract_archives

    competition = load_competition(args.competition)
    paths = Paths.from_options(work=args.work_dir)
    target = args.data or paths.downloaded_data(competition.name)
    if args.archive:
        archives = list(args.archive)
        source = "archives given"
    else:
        folder = paths.work / "downloads" / competition.name
        print(f"downloading {competition.slug} from Kaggle into {folder}")
        archives = kaggle.connect(warn=_warn).download(competition.slug, folder)
        source = "Kaggle"
    result = extract_archives(archives, target, log=print)
    if result.skipped:
        print(f"{target} already holds these archives, extracted ({result.files} files); "
              "nothing to do")
    else:
        print(f"{competition.name}: {result.files} files ({result.bytes / 1e6:.1f} MB) from "
              f"{source} extracted into {target}")
    layout_ok = (target / competition.train_folder).is_dir()
    if not layout_ok:
        _warn(f"warning: {target} has no {competition.train_folder}/ folder; it is not laid out "
              f"like the {competition.name} competition (check the archives)")
    write_json(args.json, {"competition": competition.name, "slug": competition.slug,
                           "data": str(target), "source": source, "layout_ok": layout_ok,
                           **{k: v for k, v in result.to_dict().items() if k != "target"}})
    return 0
