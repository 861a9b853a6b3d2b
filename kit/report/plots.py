"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, so no
global figure state and no display needed). Each function returns a `Figure`; :func:`to_png`
renders it."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kit.report.analysis import normalise_rows, smooth
from kit.report.data import FoldHistory

DPI = 90
RIGHT = "#1a7f37"
WRONG = "#c62828"
NEUTRAL = "#333333"
TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"
# Heat maps of many classes (no cell numbers): one cell per class per this many inches, with
# tick labels this small (points), so each class name still sits beside its own row.
SMALL_CELL_INCHES = 0.12
SMALL_FONT = 5


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def to_png(figure) -> bytes:
    """Render a figure as PNG bytes on the Agg canvas and release it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    figure.clear()
    return buffer.getvalue()


# ---------------------------------------------------------------- learning curves


def learning_curves(histories: Sequence[FoldHistory], smoothing: float):
    """One row per (seed, fold): loss and accuracy per epoch, train and validation, raw (thin)
    and smoothed (thick); the epoch whose weights were kept is marked."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(10.0, 2.4 * max(1, len(histories)))
    axes = fig.subplots(max(1, len(histories)), 2, squeeze=False)
    for row, item in zip(axes, histories, strict=False):
        for ax, metric in zip(row, ("loss", "accuracy"), strict=True):
            for key, colour, label in ((metric, TRAIN_COLOUR, "train"),
                                       (f"val_{metric}", VAL_COLOUR, "validation")):
                values = item.history.get(key)
                if not values:
                    continue
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, color=colour, alpha=0.3, linewidth=1)
                ax.plot(epochs, smooth(values, smoothing), color=colour, linewidth=2,
                        label=f"{label} (smoothed {smoothing:g})")
            if item.best_epoch:
                ax.axvline(item.best_epoch, color=NEUTRAL, linestyle=":", linewidth=1,
                           label=f"kept epoch {item.best_epoch}")
            ax.set_title(f"seed {item.seed} fold {item.fold}: {metric}", fontsize=10)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper right" if metric == "loss" else "lower right")
    return fig


# ---------------------------------------------------------------- confusion and classes


def _matrix(ax, values: np.ndarray, labels: list[str], *, fmt: str | None, title: str,
            cmap: str = "Blues", xlabels: list[str] | None = None, vmax: float | None = None,
            fontsize: float = 9):
    """A heat map with class ticks; a number in each cell unless `fmt` is None."""
    ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
    xlabels = labels if xlabels is None else xlabels
    ax.set_xticks(range(len(xlabels)), xlabels, rotation=45 if fmt else 90,
                  ha="right" if fmt else "center", fontsize=fontsize)
    ax.set_yticks(range(len(labels)), labels, fontsize=fontsize)
    top = vmax if vmax is not None else (values.max() if values.size else 0)
    if fmt is not None:
        for (i, j), value in np.ndenumerate(values):
            colour = "white" if top and value > 0.6 * top else "black"
            ax.text(j, i, format(value, fmt), ha="center", va="center", fontsize=8.5,
                    color=colour)
    ax.set_title(title, fontsize=10)


def confusion_matrices(counts: np.ndarray, classes: list[str]):
    """Counts and row-normalised confusion matrices side by side (rows: true class)."""
    size = 2.5 + 0.45 * len(classes)
    fig = _figure(2 * size + 0.5, size)
    left, right = fig.subplots(1, 2)
    _matrix(left, counts, classes, fmt="d", title="counts")
    _matrix(right, normalise_rows(counts), classes, fmt=".2f", vmax=1.0,
            title="share of each true class")
    for ax in (left, right):
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
    return fig


def confusion_heatmap(counts: np.ndarray, classes: list[str]):
    """The row-normalised confusion matrix of many classes: colours only, no cell numbers
    (rows: true class), in small cells so the figure stays a screen or two wide."""
    size = 2.5 + SMALL_CELL_INCHES * len(classes)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots(1, 1)
    _matrix(ax, normalise_rows(counts), classes, fmt=None, vmax=1.0, fontsize=SMALL_FONT,
            title="share of each true class (colour only; most confused pairs in the table)")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(ax.images[0], ax=ax, shrink=0.5)
    return fig


def per_class_bars(table: pd.DataFrame, *, rotate: bool = False):
    """Per class: mean OOF log loss and accuracy, with the support in the tick labels
    (`rotate`: vertical tick labels, for many or long class names)."""
    fig = _figure(10.0, 5.0 if rotate else 3.0)
    left, right = fig.subplots(1, 2)
    sep = " " if rotate else "\n"
    names = [f"{c}{sep}(n={s})" for c, s in zip(table["class"], table["support"], strict=True)]
    x = np.arange(len(table))
    left.bar(x, table["log_loss"].fillna(0.0), color=WRONG)
    left.set_title("mean log loss (lower is better)", fontsize=10)
    right.bar(x, table["accuracy"].fillna(0.0), color=RIGHT)
    right.set_ylim(0, 1)
    right.set_title("accuracy", fontsize=10)
    for ax in (left, right):
        ax.set_xticks(x, names, fontsize=7, rotation=90 if rotate else 0)
        ax.grid(axis="y", alpha=0.3)
    return fig


