"""`python -m kit download|submit|leaderboard|kernel`: registered into kit.cli via `register`.

- `download COMPETITION [--data DIR] [--archive FILE ...]`: the competition's archives through
  the Kaggle API (or archives downloaded by hand), extracted safely into the data folder.
- `submit COMPETITION FILE [-m MESSAGE] [--wait S]`: validates and uploads a submission, the run
  id in its description, and fetches Kaggle's score into the local leaderboard.
- `leaderboard COMPETITION [--fetch]`: the local leaderboard, ranked by public score.
- `kernel COMPETITION [--out DIR] [--push] [recipe options]`: a Kaggle kernel folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from kit import kaggle
from kit import leaderboard as board
from kit.atomic import atomic_write_text
from kit.cli import add_data_options, data_root, write_json
from kit.competition import Competition, competitions_roots, load_competition
from kit.paths import Paths
from kit.submission import SubmissionError, read_submission, validate_submission

RECIPE_OPTIONS = ("backbone", "weights", "input_size", "head", "pooling", "folds", "tta", "seed",
                  "epochs", "batch_size", "sample", "learning_rate", "loss", "schedule", "mode",
                  "finetune_blocks", "base_lr_factor", "pseudo_label", "fcn_input_size",
                  "box_input_size", "box_variants", "box_loss_weight")
"""`kit run` options a kernel bakes in (copied from the `run` parser, so they stay the same)."""
POLL_SECONDS = 10.0
_sleep = time.sleep  # replaced in tests


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.5f}"


# ---------------------------------------------------------------- download


def cmd_download(args: argparse.Namespace) -> int:
    from kit.archives import extract_archives

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


# ---------------------------------------------------------------- submit


def _sample(competition: Competition, args: argparse.Namespace) -> tuple[Path, pd.DataFrame] | None:
    """The sample submission of the data selected by --data/--demo or downloaded, if any."""
    from kit.layout import read_sample_submission

    try:
        root = data_root(args, competition)
    except ValueError:
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


def _store_remote(db: Path, competition: Competition, run_id: str,
                  remote: kaggle.RemoteSubmission) -> None:
    board.set_kaggle(db, competition.name, run_id, board.KaggleScores(
        ref=remote.ref, status=remote.status, public=remote.public, private=remote.private))


def cmd_submit(args: argparse.Namespace) -> int:
    competition = load_competition(args.competition)
    source = str(args.submission)
    frame = read_submission(args.submission, id_column=competition.submission.id_column)
    checked = _check_for_submit(frame, competition, args, source)
    paths = Paths.from_options(work=args.work_dir, submissions=args.submissions_dir)
    run_id = board.run_id_of(args.submission)
    recipe = board.recipe_summary(board.run_record(args.submission))
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
        _store_remote(db, competition, run_id, remote)
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


# ---------------------------------------------------------------- leaderboard


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
            _store_remote(db, competition, entry.run_id, found)
            updated += 1
    print(f"fetched Kaggle scores for {updated} of {len(submitted)} submitted runs")
    return updated


def cmd_leaderboard(args: argparse.Namespace) -> int:
    competition = load_competition(args.competition)
    paths = Paths.from_options(submissions=args.submissions_dir)
    db = board.database(paths.submissions)
    if args.fetch:
        _fetch(db, competition)
    ranked = board.rank(board.entries(db, competition.name))
    if ranked:
        print(f"{competition.name}: {len(ranked)} submissions, ranked by public log loss "
              f"({db})")
        print(board.format_table(ranked))
    else:
        print(f"no scored submissions for {competition.name} in {db} yet: `python -m kit run` "
              "with a solution, or `python -m kit score`, adds them")
    if args.json is not None:
        atomic_write_text(args.json, json.dumps([r.to_dict() for r in ranked], indent=2))
    return 0


# ---------------------------------------------------------------- kernel


def _competition_folder(ref: str) -> Path:
    path = Path(ref).expanduser()
    if path.is_dir():
        return path.resolve()
    for root in competitions_roots():
        if (root / path.name).is_dir():
            return (root / path.name).resolve()
    raise ValueError(f"cannot find the folder of competition {ref!r}")


def _recipe_words(args: argparse.Namespace, options: list[argparse.Action]) -> list[str]:
    words: list[str] = []
    for action in options:
        value = getattr(args, action.dest)
        if value is None:
            continue
        if action.dest == "folds" and value == "group":
            raise ValueError("a kernel cannot use --folds group (it needs the groups `kit probe` "
                             "inferred on this machine); pass a number of folds")
        if action.dest.endswith("input_size"):
            value = f"{value[0]}x{value[1]}"
        words += [action.option_strings[0], str(value)]
    return words


def _kernel_id(args: argparse.Namespace, competition: Competition) -> tuple[str, str]:
    from kit.kernel import PLACEHOLDER_OWNER, slugify

    if args.id:
        title = args.title or args.id.split("/", 1)[-1].replace("-", " ")
        return args.id, title
    title = args.title or f"kit {competition.name}"
    credentials = kaggle.find_credentials()
    owner = credentials.username if credentials and credentials.username else None
    if owner is None:
        if args.push:
            raise ValueError("--push needs the kernel's owner: pass --id USERNAME/KERNEL-SLUG "
                             "(or set up Kaggle credentials with your user name)")
        owner = PLACEHOLDER_OWNER
    return f"{owner}/{slugify(title)}", title


def make_cmd_kernel(options: list[argparse.Action]):
    def cmd_kernel(args: argparse.Namespace) -> int:
        from kit.kernel import (
            PLACEHOLDER_OWNER,
            KernelSpec,
            build_kernel,
            recipe_weights_file,
        )

        competition = load_competition(args.competition)
        folder = _competition_folder(args.competition)
        words = _recipe_words(args, options)
        weights_file = recipe_weights_file(competition, args)
        kernel_id, title = _kernel_id(args, competition)
        spec = KernelSpec(competition=competition, competition_folder=folder,
                          kernel_id=kernel_id, title=title, run_args=tuple(words),
                          weights_file=weights_file,
                          dataset_sources=tuple(args.dataset_source or ()),
                          model_sources=tuple(args.model_source or ()),
                          private=not args.public, gpu=not args.cpu)
        out = args.out or Paths.from_options(work=args.work_dir).work / "kernels" / competition.name
        bundle = build_kernel(spec, out)
        print(f"kernel {kernel_id} written to {out}: {bundle.script.name} "
              f"({bundle.bundle_bytes / 1e3:.0f} kB of kit inside) and {bundle.metadata.name}")
        print(f"runs: python -m kit run {competition.name} --data /kaggle/input/"
              f"{competition.slug} {' '.join(words)}".rstrip())
        if kernel_id.startswith(PLACEHOLDER_OWNER + "/"):
            _warn(f"note: replace {PLACEHOLDER_OWNER} in {bundle.metadata} with your Kaggle user "
                  "name before pushing (or rebuild with --id USERNAME/SLUG)")
        if weights_file and not (args.dataset_source or args.model_source):
            _warn(f"note: the kernel needs {weights_file}, and kernels have no internet: attach "
                  "a Kaggle dataset or model holding it (--dataset-source OWNER/DATASET or "
                  "--model-source ...); without it the kernel stops with a message")
        payload = bundle.to_dict()
        if args.push:
            receipt = kaggle.connect(warn=_warn).push_kernel(out)
            print(f"pushed: {receipt.url or receipt.ref} (version {receipt.version})")
            payload["pushed"] = {"ref": receipt.ref, "url": receipt.url,
                                 "version": receipt.version}
        write_json(args.json, payload)
        return 0

    return cmd_kernel


# ---------------------------------------------------------------- registration


def _copy_recipe_options(run: argparse.ArgumentParser,
                         kernel: argparse.ArgumentParser) -> list[argparse.Action]:
    copied = []
    for action in run._actions:
        if action.dest in RECIPE_OPTIONS:
            copied.append(kernel.add_argument(*action.option_strings, dest=action.dest,
                                              type=action.type, metavar=action.metavar,
                                              help=action.help))
    return copied


def register(commands: argparse._SubParsersAction) -> dict:
    """Adds `download`, `submit`, `leaderboard` and `kernel` to `commands`; returns handlers."""
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

    submit = commands.add_parser("submit", help="upload a submission to Kaggle")
    submit.add_argument("competition")
    submit.add_argument("submission", type=Path)
    submit.add_argument("-m", "--message", help="description (the run id is put in front)")
    submit.add_argument("--wait", type=float, default=0.0, metavar="S",
                        help="seconds to wait for Kaggle's score (default 0: look once)")
    submit.add_argument("--submissions-dir", type=Path, metavar="DIR",
                        help="holds the leaderboard; default ./submissions")
    add_data_options(submit)

    lead = commands.add_parser("leaderboard", help="the local leaderboard of scored submissions")
    lead.add_argument("competition")
    lead.add_argument("--fetch", action="store_true",
                      help="first fetch Kaggle's scores of submitted runs")
    lead.add_argument("--submissions-dir", type=Path, metavar="DIR",
                      help="holds the leaderboard; default ./submissions")
    lead.add_argument("--json", type=Path, metavar="PATH",
                      help="write the entries as a JSON list")

    kernel = commands.add_parser("kernel", help="a Kaggle kernel running the same pipeline")
    kernel.add_argument("competition")
    kernel.add_argument("--out", type=Path, metavar="DIR",
                        help="kernel folder (default: <work>/kernels/<competition>)")
    kernel.add_argument("--push", action="store_true", help="upload it through the Kaggle API")
    kernel.add_argument("--id", metavar="USER/SLUG",
                        help="kernel id (default: your user name / slug of the title)")
    kernel.add_argument("--title", help="kernel title (default: kit <competition>)")
    kernel.add_argument("--public", action="store_true", help="make it public (default private)")
    kernel.add_argument("--cpu", action="store_true", help="no GPU (default: GPU on)")
    kernel.add_argument("--dataset-source", action="append", metavar="OWNER/DATASET",
                        help="a Kaggle dataset to attach, e.g. holding ImageNet weights")
    kernel.add_argument("--model-source", action="append",
                        metavar="OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION]",
                        help="a Kaggle model to attach, e.g. holding ImageNet weights")
    kernel.add_argument("--work-dir", type=Path, metavar="DIR",
                        help="working files; default ./.kit or $KIT_WORK_DIR")
    kernel.add_argument("--json", type=Path, metavar="PATH", help="write the result as JSON")
    run = commands.choices.get("run")
    if run is None:
        raise ValueError("kit.kaggle_cli.register needs the `run` subcommand registered first")
    options = _copy_recipe_options(run, kernel)
    return {"download": cmd_download, "submit": cmd_submit, "leaderboard": cmd_leaderboard,
            "kernel": make_cmd_kernel(options)}
