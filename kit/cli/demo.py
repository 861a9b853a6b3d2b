"""`python -m kit demo`: write a competition's demo dataset (Kaggle layout, hidden solution)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.cli.common import DEMO_PRESETS
from kit.competition import load_competition


def register(commands: argparse._SubParsersAction) -> dict:
    demo = commands.add_parser("demo", help="write the demo dataset")
    demo.add_argument("competition")
    demo.add_argument("--out", type=Path, required=True, metavar="DIR")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--preset", choices=DEMO_PRESETS, default="full")
    return {"demo": cmd_demo}


def cmd_demo(args: argparse.Namespace) -> int:
    from kit.demo.cache import generate_demo

    competition = load_competition(args.competition)
    out = generate_demo(competition, args.out, preset=args.preset, seed=args.seed)
    print(f"demo dataset for {competition.name} written to {out}")
    return 0
