"""`python -m kit kernel COMPETITION [--out DIR] [--push] [recipe options]`: a Kaggle kernel
folder running the same pipeline; and `kernel_main`, what that kernel's script runs.

The recipe options are those of `kit run` (the one option table), baked into the script.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from kit.cli.common import write_json
from kit.cli.run import add_recipe_options
from kit.competition import Competition, load_competition
from kit.competition.loader import competition_folder
from kit.competition.options import OPTIONS, given
from kit.core.atomic import atomic_write_bytes
from kit.core.errors import InputError
from kit.core.paths import Paths
from kit.kaggle import client as kaggle
from kit.kaggle.kernel import (
    DEFAULT_INPUT,
    DEFAULT_WORKING,
    INPUT_ENV,
    WORKING_ENV,
    Log,
    prepare_data,
    weights_args,
)


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def register(commands: argparse._SubParsersAction) -> dict:
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
    add_recipe_options(kernel)
    return {"kernel": cmd_kernel}


def recipe_words(args: argparse.Namespace, competition: Competition) -> list[str]:
    """The `kit run` words of every recipe option given on the command line."""
    words: list[str] = []
    values = given(vars(args))
    for option in OPTIONS:
        if option.name not in values:
            continue
        if not option.kernel:
            raise InputError(f"a kernel cannot carry {option.flag}")
        if (option.name in ("folds", "fold_kind") and values[option.name] == "group"
                and not competition.groups):
            raise InputError(f"a kernel cannot use --folds group for {competition.name}: it "
                             "declares no groups, and the groups `kit probe` inferred stay on "
                             "this machine; pass a number of folds")
        words += option.words(values[option.name])
    return words


def _kernel_id(args: argparse.Namespace, competition: Competition) -> tuple[str, str]:
    from kit.kaggle.kernel import PLACEHOLDER_OWNER, slugify

    if args.id:
        title = args.title or args.id.split("/", 1)[-1].replace("-", " ")
        return args.id, title
    title = args.title or f"kit {competition.name}"
    credentials = kaggle.find_credentials()
    owner = credentials.username if credentials and credentials.username else None
    if owner is None:
        if args.push:
            raise InputError("--push needs the kernel's owner: pass --id USERNAME/KERNEL-SLUG "
                             "(or set up Kaggle credentials with your user name)")
        owner = PLACEHOLDER_OWNER
    return f"{owner}/{slugify(title)}", title


def _notes(args: argparse.Namespace, kernel_id: str, weights_file: str | None,
           metadata: Path) -> None:
    from kit.kaggle.kernel import PLACEHOLDER_OWNER

    if kernel_id.startswith(PLACEHOLDER_OWNER + "/"):
        _warn(f"note: replace {PLACEHOLDER_OWNER} in {metadata} with your Kaggle user "
              "name before pushing (or rebuild with --id USERNAME/SLUG)")
    if weights_file and not (args.dataset_source or args.model_source):
        _warn(f"note: the kernel needs {weights_file}, and kernels have no internet: attach "
              "a Kaggle dataset or model holding it (--dataset-source OWNER/DATASET or "
              "--model-source ...); without it the kernel stops with a message")


def cmd_kernel(args: argparse.Namespace) -> int:
    from kit.kaggle.kernel import KernelSpec, build_kernel, recipe_weights_file

    competition = load_competition(args.competition)
    words = recipe_words(args, competition)
    weights_file = recipe_weights_file(competition, args)
    kernel_id, title = _kernel_id(args, competition)
    spec = KernelSpec(competition=competition,
                      competition_folder=competition_folder(args.competition),
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
    _notes(args, kernel_id, weights_file, bundle.metadata)
    payload = bundle.to_dict()
    if args.push:
        receipt = kaggle.connect(warn=_warn).push_kernel(out)
        print(f"pushed: {receipt.url or receipt.ref} (version {receipt.version})")
        payload["pushed"] = {"ref": receipt.ref, "url": receipt.url, "version": receipt.version}
    write_json(args.json, payload)
    return 0


# ---------------------------------------------------------------- inside the kernel


def _copy_out(summary_file: Path, working: Path, log: Log) -> None:
    """The submission to `<working>/submission.csv`, its run record to `submission.json`."""
    import json

    from kit.runs.record import RunRecord, record_path

    submission_file = Path(json.loads(summary_file.read_text())["submission"])
    record = RunRecord.read(record_path(submission_file))
    working.mkdir(parents=True, exist_ok=True)
    submission = atomic_write_bytes(working / "submission.csv", submission_file.read_bytes())
    # beside the submission, where `kit score` and the leaderboard look
    atomic_write_bytes(working / "submission.json", record_path(submission_file).read_bytes())
    log(f"wrote {submission} ({record.n_test} rows; CV log loss {record.cv_log_loss:.4f})")


def kernel_main(config: dict, *, bundle_root: Path | str, log: Log = print) -> int:
    """What the kernel script runs: `kit run` on the competition data, then the copy-out.

    Args:
        config: the build-time settings embedded in the script (competition, slug, run_args,
            weights_file, sources).
        bundle_root: the folder the script unpacked the kit into.
        log: progress lines.

    Returns:
        The exit status: 0, or 2 with one `error:` line when inputs are missing or a run fails
        on bad input.
    """
    import kit
    from kit.cli.main import main as kit_main

    input_root = Path(os.environ.get(INPUT_ENV) or DEFAULT_INPUT)
    working = Path(os.environ.get(WORKING_ENV) or DEFAULT_WORKING)
    scratch = Path(tempfile.gettempdir()) / "kit-kernel"
    work = Path(os.environ.setdefault("KIT_WORK_DIR", str(scratch / "work")))
    os.environ.setdefault("KIT_SUBMISSIONS_DIR", str(scratch / "submissions"))
    log(f"kit {kit.__version__} from {Path(kit.__file__).parent}; input {input_root}, "
        f"working {working}")
    folder = Path(bundle_root) / "competitions" / config["competition"]
    try:
        competition = load_competition(folder)
        data = prepare_data(input_root, config["slug"], competition,
                            work / "data" / competition.name, log=log)
        args = weights_args(config, input_root, data, log)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary_file = Path(tempfile.mkdtemp(prefix="kit-run-")) / "run.json"
    argv = ["run", str(folder), "--data", str(data), *args, "--json", str(summary_file)]
    log("python -m kit " + " ".join(argv))
    status = kit_main(argv)
    if status == 0:
        _copy_out(summary_file, working, log)
    return status


__all__ = ["cmd_kernel", "kernel_main", "recipe_words", "register"]
