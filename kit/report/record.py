"""Report section 6: the run record (recipe, scores, clip, local scores, timings, bad files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.report.data import RunData
from kit.report.html import Section, esc, fmt, key_values, paragraph, rich, table
from kit.report.sections import SECTION_IDS


def local_scores(data: RunData, table_: pd.DataFrame | None) -> dict | None:
    """Public/private log loss of the run's submission and of the class prior, where the
    dataset has a `solution.csv` (the demo data does); None otherwise."""
    competition = data.competition
    if competition is None or data.data_root is None:
        return None
    solution = data.data_root / "solution.csv"
    submission = Path(data.record.submission)
    if not solution.is_file() or not submission.is_file():
        return None
    from kit.scoring.score import prior_scores, read_solution, score_file

    scores = {"submission": score_file(submission, solution, competition).to_dict()}
    if table_ is not None:
        train = table_[table_["split"] == "train"]
        labels = np.array([competition.classes.index(c) for c in train["label"]])
        scores["prior"] = prior_scores(labels, read_solution(solution, competition),
                                       competition).to_dict()
    return scores


def _summary(record: dict) -> list[tuple[str, object]]:
    return [
        ("run id", record.get("run_id")),
        ("created", record.get("created")),
        ("competition", record.get("competition")),
        ("submission", record.get("submission")),
        ("training images used", record.get("n_train")),
        ("test images", record.get("n_test")),
        ("metric", record.get("metric") or "log_loss"),
        ("CV in the metric (out-of-fold)", fmt(record.get("cv_score", record.get("cv_log_loss")))),
        ("CV log loss (out-of-fold)", fmt(record.get("cv_log_loss"))),
        ("class-prior log loss", fmt(record.get("prior_log_loss"))),
        ("CV / prior", fmt(record.get("cv_vs_prior"), 3)),
        ("clip chosen on OOF", record.get("clip")),
        ("CV log loss after clipping", fmt(record.get("clipped_cv_log_loss"))),
        ("data", (record.get("data") or {}).get("root")),
        ("run folder", record.get("run_dir")),
    ]


def _recipe(record: dict) -> list[tuple[str, object]]:
    config = record.get("config") or {}
    items = [(k, v) for k, v in (config.get("recipe") or {}).items()]
    items += [("input size used", config.get("input_size")),
              ("TTA variants", ", ".join(config.get("tta_variants") or [])),
              ("seeds", config.get("seeds")), ("sample", config.get("sample")),
              ("groups file", config.get("groups_file"))]
    backbone = record.get("backbone") or {}
    items += [("backbone weights", backbone.get("weights"))]
    return items


def _scores_html(scores: dict | None) -> str:
    if scores is None:
        return paragraph("No local public/private scores: the dataset has no solution.csv "
                         "(the demo data has one; use `python -m kit score ... --solution FILE` "
                         "for your own).", kind="note")
    rows = []
    metric = scores.get("submission", {}).get("metric", "log_loss")
    for name, label in (("submission", "this submission"), ("prior", "class prior")):
        if name in scores:
            s = scores[name]
            rows.append([label, s.get("public"), s.get("private"), s.get("overall")])
    return table([metric, "public", "private", "all rows"], rows)


def _unreadable_html(record: dict) -> str:
    bad = record.get("unreadable") or {}
    rows = [[split, item.get("file"), item.get("reason")]
            for split in ("train", "test") for item in bad.get(split, [])]
    if not rows:
        return paragraph("None: every image was read.")
    return (paragraph("Training images that could not be read were left out; test images that "
                      "could not be read were given the class prior.")
            + table(["split", "file", "reason"], rows, text_columns=(0, 1, 2)))


def record_section(data: RunData, scores: dict | None) -> Section:
    record = data.record.to_dict()
    folds = record.get("fold_scores") or []
    fold_rows = [[f.get("seed"), f.get("fold"), f.get("n_val"), f.get("log_loss"),
                  f.get("best_epoch"), f.get("seconds"), f.get("resumed")] for f in folds]
    timings = list((record.get("timings") or {}).items())
    versions = list((record.get("versions") or {}).items())
    body = (
        rich(f"Record: <code>{esc(data.record_path)}</code>")
        + "<h3>Summary</h3>" + key_values(_summary(record))
        + "<h3>Local leaderboard</h3>" + _scores_html(scores)
        + "<h3>Recipe</h3>" + key_values(_recipe(record))
        + "<h3>Fold scores</h3>"
        + table(["seed", "fold", "images", "log loss", "kept epoch", "seconds", "resumed"],
                fold_rows, text_columns=())
        + "<h3>Timings (seconds)</h3>" + key_values(timings)
        + "<h3>Unreadable files</h3>" + _unreadable_html(record)
        + "<h3>Versions</h3>" + key_values(versions)
    )
    return Section(id=SECTION_IDS[5], title="Run record", body=body)
