"""Command line: `python -m kit {run,demo,score,probe,download,submit,leaderboard,kernel,report}`.

Each command is a module of `kit.cli` with `register(commands) -> {name: handler}`; a handler maps
parsed arguments to an exit status. Every command that computes numbers prints a short summary
and writes the full result as JSON with `--json PATH`.

Exit statuses: 0 done; 2 bad input (one `error:` line naming the problem and the fix: the kit's
own `KitError`, or an argparse usage error); 1 a bug (any other exception: its traceback is
printed, so a programming error never looks like a user mistake); 3 `probe --fail-on-leak`
found a leak; 130 interrupted (finished folds and cached features are kept).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from kit.core.errors import KitError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
COMMANDS: tuple[str, ...] = ("kit.cli.run", "kit.cli.demo", "kit.cli.score", "kit.cli.probe",
                             "kit.cli.download", "kit.cli.submit", "kit.cli.leaderboard",
                             "kit.cli.kernel", "kit.cli.report", "kit.cli.backbones")
Handler = Callable[[argparse.Namespace], int]


def parser_and_handlers() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    parser = argparse.ArgumentParser(
        prog="python -m kit",
        description="Kaggle image-classification kit with leakage analysis.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Handler] = {}
    for name in COMMANDS:
        handlers.update(importlib.import_module(name).register(commands))
    return parser, handlers


def build_parser() -> argparse.ArgumentParser:
    return parser_and_handlers()[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = parser_and_handlers()
    args = parser.parse_args(argv)
    try:
        return handlers[args.command](args)
    except KitError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: finished folds and cached features are kept; run the same command "
              "again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


__all__ = ["COMMANDS", "EXIT_USAGE", "build_parser", "main", "parser_and_handlers"]
