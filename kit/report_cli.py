"""`python -m kit report <run>`: registered into kit.cli through `register`."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> dict:
    """Add subcommands to `commands`; return {name: handler}. (Being written: issue 6.)"""
    return {}
