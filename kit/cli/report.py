"""`python -m kit report`: the HTML report of a run; registered into kit.cli.main through `register`.

    python -m kit report fisheries                      # the newest fisheries run
    python -m kit report fisheries 20240101-120000-ab   # one run (a unique prefix is enough)
    python -m kit report submissions/fisheries/<run-id>.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.competition import load_competition
from kit.core.errors import InputError
from kit.core.paths import Paths
from kit.runs.find import pick_run
from kit.runs.record import RunRecord


def resolve_record(target: str, run_id: str | None, submissions: Path) -> Path:
    """The run record named on the command line.

    Args:
        target: A path to a run record (`.json`), or a competition (folder or name).
        run_id: With a competition: a run id or a unique prefix of one; None for the newest.
        submissions: The submissions folder holding `<competition>/<run-id>.json`.

    Raises:
        InputError: No such run (close matches are named), an ambiguous prefix, no runs at all,
            or a record path given together with a run id.
    """
    as_path = Path(target).expanduser()
    if as_path.suffix == ".json" or as_path.is_file():
        if run_id is not None:
            raise InputError(
                f"pass either a run record ({target}) or a competition and a RUN_ID, not both; "
                f"received RUN_ID={run_id!r}"
            )
        return as_path
    name = load_competition(target).name
    return pick_run(submissions / name, name, run_id)


def cmd_report(args: argparse.Namespace) -> int:
    from kit.cli.common import write_json
    from kit.report.write import REPORT_FILE, build_report, load_run_dir

    paths = Paths.from_options(submissions=args.submissions_dir)
    record = resolve_record(args.run, args.run_id, paths.submissions)
    report = build_report(record, smoothing=args.smoothing)
    out = args.out if args.out is not None else load_run_dir(record) / REPORT_FILE
    out = report.save(out)
    missing = [s.title for s in report.sections if not s.available]
    print(f"report: {out} ({len(report.sections)} sections, {len(report.pictures)} figures, "
          f"{report.seconds:.1f} s)")
    if missing:
        print(f"not available for this run: {', '.join(missing)} (the report says why)")
    run_id = RunRecord.read(record).run_id
    write_json(args.json, {
        "report": str(out),
        "record": str(record),
        "run_id": run_id,
        "figures": [str(out.with_suffix("") / p.name) for p in report.pictures],
        "sections": [{"id": s.id, "title": s.title, "available": s.available}
                     for s in report.sections],
        "seconds": round(report.seconds, 3),
    })
    return 0


def register(commands: argparse._SubParsersAction) -> dict:
    """Add the `report` subcommand to `commands`; return {name: handler}."""
    parser = commands.add_parser(
        "report", help="self-contained HTML report of a run",
        description="Write report.html (and its PNGs) for a run: learning curves, confusion "
                    "matrix, example images, class activation maps, leakage, run record.")
    parser.add_argument("run", metavar="COMPETITION|RECORD",
                        help="a competition (folder or name: its newest run, or RUN_ID's) or a "
                             "run record <run-id>.json")
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID",
                        help="run id (or a unique prefix) of the competition's run")
    parser.add_argument("--smoothing", type=float, default=0.6, metavar="F",
                        help="exponential smoothing of the learning curves, in [0, 1) "
                             "(default 0.6; 0: raw)")
    parser.add_argument("--out", type=Path, metavar="PATH",
                        help="where to write the page (default: <run folder>/report.html; the "
                             "PNGs go into the folder of the same name without .html)")
    parser.add_argument("--submissions-dir", type=Path, metavar="DIR",
                        help="where run records are; default ./submissions or "
                             "$KIT_SUBMISSIONS_DIR")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the result as JSON")
    return {"report": cmd_report}
