"""`python -m kit probe`: registered into kit.cli.main through `register`.

    python -m kit probe COMPETITION [--demo | --data DIR] [--json PATH] [--report PATH]
                        [--run RUN_ID] [--fail-on-leak] [--alpha A] [--seed S] [--no-attention]

Prints one row per probe (figure, verdict, evidence) and writes, into the dataset's probe
folder (`Paths.probe_dir`): `groups.csv` (for `run --folds group`), `report.md` and `probe.json`
(the full result, also written to `--json PATH`). With `--fail-on-leak` it exits with
`EXIT_LEAK` when any probe finds a leak.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_LEAK = 3
PROBE_JSON = "probe.json"
REPORT_MD = "report.md"


def register(commands: argparse._SubParsersAction) -> dict:
    """Add the `probe` subcommand to `commands`; return ``{"probe": handler}``."""
    from kit.cli.common import add_data_options

    probe = commands.add_parser("probe", help="find, measure and explain leaks")
    probe.add_argument("competition", help="competition folder (competitions/fisheries) or name")
    add_data_options(probe)
    probe.add_argument("--submissions-dir", type=Path, metavar="DIR",
                       help="where run records are (default ./submissions or "
                            "$KIT_SUBMISSIONS_DIR)")
    probe.add_argument("--run", metavar="RUN_ID",
                       help="run whose cached features and heads to use (default: the newest "
                            "run on this data)")
    probe.add_argument("--report", type=Path, metavar="PATH",
                       help=f"Markdown report (default: {REPORT_MD} in the probe folder)")
    probe.add_argument("--fail-on-leak", action="store_true",
                       help=f"exit with status {EXIT_LEAK} when any probe finds a leak")
    probe.add_argument("--alpha", type=float, default=0.05,
                       help="significance level of every verdict (default 0.05)")
    probe.add_argument("--seed", type=int, default=0, help="seed of tests and folds")
    probe.add_argument("--no-attention", action="store_true",
                       help="skip the attention probe (it imports TensorFlow)")
    return {"probe": cmd_probe}


def cmd_probe(args: argparse.Namespace) -> int:
    """Run every probe and print, write and return the outcome."""
    from kit.cli.common import data_root, write_json
    from kit.competition import load_competition
    from kit.core.atomic import atomic_write_text, remove_stale_temps
    from kit.core.paths import Paths
    from kit.probes.report import markdown_report, summary_table
    from kit.probes.runner import ProbeRequest, run_probes
    from kit.probes.settings import ProbeSettings

    competition = load_competition(args.competition)
    paths = Paths.from_options(work=args.work_dir, submissions=args.submissions_dir)
    root = Path(data_root(args, competition)).resolve()
    settings = ProbeSettings(alpha=args.alpha, seed=args.seed)
    remove_stale_temps(paths.probe_dir(competition.name, root))
    report = run_probes(ProbeRequest(competition=competition, root=root, paths=paths,
                                     run_id=args.run, settings=settings,
                                     attention=not args.no_attention))
    folder = paths.probe_dir(competition.name, root)
    report_file = args.report or folder / REPORT_MD
    atomic_write_text(report_file, markdown_report(report))
    payload = {**report.to_dict(), "report": str(report_file)}
    write_json(folder / PROBE_JSON, payload)
    if args.json is not None:
        write_json(args.json, payload)
    print(summary_table(report))
    if report.unreadable:
        print(f"unreadable images ({len(report.unreadable)}): "
              + "; ".join(f"{u.path} ({u.reason})" for u in report.unreadable[:5])
              + (" ..." if len(report.unreadable) > 5 else ""))
    print(f"groups: {report.groups.groups_file}")
    print(f"report: {report_file}")
    found = [name for name, leak in report.leaks.items() if leak]
    print(f"leaks: {', '.join(found) if found else 'none'}")
    return EXIT_LEAK if args.fail_on_leak and found else 0
