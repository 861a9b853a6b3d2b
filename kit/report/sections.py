"""The six sections of the run report; each builder returns its `Section` and its pictures."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kit.probes.boxes import Box
from kit.report.analysis import (
    ExamplePicks,
    confusion,
    most_confused,
    per_class,
)
from kit.report.data import RunData
from kit.report.html import Picture, Section, esc, figure, fmt, paragraph, table
from kit.report.images import Thumb, caption, thumbnail
from kit.report.limits import MAX_ANNOTATED_CLASSES, TOP_CONFUSED_PAIRS
from kit.report.plots import (
    Tile,
    confusion_heatmap,
    confusion_matrices,
    learning_curves,
    per_class_bars,
    tile_grid,
    to_png,
)

SECTION_IDS = ("learning-curves", "predictions", "examples", "cam", "leakage", "run-record")


@dataclass(frozen=True, kw_only=True)
class Context:
    """What several sections share: the run, its OOF arrays, picks, table and thumbnails.

    `grid_classes` are the class indexes the per-class grids show, in row order (all classes,
    or the worst few of a many-class run: `kit.report.analysis.worst_classes`). Only the
    thumbnail cache changes: it fills as sections ask for images.
    """

    data: RunData
    y_true: np.ndarray
    probs: np.ndarray
    picks: ExamplePicks
    grid_classes: tuple[int, ...]
    table: pd.DataFrame | None
    boxes: dict[str, tuple[Box, ...]]  # by training path (`train/ALB/img_00003.jpg`)
    thumbs: dict[str, Thumb] = field(default_factory=dict)

    def file(self, path: str) -> Path:
        given = Path(path)
        if given.is_absolute() or self.data.data_root is None:
            return given
        return self.data.data_root / given

    def preload(self, paths: list[str]) -> None:
        """Read the thumbnails of `paths` (two threads: decoding releases the GIL)."""
        todo = [p for p in dict.fromkeys(paths) if p not in self.thumbs]
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="kit-report") as pool:
            for path, thumb in zip(todo, pool.map(lambda p: thumbnail(self.file(p)), todo),
                                   strict=True):
                self.thumbs[path] = thumb

    def thumb(self, path: str) -> Thumb:
        if path not in self.thumbs:
            self.thumbs[path] = thumbnail(self.file(path))
        return self.thumbs[path]

    def oof_path(self, row: int) -> str:
        return str(self.data.oof["path"].iloc[row])

    def tile(self, row: int, *, heat: np.ndarray | None = None, with_boxes: bool = False,
             extra: str = "") -> Tile:
        """The tile of OOF row `row`: thumbnail, caption (true, predicted, probability)."""
        path = self.oof_path(row)
        thumb = self.thumb(path)
        classes = self.data.classes
        true, pred = int(self.y_true[row]), int(self.probs[row].argmax())
        text = caption(Path(path).name, true=classes[true], predicted=classes[pred],
                       p_predicted=float(self.probs[row, pred]),
                       p_true=float(self.probs[row, true]))
        boxes = ()
        if with_boxes:
            boxes = tuple((b.x * thumb.scale, b.y * thumb.scale, b.width * thumb.scale,
                           b.height * thumb.scale) for b in self.boxes.get(path, ()))
        return Tile(image=thumb.image, caption=text + extra, right=true == pred, heat=heat,
                    boxes=boxes)

    @property
    def grid_labels(self) -> list[str]:
        """Row labels of the per-class grids."""
        return [self.data.classes[k] for k in self.grid_classes]

    def grid_note(self) -> str:
        """The sentence saying which classes the per-class grids show ("" when all)."""
        n, total = len(self.grid_classes), len(self.data.classes)
        if n == total:
            return ""
        return (f"With {total} classes, the per-class grids show {n} of them: the {n} with the "
                "highest mean out-of-fold log loss, worst first; the per-class table lists "
                "every class.")

    def alt(self, rows: list[int]) -> str:
        """Alt text listing each tile: file, true class, predicted class and probability."""
        classes = self.data.classes
        parts = []
        for row in rows:
            pred = int(self.probs[row].argmax())
            parts.append(f"{Path(self.oof_path(row)).name}: true {classes[int(self.y_true[row])]}"
                         f", predicted {classes[pred]} ({self.probs[row, pred]:.2f})")
        return "; ".join(parts)


def unavailable(section_id: str, title: str, reason: str) -> tuple[Section, list[Picture]]:
    return Section(id=section_id, title=title, available=False,
                   body=paragraph(f"Not available for this run: {reason}", kind="note")), []


# ---------------------------------------------------------------- 1. learning curves


def learning_section(data: RunData, smoothing: float) -> tuple[Section, list[Picture]]:
    title = "Learning curves"
    if not data.histories:
        return unavailable(SECTION_IDS[0], title, data.missing.get("histories", "no histories"))
    picture = Picture(name="learning_curves.png", png=to_png(learning_curves(data.histories,
                                                                             smoothing)),
                      alt=f"loss and accuracy per epoch for {len(data.histories)} folds",
                      caption="Thin lines: raw values per epoch; thick lines: exponentially "
                              f"smoothed (factor {smoothing:g}); dotted: the epoch whose weights "
                              "were kept (early stopping).")
    body = paragraph(
        "One row per (seed, fold). 'validation' here is the early-stopping split of the fold's "
        "own training images (what EarlyStopping and ReduceLROnPlateau watch); the fold's "
        "held-out images are scored only once, in the predictions section."
    ) + figure(picture)
    return Section(id=SECTION_IDS[0], title=title, body=body), [picture]


# ---------------------------------------------------------------- 2. predictions


def _confusion_html(counts: np.ndarray, classes: list[str]) -> tuple[str, Picture]:
    """The confusion matrix: numbered cells up to `MAX_ANNOTATED_CLASSES` classes; above, an
    unnumbered heat map and the most confused pairs table."""
    where = "Rows: true class; columns: predicted class (argmax of the OOF probabilities)."
    if len(classes) <= MAX_ANNOTATED_CLASSES:
        matrix = Picture(name="confusion.png", png=to_png(confusion_matrices(counts, classes)),
                         alt="confusion matrix of the out-of-fold predictions, counts and shares",
                         caption=where)
        return figure(matrix), matrix
    matrix = Picture(name="confusion.png", png=to_png(confusion_heatmap(counts, classes)),
                     alt="confusion matrix of the out-of-fold predictions, shares of each true "
                         "class, without numbers",
                     caption=f"{where} Colour: share of the true class's images. With "
                             f"{len(classes)} classes the cells carry no numbers (above "
                             f"{MAX_ANNOTATED_CLASSES} classes they would be too small to read); "
                             "the most confused pairs below give them.")
    pairs = most_confused(counts, classes, TOP_CONFUSED_PAIRS)
    if pairs.empty:
        return figure(matrix) + paragraph("No out-of-fold prediction was wrong."), matrix
    rows = [[r["true"], r["predicted"], r["count"], f"{r['share']:.0%}"]
            for r in pairs.to_dict("records")]
    return (figure(matrix) + "<h3>Most confused pairs</h3>"
            + paragraph(f"The {len(pairs)} most frequent wrong (true class, predicted class) "
                        "pairs of the out-of-fold predictions, most first.")
            + table(["true class", "predicted class", "images", "share of the true class"],
                    rows, text_columns=(0, 1))), matrix


def _bars(ctx: Context, stats: pd.DataFrame) -> Picture:
    shown = list(ctx.grid_classes)
    if len(shown) == len(stats):
        return Picture(name="per_class.png", png=to_png(per_class_bars(stats)),
                       alt="per-class log loss and accuracy", caption="")
    return Picture(name="per_class.png",
                   png=to_png(per_class_bars(stats.iloc[shown].reset_index(drop=True),
                                             rotate=True)),
                   alt=f"log loss and accuracy of the {len(shown)} classes with the highest log "
                       "loss",
                   caption=f"The {len(shown)} of {len(stats)} classes with the highest mean "
                           "out-of-fold log loss, worst first; the table above lists every "
                           "class.")


def predictions_section(ctx: Context) -> tuple[Section, list[Picture]]:
    classes = ctx.data.classes
    counts = confusion(ctx.y_true, ctx.probs.argmax(axis=1), len(classes))
    stats = per_class(ctx.y_true, ctx.probs, classes)
    matrix_html, matrix = _confusion_html(counts, classes)
    bars = _bars(ctx, stats)
    accuracy = float((ctx.probs.argmax(axis=1) == ctx.y_true).mean())
    rows = [[r["class"], r["support"], r["correct"], r["accuracy"], r["precision"],
             r["log_loss"], r["share_of_loss"]] for r in stats.to_dict("records")]
    body = (
        paragraph(f"{len(ctx.y_true)} out-of-fold predictions; accuracy {accuracy:.3f}; "
                  f"log loss {fmt(ctx.data.record.cv_log_loss)}.")
        + matrix_html
        + "<h3>Per class</h3>"
        + table(["class", "support", "correct", "accuracy", "precision", "log loss",
                 "share of total loss"], rows)
        + figure(bars)
    )
    return Section(id=SECTION_IDS[1], title="Confusion matrix and per-class scores",
                   body=body), [matrix, bars]


# ---------------------------------------------------------------- 3. examples


def _grid(ctx: Context, name: str, title: str, rows: list[list[int | None]],
          row_labels: list[str] | None = None) -> tuple[str, Picture | None]:
    shown = [r for line in rows for r in line if r is not None]
    if not shown:
        bounded = row_labels is not None and ctx.grid_note()
        where = f"among the {len(row_labels)} classes shown" if bounded else "in this run"
        return f"<h3>{esc(title)}</h3>" + paragraph(f"No such images {where}."), None
    tiles = [[None if r is None else ctx.tile(r) for r in line] for line in rows]
    picture = Picture(name=name, png=to_png(tile_grid(tiles, row_labels=row_labels)),
                      alt=f"{title}: {ctx.alt(shown)}")
    return f"<h3>{esc(title)}</h3>" + figure(picture), picture


def _by_class(picks: dict[int, tuple[int, ...]], classes: tuple[int, ...], width: int
              ) -> list[list[int | None]]:
    return [[*picks.get(k, ()), *([None] * width)][:width] for k in classes]


def examples_section(ctx: Context, n_per_class: int) -> tuple[Section, list[Picture]]:
    picks, labels = ctx.picks, ctx.grid_labels
    ctx.preload([ctx.oof_path(r) for r in sorted(picks.all_rows())])
    width = 4
    grids = [
        ("examples_random_correct.png", "Random correct predictions",
         [list(picks.random_correct[i:i + width])
          for i in range(0, len(picks.random_correct), width)], None),
        ("examples_random_wrong.png", "Random wrong predictions",
         [list(picks.random_wrong[i:i + width])
          for i in range(0, len(picks.random_wrong), width)], None),
        ("examples_confident_correct.png",
         "Most confident correct predictions per class (rows: true class)",
         _by_class(picks.confident_correct, ctx.grid_classes, n_per_class), labels),
        ("examples_confident_wrong.png",
         "Most confident wrong predictions per class (rows: true class)",
         _by_class(picks.confident_wrong, ctx.grid_classes, n_per_class), labels),
        ("examples_uncertain.png", "Most uncertain predictions (lowest top probability)",
         [list(picks.uncertain[i:i + width]) for i in range(0, len(picks.uncertain), width)],
         None),
    ]
    parts, pictures = [paragraph(
        "Out-of-fold predictions: every image was predicted by the model of the fold that "
        "held it out. Each tile: file, true class, predicted class and its probability "
        "(green: right, red: wrong; a dash: no such image).")], []
    if ctx.grid_note():
        parts.append(paragraph(ctx.grid_note(), kind="note"))
    for name, title, rows, row_labels in grids:
        html, picture = _grid(ctx, name, title, rows, row_labels)
        parts.append(html)
        if picture is not None:
            pictures.append(picture)
    return Section(id=SECTION_IDS[2], title="Examples", body="".join(parts)), pictures
