"""`python -m kit download|submit|leaderboard|kernel`: registered into kit.cli via `register`."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> dict:
    """Add subcommands to `commands`; return {name: handler}. (Being written: issue 5.)"""
    return {}
