"""`kit run --heads H1,H2,...`: several heads on the same folds and cached features, one table.

Every head is a normal run (its own submission and run record), so each is resumable and
scored like any other. The folds are the same for all heads: they depend only on the labels,
the fold count and the seed. The conv features are computed once and read from the cache by
every head that uses the same input size. The table (CV, public and private local log loss,
seconds) is printed, returned as `comparison` and written into every compared run's record.
Where the competition's metric is not log loss, the table adds the CV in that metric, and public
and private are in that metric (`metric` in each row says which).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from kit.core.errors import InputError
from kit.runs.record import RunRecord

COLUMNS = ("head", "cv_log_loss", "public", "private", "seconds", "metric", "cv_score")


ONE_OFF = ("pretrain_demo_base",)  # timings that are no cost of a head (cached for the data)


def comparison_row(head: str, summary: dict) -> dict:
    """One table row from a run summary (public/private None without a solution file).

    `seconds` is the head's run time, without the one-off pretraining of the demo base (the
    demo's stand-in for downloading ImageNet weights, cached once for every later run).
    """
    score = summary.get("local_score") or {}
    timings = summary["timings"]
    seconds = timings["total"] - sum(timings.get(name, 0.0) for name in ONE_OFF)
    metric = summary.get("metric", "log_loss")
    return {"head": head, "cv_log_loss": summary["cv_log_loss"],
            "public": score.get("public"), "private": score.get("private"),
            "seconds": round(seconds, 3), "metric": metric,
            "cv_score": summary.get("cv_score", summary["cv_log_loss"])}


def format_table(rows: Sequence[dict]) -> str:
    """A fixed-width text table; `n/a` where a score is unknown.

    Example:
        >>> print(format_table([{"head": "dense", "cv_log_loss": 1.0, "public": None,
        ...                      "private": 2.0, "seconds": 3.04}]))
        head            CV log loss    public   private   seconds
        dense                1.0000       n/a    2.0000       3.0
    """
    def number(value: float | None, digits: int = 4) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    metric = next((r.get("metric") for r in rows if r.get("metric", "log_loss") != "log_loss"),
                  None)
    extra = f" {'CV ' + metric:>12}" if metric else ""
    lines = [f"{'head':<15} {'CV log loss':>11}{extra} {'public':>9} {'private':>9} "
             f"{'seconds':>9}"]
    for row in rows:
        score = f" {number(row.get('cv_score')):>12}" if metric else ""
        lines.append(f"{row['head']:<15} {number(row['cv_log_loss']):>11}{score} "
                     f"{number(row['public']):>9} {number(row['private']):>9} "
                     f"{number(row['seconds'], 1):>9}")
    return "\n".join(lines)


def compare_heads(options, heads: Sequence[str], *, run_one: Callable[[object], dict],
                  log: Callable[[str], None] = print) -> dict:
    """Run `options` once per head with `run_one`; print and return the comparison.

    Returns the first head's summary (so the usual `run --json` keys are there), plus
    `comparison` (one row per head: head, cv_log_loss, public, private, seconds), `bbox_iou`
    where a bbox head ran, and `runs` (every head's summary).
    """
    if not heads:
        raise InputError("--heads needs at least one head name, e.g. dense,metadata-merge")
    summaries = []
    for head in heads:
        log(f"--- head {head} ---")
        head_options = dataclasses.replace(
            options, recipe=dataclasses.replace(options.recipe, head=head))
        summaries.append(run_one(head_options))
    rows = [comparison_row(h, s) for h, s in zip(heads, summaries, strict=True)]
    log("")
    log(format_table(rows))
    out = {**summaries[0], "comparison": rows, "runs": summaries}
    ious = {h: s["bbox_iou"] for h, s in zip(heads, summaries, strict=True) if "bbox_iou" in s}
    if ious:
        out["bbox_iou"] = ious.get("bbox", next(iter(ious.values())))
        log(f"bbox mean IoU on out-of-fold boxed images: {out['bbox_iou']:.3f}")
    for summary in summaries:
        _add_to_record(Path(summary["record"]), rows)
    return out


def _add_to_record(record: Path, rows: list[dict]) -> None:
    RunRecord.read(record).with_comparison(rows).write(record)
