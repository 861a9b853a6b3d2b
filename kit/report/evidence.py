"""Report sections 4 and 5: does the model look at the fish, and does the data leak the class?

Both lean on the leakage probes (`kit.probes`): the maps are the attention probe's Grad-CAM,
the CAM-in-box verdict is the attention probe's, and the size verdict is the size probe's, so
the report and `python -m kit probe` never disagree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kit.report.analysis import size_by_class
from kit.report.cam import CamUnavailableError, compute_cams
from kit.report.html import Picture, Section, esc, figure, fmt, key_values, paragraph, rich, table
from kit.report.leakage import ProbeFindings
from kit.report.limits import MAX_ANNOTATED_CLASSES
from kit.report.plots import Tile, size_heatmap, tile_grid, to_png
from kit.report.sections import SECTION_IDS, Context, unavailable

MAX_SIZE_ROWS = 25
MAX_PAIRS = 8


# ---------------------------------------------------------------- 4. class activation maps


def _cam_rows(ctx: Context) -> list[list[int | None]]:
    """Per true class of the grids (`ctx.grid_classes`): its most confident right and most
    confident wrong OOF row."""
    picks = ctx.picks
    return [[(picks.confident_correct.get(k) or (None,))[0],
             (picks.confident_wrong.get(k) or (None,))[0]]
            for k in ctx.grid_classes]


def _image_sizes(ctx: Context) -> dict[str, tuple[int, int]]:
    if ctx.table is None:
        return {}
    known = ctx.table.dropna(subset=["width", "height"])
    return {p: (int(w), int(h)) for p, w, h in zip(known["path"], known["width"],
                                                   known["height"], strict=True)}


def _attention(ctx: Context):
    """The attention probe on this run (CAM mass in the fish boxes vs chance), or None."""
    data = ctx.data
    if ctx.table is None or data.competition is None or data.data_root is None:
        return None
    from kit.core.paths import Paths
    from kit.probes.attention_run import run_attention
    from kit.probes.runs import FinishedRun
    from kit.probes.settings import ProbeSettings

    run = FinishedRun(record_file=data.record_path, record=data.record)
    train = ctx.table[ctx.table["split"] == "train"].reset_index(drop=True)
    paths = Paths(work=data.work_dir, submissions=data.record_path.parent.parent)
    return run_attention(run, train, data.competition, data.data_root, paths,
                         settings=ProbeSettings())


def _attention_html(result) -> str:
    if result is None:
        return ""
    if result.status != "measured":
        return paragraph(f"Attention probe {result.verdict()}.", kind="note")
    rows = [[c.label, c.n_images, f"{c.share:.0%}", f"{c.chance:.0%}",
             "n/a" if c.excess is None else f"[{c.excess.low:+.3f}, {c.excess.high:+.3f}]",
             "fish" if c.on_fish else "elsewhere"] for c in result.per_class]
    level = f"{result.excess.level:.0%} " if result.excess is not None else ""
    return (paragraph(
        f"Attention probe over {result.n_images} out-of-fold images with a fish box (map of "
        f"the true class): {result.verdict()}.", kind="alarm" if result.leak else "fine")
        + table(["class", "images", "map mass in box", "box area (chance)",
                 f"{level}interval of the excess", "looks at"], rows, text_columns=(0, 5)))


def cam_section(ctx: Context) -> tuple[Section, list[Picture]]:
    from kit.probes.boxes import mass_inside

    title = "Class activation maps"
    data = ctx.data
    competition = data.competition
    shown = _cam_rows(ctx)
    shown_rows = [r for line in shown for r in line if r is not None]
    try:
        cams = compute_cams(data, shown_rows)
    except CamUnavailableError as error:
        return unavailable(SECTION_IDS[3], title, str(error))
    ctx.preload([ctx.oof_path(r) for r in shown_rows])
    sizes = _image_sizes(ctx)
    tiles: list[list[Tile | None]] = []
    for line in shown:
        cells: list[Tile | None] = []
        for row in line:
            if row is None:
                cells.append(None)
                continue
            path = ctx.oof_path(row)
            boxes = ctx.boxes.get(path, ())
            extra = ""
            if boxes and path in sizes:
                share, chance = mass_inside(cams.map_of(row), boxes, sizes[path])
                if not np.isnan(share):
                    extra = f"\nmap in box {share:.0%} (box {chance:.0%})"
            cells.append(ctx.tile(row, heat=cams.map_of(row), with_boxes=True, extra=extra))
        tiles.append(cells)
    picture = Picture(
        name="cam.png", png=to_png(tile_grid(tiles, row_labels=ctx.grid_labels)),
        alt=f"class activation maps of the predicted class: {ctx.alt(shown_rows)}",
        caption="Rows: true class; left: its most confident right prediction, right: its most "
                "confident wrong one. Heat: Grad-CAM of the predicted class (red: most "
                "evidence; each map scaled to its own maximum); green rectangle: the annotated "
                "fish box." + (" " + ctx.grid_note() if ctx.grid_note() else ""))
    grid = "x".join(str(v) for v in cams.maps.shape[1:])
    parts = [paragraph(
        "Grad-CAM of each image's predicted class, computed by the head of the fold that held "
        f"the image out, over the cached conv features of the plain pass; the coarse {grid} map "
        "is stretched over the whole image.")]
    if competition is None or competition.annotations is None:
        name = competition.name if competition else data.record.competition
        parts.append(paragraph(f"{name} has no bounding-box annotations, so no boxes are drawn "
                               "and the maps cannot be checked against the object.",
                               kind="note"))
    elif not ctx.boxes:
        parts.append(paragraph("No annotation files were found in the dataset's "
                               f"{competition.annotations}/ folder, so no boxes are drawn.",
                               kind="note"))
    else:
        parts.append(_attention_html(_attention(ctx)))
    parts.append(figure(picture))
    return Section(id=SECTION_IDS[3], title=title, body="".join(parts)), [picture]


# ---------------------------------------------------------------- 5. leakage


def _size_result(table_: pd.DataFrame, classes: list[str]):
    """The size probe on an image table."""
    from kit.probes.settings import ProbeSettings
    from kit.probes.size import size_probe

    readable = table_.dropna(subset=["width", "height"])
    train = readable[readable["split"] == "train"]
    tests = {split: (part["width"].to_numpy(np.int64), part["height"].to_numpy(np.int64))
             for split, part in readable[readable["split"] != "train"].groupby("split")}
    return size_probe(train["width"].to_numpy(np.int64), train["height"].to_numpy(np.int64),
                      np.array([classes.index(c) for c in train["label"]]), classes,
                      test_sizes=tests, settings=ProbeSettings())


def size_leak_html(table_: pd.DataFrame, classes: list[str]) -> tuple[str, list[Picture]]:
    """The size part of the leakage section: the size probe's verdict and figures, the
    size-by-class heatmap, and the share of each test split at sizes never seen in training.

    Args:
        table_: The image table (`split`, `label`, `width`, `height`).
        classes: Class names in column order.
    """
    counts = size_by_class(table_, classes)
    annotate = len(classes) <= MAX_ANNOTATED_CLASSES
    notes = [f"Showing the {MAX_SIZE_ROWS} most frequent of {len(counts)} sizes."
             if len(counts) > MAX_SIZE_ROWS else "",
             "" if annotate else f"With {len(classes)} classes the class cells carry no counts "
             f"(above {MAX_ANNOTATED_CLASSES} classes they would be too small to read)."]
    picture = Picture(name="size_by_class.png",
                      png=to_png(size_heatmap(counts, classes, max_rows=MAX_SIZE_ROWS,
                                              annotate=annotate)),
                      alt=f"image size by class heatmap: {len(counts)} sizes",
                      caption=" ".join(n for n in notes if n))
    try:
        size = _size_result(table_, classes)
    except ValueError as error:
        verdict = paragraph(f"The size probe cannot run on these images: {error}", kind="note")
        return "<h3>Image size by class</h3>" + verdict + figure(picture), [picture]
    interval = size.gain_interval
    figures = (f"Mutual information between size and class {size.mutual_information:.3f} nats "
               f"(permutation p = {size.mi_p_value:.3g}); a size-only model scores log loss "
               f"{size.metadata_log_loss:.3f} against {size.prior_log_loss:.3f} for the class "
               f"prior in {size.n_folds}-fold CV, a gain of {size.gain_percent:.1f}% "
               f"({interval.level:.0%} interval of the gain [{interval.low:.3f}, "
               f"{interval.high:.3f}] nats); {size.n_sizes} distinct sizes among {size.n_train} "
               "training images.")
    verdict = paragraph(
        ("The image size leaks the class: a model can score by recognising the camera (the "
         "boat) instead of the fish, and will fail on images from new boats. " if size.leak
         else "No size leak: " + size.verdict() + ". ") + figures,
        kind="alarm" if size.leak else "fine")
    rows = [[s.split, s.n_images, f"{s.unseen_share:.0%}"] for s in size.shift]
    shift = ("<h3>Test images at sizes never seen in training</h3>" + table(
        ["test split", "images", "share at a new size"], rows)) if rows else ""
    return ("<h3>Image size by class</h3>" + verdict + figure(picture) + shift), [picture]


def _pairs_picture(ctx: Context, probe: ProbeFindings) -> Picture | None:
    pairs = probe.duplicates[:MAX_PAIRS]
    if not pairs:
        return None
    ctx.preload([p for pair in pairs for p in (pair.a, pair.b)])
    rows = []
    for pair in pairs:
        distance = "" if pair.distance is None else f"\ndistance {pair.distance:g}"
        rows.append([Tile(image=ctx.thumb(pair.a).image, caption=Path(pair.a).name + distance),
                     Tile(image=ctx.thumb(pair.b).image, caption=Path(pair.b).name)])
    return Picture(name="duplicates.png", png=to_png(tile_grid(rows)),
                   alt="duplicate pairs: " + "; ".join(f"{p.a} and {p.b}" for p in pairs),
                   caption=f"{len(probe.duplicates)} pairs found; the first "
                           f"{len(pairs)} shown side by side.")


def _probe_part(ctx: Context, probe: ProbeFindings | None, probe_dir: Path,
                command: str) -> tuple[str, list[Picture]]:
    head = "<h3>Probe results</h3>"
    if probe is None:
        return head + rich(
            f"No probe has run on this dataset (nothing in <code>{esc(probe_dir)}</code>), so "
            "there are no duplicate pairs, adversarial AUC or group-vs-stratified CV gap to "
            f"show. Run <code>{esc(command)}</code>, then this report again.", kind="note"), []
    if probe.markdown is not None:
        return head + rich(
            f"The probe's report, <code>{esc(probe.source)}</code> (write "
            f"<code>{esc(probe.source.with_name('probe.json'))}</code> with the probe's "
            "<code>--json</code> to see its figures and duplicate pairs here):"
        ) + f"<pre>{esc(probe.markdown)}</pre>", []
    auc = fmt(probe.adversarial_auc, 3)
    if probe.adversarial_interval is not None:
        auc += f" [{probe.adversarial_interval[0]:.3f}, {probe.adversarial_interval[1]:.3f}]"
    items = [("adversarial AUC (0.5: train and test look alike)", auc),
             ("CV log loss of the probe's model, stratified folds", fmt(probe.stratified_cv)),
             ("the same, group folds", fmt(probe.group_cv)),
             ("gap (group minus stratified)", fmt(probe.gap)),
             ("duplicate pairs", len(probe.duplicates))]
    parts = [head, rich(f"From <code>{esc(probe.source)}</code>."), key_values(items)]
    if probe.verdicts:
        parts.append(table(["probe", "verdict"], [[name, text] for name, text
                                                  in probe.verdicts.items()],
                           text_columns=(0, 1)))
    pictures = []
    picture = _pairs_picture(ctx, probe)
    if picture is not None:
        parts += ["<h3>Duplicate pairs</h3>", figure(picture)]
        pictures.append(picture)
    if probe.figures:
        parts += ["<details><summary>All probe figures</summary>",
                  key_values(probe.figures), "</details>"]
    return "".join(parts), pictures


def leakage_section(ctx: Context, probe: ProbeFindings | None, probe_dir: Path,
                    command: str) -> tuple[Section, list[Picture]]:
    if ctx.table is None:
        size_html, size_pictures = paragraph(
            "The image sizes cannot be read: " + ctx.data.missing.get("data", "no image table"),
            kind="note"), []
    else:
        size_html, size_pictures = size_leak_html(ctx.table, ctx.data.classes)
    probe_html, probe_pictures = _probe_part(ctx, probe, probe_dir, command)
    return (Section(id=SECTION_IDS[4], title="Leakage", body=size_html + probe_html),
            size_pictures + probe_pictures)
