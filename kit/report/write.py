"""The run report: one self-contained `report.html` in the run folder, PNGs beside it.

Six sections: learning curves; confusion matrix and per-class scores; example images; class
activation maps; leakage (size by class, probe results); the run record. Images are inlined as
data: URIs and the page forbids any other fetch, so it opens offline, anywhere. Its cost is
bounded in the number of classes: past the limits of `kit.report.limits` the per-class grids show
the worst classes only and heat maps drop their cell numbers, and the page says so.

Example:
    >>> write_report(Path("submissions/fisheries/20240101-000000-abcd1234.json"))  # doctest: +SKIP
    PosixPath('.kit/runs/fisheries/<config-hash>/report.html')
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.core.atomic import atomic_write_bytes, atomic_write_text
from kit.core.paths import Paths
from kit.report.analysis import check_smoothing, per_class, pick_examples, worst_classes
from kit.report.data import RunData, load_run
from kit.report.evidence import cam_section, leakage_section
from kit.report.html import Picture, Section, page
from kit.report.leakage import PROBE_JSON, read_probe
from kit.report.limits import MAX_GRID_CLASSES
from kit.report.record import local_scores, record_section
from kit.report.sections import (
    SECTION_IDS,
    Context,
    examples_section,
    learning_section,
    predictions_section,
    unavailable,
)
from kit.runs.record import RunRecord

REPORT_FILE = "report.html"
N_PER_CLASS = 3


@dataclass(frozen=True, kw_only=True)
class Report:
    """A rendered report, not yet written."""

    html: str
    pictures: tuple[Picture, ...]
    sections: tuple[Section, ...]
    seconds: float

    def save(self, out: Path) -> Path:
        """Write the page to `out` and its PNGs into the folder `out` without its suffix
        (`report.html` -> `report/`); each file atomically."""
        out = Path(out)
        folder = out.with_suffix("")
        for picture in self.pictures:
            atomic_write_bytes(folder / picture.name, picture.png)
        atomic_write_text(out, self.html)
        return out


def _table(data: RunData):
    if data.data_root is None or data.competition is None:
        return None
    from kit.data.layout import read_layout

    try:
        return read_layout(data.competition, data.data_root).table
    except ValueError as error:
        data.missing["data"] = str(error)
        return None


def _context(data: RunData) -> Context | None:
    if data.oof is None:
        return None
    table = _table(data)
    boxes = {}
    if data.competition is not None and data.competition.annotations and data.data_root:
        from kit.probes.boxes import read_boxes

        boxes = read_boxes(data.data_root / data.competition.annotations,
                           data.competition.classes, list(data.oof["path"]))
    y_true = np.array([data.classes.index(c) for c in data.oof["label"]])
    probs = data.oof[data.classes].to_numpy(dtype=np.float64)
    seed = int(data.record.recipe.get("seed", 0))
    shown = worst_classes(per_class(y_true, probs, data.classes), MAX_GRID_CLASSES)
    return Context(data=data, y_true=y_true, probs=probs, table=table, boxes=boxes,
                   grid_classes=shown, picks=pick_examples(y_true, probs, n_per_class=N_PER_CLASS,
                                                           seed=seed, classes=shown))


def _probe_command(data: RunData, paths: Paths, probe_dir: Path) -> str:
    """The `kit probe` call on the run's data whose results this report would pick up."""
    name = data.record.competition
    root = data.data_root or data.record.data.get("root", "DIR")
    return (f"python -m kit probe {name} --data {root} --work-dir {paths.work} "
            f"--submissions-dir {paths.submissions} --json {probe_dir / PROBE_JSON}")


def build_report(record: Path, *, smoothing: float = 0.6) -> Report:
    """Render the report of the run whose record is `record` (nothing is written).

    Raises:
        FileNotFoundError: If the record does not exist.
        ValueError: If it is not a run record, or `smoothing` is outside [0, 1).
    """
    smoothing = check_smoothing(smoothing)
    start = time.perf_counter()
    data = load_run(record)
    ctx = _context(data)
    built: list[tuple[Section, list[Picture]]] = [learning_section(data, smoothing)]
    if ctx is None:
        reason = data.missing.get("oof", "no out-of-fold predictions")
        built += [unavailable(SECTION_IDS[1], "Confusion matrix and per-class scores", reason),
                  unavailable(SECTION_IDS[2], "Examples", reason),
                  unavailable(SECTION_IDS[3], "Class activation maps", reason),
                  unavailable(SECTION_IDS[4], "Leakage", reason)]
        scores = None
    else:
        paths = Paths(work=data.work_dir, submissions=data.record_path.parent.parent)
        probe_dir = (paths.probe_dir(data.record.competition, data.data_root)
                     if data.data_root else paths.work / "probes")
        built += [predictions_section(ctx), examples_section(ctx, N_PER_CLASS), cam_section(ctx),
                  leakage_section(ctx, read_probe(probe_dir) if data.data_root else None,
                                  probe_dir, _probe_command(data, paths, probe_dir))]
        scores = local_scores(data, ctx.table)
    built.append((record_section(data, scores), []))
    sections = tuple(section for section, _ in built)
    pictures = tuple(p for _, pics in built for p in pics)
    record = data.record
    cv = float("nan") if record.cv_log_loss is None else record.cv_log_loss
    subtitle = (f"{record.competition} run {record.run_id}: CV log loss {cv:.4f}, "
                f"{record.n_train} training images, {len(data.histories)} fold models")
    html = page(title=f"kit report: {record.competition} {record.run_id}",
                subtitle=subtitle, sections=sections)
    return Report(html=html, pictures=pictures, sections=sections,
                  seconds=time.perf_counter() - start)


def write_report(record: Path, *, smoothing: float = 0.6, out: Path | None = None) -> Path:
    """Write `report.html` for the run whose record is `record`, and its PNGs beside it.

    Args:
        record: The run record, `<submissions>/<competition>/<run-id>.json`.
        smoothing: Exponential smoothing factor of the learning curves, in [0, 1) (0: raw).
        out: Where to write the page; default `<run_dir>/report.html`. The PNGs go into the
            folder named like `out` without its suffix (default `<run_dir>/report/`).

    Returns:
        The path of the page.

    Raises:
        FileNotFoundError: If the record does not exist.
        ValueError: If it is not a run record, or `smoothing` is outside [0, 1).
    """
    report = build_report(record, smoothing=smoothing)
    target = Path(out) if out is not None else Path(load_run_dir(record)) / REPORT_FILE
    return report.save(target)


def load_run_dir(record: Path) -> Path:
    """The run folder named by a run record."""
    return Path(RunRecord.read(Path(record)).run_dir)


__all__ = ["REPORT_FILE", "Report", "build_report", "load_run_dir", "write_report"]
