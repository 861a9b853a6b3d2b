"""The report of a many-class run stays bounded (kit/report/limits.py); a few-class one is whole.

No training: a synthetic run (an OOF frame, no run folder, no images) goes through the same
context and section builders the report uses, with the PNG rendering replaced by a recorder, so
the test counts what each figure draws.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import kit.report.evidence as evidence
import kit.report.sections as sections
from kit.report.analysis import most_confused, per_class, worst_classes
from kit.report.data import RunData
from kit.report.limits import MAX_ANNOTATED_CLASSES, MAX_GRID_CLASSES, TOP_CONFUSED_PAIRS
from kit.report.write import N_PER_CLASS, _context


def _run(n_classes: int, *, per_class_rows: int = 4, seed: int = 0) -> RunData:
    """A run's OOF predictions: `per_class_rows` rows per class, mostly right, some wrong."""
    rng = np.random.default_rng(seed)
    classes = [f"class_{k:03d}" for k in range(n_classes)]
    y = np.repeat(np.arange(n_classes), per_class_rows)
    logits = rng.normal(size=(len(y), n_classes))
    logits[np.arange(len(y)), y] += rng.uniform(0.0, 4.0, len(y))  # uneven per class
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    oof = pd.DataFrame(probs, columns=classes)
    oof.insert(0, "label", [classes[k] for k in y])
    oof.insert(0, "path", [f"train/img_{i:05d}.jpg" for i in range(len(y))])
    record = SimpleNamespace(recipe={"seed": 0}, cv_log_loss=1.0, competition="synthetic")
    return RunData(record_path=Path("run.json"), record=record, run_dir=Path("run"),
                   classes=classes, competition=None, oof=oof, folds=None, histories=(),
                   data_root=None)


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list:
    """Figures the sections render, in order (rendering skipped)."""
    figures: list = []

    def record(fig) -> bytes:
        figures.append(fig)
        return b"\x89PNG"

    monkeypatch.setattr(sections, "to_png", record)
    monkeypatch.setattr(evidence, "to_png", record)
    return figures


def _cell_numbers(fig) -> int:
    return sum(len(ax.texts) for ax in fig.axes)


def _grid_rows(fig) -> int:
    """Rows of a tile grid (its axes form a rows x columns array)."""
    return len({ax.get_subplotspec().rowspan.start for ax in fig.axes})


def _text(html: str) -> str:
    return " ".join(html.replace("<", " <").split())


def test_worst_classes_bounds_and_orders_by_log_loss():
    stats = pd.DataFrame({"log_loss": [0.5, 2.0, np.nan, 1.0, 2.0]})
    assert worst_classes(stats, 5) == (0, 1, 2, 3, 4)  # all fit: class order
    assert worst_classes(stats, 3) == (1, 4, 3)  # worst first, ties in class order
    assert worst_classes(stats, 4)[-1] == 0 and 2 not in worst_classes(stats, 4)  # NaN last


def test_most_confused_pairs_leave_out_the_diagonal_and_zeros():
    counts = np.array([[5, 3, 0], [1, 4, 3], [0, 0, 2]])
    pairs = most_confused(counts, ["a", "b", "c"], 5)
    assert pairs[["true", "predicted", "count"]].values.tolist() == [
        ["a", "b", 3], ["b", "c", 3], ["b", "a", 1]]
    assert pairs["share"].tolist() == pytest.approx([3 / 8, 3 / 8, 1 / 8])
    assert len(most_confused(counts, ["a", "b", "c"], 1)) == 1


def test_a_many_class_report_draws_bounded_grids_and_no_cell_numbers(drawn):
    data = _run(60)
    ctx = _context(data)
    stats = per_class(ctx.y_true, ctx.probs, data.classes)
    assert ctx.grid_classes == worst_classes(stats, MAX_GRID_CLASSES)
    assert len(ctx.grid_classes) == MAX_GRID_CLASSES
    assert set(ctx.picks.confident_wrong) == set(ctx.grid_classes)  # nothing else is read

    predictions, _ = sections.predictions_section(ctx)
    matrix, bars = drawn
    assert _cell_numbers(matrix) == 0 and len(matrix.axes) == 2  # one panel and its colour bar
    assert len(bars.axes[0].get_xticklabels()) == MAX_GRID_CLASSES
    text = _text(predictions.body)
    assert (f"With 60 classes the cells carry no numbers (above {MAX_ANNOTATED_CLASSES} classes "
            "they would be too small to read)") in text
    assert "Most confused pairs" in text and f"The {MAX_GRID_CLASSES} of 60 classes" in text
    assert text.count("<tr>") == 1 + 60 + 1 + TOP_CONFUSED_PAIRS  # per-class table is whole

    drawn.clear()
    examples, pictures = sections.examples_section(ctx, N_PER_CLASS)
    grids = dict(zip([p.name for p in pictures], drawn, strict=True))
    for name in ("examples_confident_correct.png", "examples_confident_wrong.png"):
        assert _grid_rows(grids[name]) == MAX_GRID_CLASSES
    labels = [ax.get_ylabel() for ax in grids["examples_confident_wrong.png"].axes
              if ax.get_ylabel()]
    assert labels == [data.classes[k] for k in ctx.grid_classes]
    assert ("With 60 classes, the per-class grids show 20 of them: the 20 with the highest mean "
            "out-of-fold log loss, worst first") in _text(examples.body)
    assert len(evidence._cam_rows(ctx)) == MAX_GRID_CLASSES


def test_a_few_class_report_is_whole_and_numbered(drawn):
    data = _run(8, per_class_rows=6)
    ctx = _context(data)
    assert ctx.grid_classes == tuple(range(8)) and ctx.grid_note() == ""
    predictions, _ = sections.predictions_section(ctx)
    matrix, bars = drawn
    assert _cell_numbers(matrix) == 2 * 8 * 8  # counts and shares, every cell
    assert len(bars.axes[0].get_xticklabels()) == 8
    text = _text(predictions.body)
    assert "Most confused pairs" not in text and "cells carry no numbers" not in text
    drawn.clear()
    examples, pictures = sections.examples_section(ctx, N_PER_CLASS)
    grids = dict(zip([p.name for p in pictures], drawn, strict=True))
    assert _grid_rows(grids["examples_confident_correct.png"]) == 8
    assert "per-class grids show" not in _text(examples.body)
    assert len(evidence._cam_rows(ctx)) == 8


def test_the_size_heatmap_of_many_classes_has_no_class_counts(drawn):
    classes = [f"c{k}" for k in range(MAX_ANNOTATED_CLASSES + 1)]
    rng = np.random.default_rng(0)
    n = 4 * len(classes)
    table = pd.DataFrame({"split": ["train"] * n + ["test"] * 10,
                          "label": [classes[i % len(classes)] for i in range(n)] + [None] * 10,
                          "width": pd.array(rng.integers(50, 53, n + 10), dtype="Int64"),
                          "height": pd.array([40] * (n + 10), dtype="Int64")})
    html, _ = evidence.size_leak_html(table, classes)
    (heatmap,) = drawn
    assert len(heatmap.axes[0].texts) == 0 and len(heatmap.axes[1].texts) > 0  # test counts
    assert f"With {len(classes)} classes the class cells carry no counts" in _text(html)
    drawn.clear()
    evidence.size_leak_html(table[table["label"].isin([*classes[:8], None])], classes[:8])
    assert len(drawn[0].axes[0].texts) > 0