# ---------------------------------------------------------------- image tiles


@dataclass(frozen=True, kw_only=True)
class Tile:
    """One image in a grid: the pixels, a caption, whether it was right (caption colour), an
    optional heat map stretched over the image, and boxes in the image's pixels."""

    image: np.ndarray
    caption: str
    right: bool | None = None
    heat: np.ndarray | None = None
    boxes: tuple[tuple[float, float, float, float], ...] = ()


def heat_overlay(heat: np.ndarray, *, side: int = 64, opacity: float = 0.65) -> np.ndarray:
    """An RGBA image of a [0, 1] map: jet colours, transparent where the map is low, so the
    image stays visible outside the evidence. The map is first upsampled smoothly."""
    from matplotlib import colormaps

    from kit.data.images import resize

    fine = np.clip(resize(np.ascontiguousarray(heat, dtype=np.float32), (side, side)), 0, 1)
    rgba = colormaps["jet"](fine)
    rgba[..., 3] = opacity * fine
    return rgba


def tile_grid(rows: Sequence[Sequence[Tile | None]], *, row_labels: Sequence[str] | None = None,
              tile_inches: float = 2.3):
    """A grid of image tiles; `None` leaves an empty cell (with a dash)."""
    from matplotlib.patches import Rectangle

    n_rows = max(1, len(rows))
    n_cols = max(1, max((len(r) for r in rows), default=1))
    fig = _figure(tile_inches * n_cols + (0.6 if row_labels else 0), tile_inches * 0.95 * n_rows)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, ax_row in enumerate(axes):
        cells = rows[i] if i < len(rows) else []
        for j, ax in enumerate(ax_row):
            ax.set_xticks([])
            ax.set_yticks([])
            tile = cells[j] if j < len(cells) else None
            if j == 0 and row_labels:
                ax.set_ylabel(row_labels[i], fontsize=10, rotation=0, ha="right", va="center")
            if tile is None:
                ax.text(0.5, 0.5, "-", ha="center", va="center", fontsize=14, color="#999999")
                for spine in ax.spines.values():
                    spine.set_visible(False)
                continue
            h, w = tile.image.shape[:2]
            ax.imshow(tile.image, extent=(0, w, h, 0), interpolation="bilinear")
            if tile.heat is not None:
                ax.imshow(heat_overlay(tile.heat), extent=(0, w, h, 0), interpolation="bilinear")
            for x, y, bw, bh in tile.boxes:
                ax.add_patch(Rectangle((x, y), bw, bh, fill=False, edgecolor="#00ff66",
                                       linewidth=1.8))
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            colour = NEUTRAL if tile.right is None else (RIGHT if tile.right else WRONG)
            ax.set_title(tile.caption, fontsize=8, color=colour)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(2)
    return fig


# ---------------------------------------------------------------- leakage


def size_heatmap(counts: pd.DataFrame, classes: list[str], *, max_rows: int = 25,
                 annotate: bool = True):
    """Image sizes (rows) by class, as each size's class mix; test splits' counts beside.

    `annotate=False` (many classes) leaves the class cells without their counts and draws them
    narrow; the few test-split columns keep theirs."""
    shown = counts.head(max_rows)
    class_part = shown[[c for c in classes if c in shown.columns]].to_numpy()
    split_cols = [c for c in shown.columns if c not in classes]
    height = 1.5 + 0.32 * len(shown)
    cell = 0.7 if annotate else SMALL_CELL_INCHES
    widths = [cell * max(1, len(classes)), 0.7 * max(1, len(split_cols))]
    width_ratios = widths if split_cols else [1]
    fig = _figure(3.0 + cell * len(classes) + 0.7 * len(split_cols), height)
    axes = fig.subplots(1, len(width_ratios), squeeze=False,
                        gridspec_kw={"width_ratios": width_ratios})[0]
    mix = normalise_rows(class_part)
    axes[0].imshow(mix, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    axes[0].set_yticks(range(len(shown)), list(shown.index), fontsize=8)
    if annotate:
        axes[0].set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
        for (i, j), value in np.ndenumerate(class_part):
            if value:
                axes[0].text(j, i, str(value), ha="center", va="center", fontsize=7,
                             color="white" if mix[i, j] > 0.6 else "black")
    else:
        axes[0].set_xticks(range(len(classes)), classes, rotation=90, fontsize=SMALL_FONT)
    axes[0].set_title("training images per size and class\n(colour: share of the size's images)",
                      fontsize=9)
    axes[0].set_ylabel("image size (WxH)")
    if split_cols:
        test_part = shown[split_cols].to_numpy()
        axes[1].imshow(test_part > 0, cmap="Greys", vmin=0, vmax=3, aspect="auto")
        axes[1].set_xticks(range(len(split_cols)), split_cols, rotation=45, ha="right",
                           fontsize=8)
        axes[1].set_yticks([])
        for (i, j), value in np.ndenumerate(test_part):
            if value:
                axes[1].text(j, i, str(value), ha="center", va="center", fontsize=7)
        axes[1].set_title("test images\nper size", fontsize=9)
    return fig
