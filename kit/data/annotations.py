"""Bounding-box annotations in the community format, and box targets for models.

An annotations folder holds one JSON file per class, ``<class>_labels.json`` in lower case
(``alb_labels.json``, ...; none for classes without fish such as NoF and OTHER). Each file is a
JSON list of records ``{"filename": "img_00003.jpg", "annotations": [...]}`` in pixels of the
image as stored; the filename may carry a path and is matched on its base name.

Two variants circulate under the same file names, and :func:`read_annotations` detects which
one it was given (:attr:`Annotations.kind`):

* ``"rect"``: ``{"class": "rect", "x", "y", "width", "height"}`` per fish;
* ``"point"``: two ``{"class": "point", "x", "y"}`` per fish, head then tail. A pair becomes the
  bounding box of the two points padded on each side by ``point_pad`` times the head-tail
  distance (:func:`box_from_points`); clip it with :meth:`Box.clip` once the image size is known.

This module is the data layer only (numpy, no TensorFlow).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np

from kit.core.errors import DeclarationError, InputError

__all__ = [
    "SUFFIX",
    "Annotations",
    "Box",
    "box_from_points",
    "box_targets",
    "boxes_to_image",
    "iou",
    "read_annotations",
]

SUFFIX = "_labels.json"
KINDS = ("rect", "point")
N_LISTED = 3  # paths named in a one-line description before "..."

Kind = Literal["rect", "point", "none"]

# Why an annotation or record was skipped: key of `Annotations.skipped` -> text of the warning.
_REASONS = MappingProxyType({
    "no_filename": "records without a filename",
    "no_annotations_list": "records whose 'annotations' is not a list",
    "not_a_dict": "annotations that are not JSON objects",
    "other_kind": "annotations of the other variant (rect among points or points among rects)",
    "unknown_class": "annotations whose class is neither 'rect' nor 'point'",
    "bad_coordinates": "annotations with missing or non-numeric coordinates",
    "non_positive": "boxes with a non-positive width or height",
    "leftover_point": "leftover points of records with an odd number of points",
})


@dataclass(frozen=True, kw_only=True)
class Box:
    """An axis-aligned rectangle in image pixels: top-left corner, width and height.

    Coordinates are stored as floats and must be finite; a box may reach outside the image
    (see :meth:`clip`).
    """

    x: float
    y: float
    width: float
    height: float

    def __post_init__(self) -> None:
        for name in ("x", "y", "width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise DeclarationError(f"Box.{name} must be a number of pixels; received "
                                f"{name}={value!r} ({type(value).__name__}).")
            if not math.isfinite(value):
                raise InputError(f"Box.{name} must be finite; received {name}={value!r}.")
            object.__setattr__(self, name, float(value))

    @property
    def area(self) -> float:
        """Width times height, 0 when either is negative."""
        return max(self.width, 0.0) * max(self.height, 0.0)

    def clip(self, width: float, height: float) -> Box | None:
        """The part of the box inside a ``width`` x ``height`` image, or None if nothing is left.

        Raises:
            ValueError: If the image size is not positive.
        """
        _check_size((width, height), "image size")
        x0, y0 = max(self.x, 0.0), max(self.y, 0.0)
        x1, y1 = min(self.x + self.width, float(width)), min(self.y + self.height, float(height))
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(x=x0, y=y0, width=x1 - x0, height=y1 - y0)


def box_from_points(head: tuple[float, float], tail: tuple[float, float], *,
                    pad: float = 0.25) -> Box:
    """The bounding box of a head-tail pair, padded on each side by `pad` x their distance.

    The box is not clipped (the image size may be unknown); a pair of identical points gives an
    empty box (width and height 0).

    Raises:
        ValueError: If `pad` is negative or not finite.
    """
    _check_pad(pad)
    (hx, hy), (tx, ty) = head, tail
    margin = pad * math.hypot(tx - hx, ty - hy)
    x0, y0 = min(hx, tx) - margin, min(hy, ty) - margin
    x1, y1 = max(hx, tx) + margin, max(hy, ty) + margin
    return Box(x=x0, y=y0, width=x1 - x0, height=y1 - y0)


@dataclass(frozen=True, kw_only=True)
class Annotations:
    """The boxes of an annotations folder, matched to training images.

    Attributes:
        kind: ``"rect"`` or ``"point"`` (the variant read), ``"none"`` if no file held a box.
        folder: The folder read.
        files: The ``*_labels.json`` files read, sorted by name.
        boxes: Training path (``train/ALB/img_00003.jpg``) -> all its boxes, in file order.
            Only images with at least one box appear.
        unmatched: Record filenames (as written) that matched no training image, or matched
            several (the base name alone is ambiguous).
        warnings: One line per file and reason for what was skipped, and per file whose name is
            not a class.
        skipped: Reason (``"no_filename"``, ``"not_a_dict"``, ``"other_kind"``,
            ``"unknown_class"``, ``"bad_coordinates"``, ``"non_positive"``,
            ``"leftover_point"``, ``"no_annotations_list"``) -> count over all files.
        classes: The competition's classes.
        train_paths: The training paths the records were matched against.
        point_pad: Padding of point pairs, as a share of the head-tail distance.
    """

    kind: Kind
    folder: Path
    files: tuple[Path, ...]
    boxes: Mapping[str, tuple[Box, ...]]
    unmatched: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    skipped: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    classes: tuple[str, ...] = ()
    train_paths: tuple[str, ...] = field(default=(), repr=False)
    point_pad: float = 0.25

    def largest(self) -> dict[str, Box]:
        """Training path -> its largest box by area (the first one on ties)."""
        return {path: max(boxes, key=lambda box: box.area) for path, boxes in self.boxes.items()}

    def classes_without_file(self, classes: Sequence[str]) -> tuple[str, ...]:
        """The classes of `classes` (in that order) that have no ``<class>_labels.json`` here."""
        with_file = self._file_prefixes()
        return tuple(c for c in _check_names(classes, "classes") if c.lower() not in with_file)

    def without_boxes(self, train_paths: Sequence[str], labels: Sequence[str], *,
                      box_classes: Sequence[str] | None = None) -> list[str]:
        """The training paths of boxed classes that have no box, in the given order.

        Args:
            train_paths: Training paths.
            labels: The class of each path.
            box_classes: Classes expected to have a box on every image; default: the classes
                that have a box file (so NoF and OTHER, which have none, are excluded).

        Raises:
            ValueError: If `train_paths` and `labels` differ in length.
        """
        paths = _check_names(train_paths, "train_paths")
        labels = _check_names(labels, "labels")
        if len(paths) != len(labels):
            raise InputError(f"train_paths and labels must have the same length; received "
                             f"{len(paths)} paths and {len(labels)} labels.")
        expected = (self._file_prefixes() if box_classes is None
                    else {c.lower() for c in _check_names(box_classes, "box_classes")})
        return [p for p, c in zip(paths, labels, strict=True)
                if c.lower() in expected and p not in self.boxes]

    def describe(self, labels: Sequence[str] | None = None) -> str:
        """One line for the user: what was read, coverage, gaps and warnings.

        Args:
            labels: The class of each of :attr:`train_paths`; default: each path's folder name
                when it is a class (``train/ALB/x.jpg`` -> ALB).
        """
        if self.kind == "none":
            found = f"{_count(len(self.files), 'file')} without boxes" if self.files else "none"
            return f"annotations: no boxes in {self.folder} (box files *{SUFFIX}: {found})"
        if labels is None:
            labels = [self._label_of(path) for path in self.train_paths]
        what = ("rect boxes" if self.kind == "rect" else
                f"point boxes (head-tail pairs padded by {self.point_pad:g} of their length)")
        n_boxed = sum(path in self.boxes for path in self.train_paths)
        parts = [f"annotations: {what} from {_count(len(self.files), 'file')}, {n_boxed} of "
                 f"{len(self.train_paths)} train images boxed (largest box used)"]
        missing = self.without_boxes(self.train_paths, labels)
        if missing:
            listed = ", ".join(missing[:N_LISTED]) + (", ..." if len(missing) > N_LISTED else "")
            parts.append(f"{_count(len(missing), 'image')} of boxed classes have no box: {listed}")
        else:
            parts.append("every image of a boxed class has a box")
        if self.unmatched:
            parts.append(f"{_count(len(self.unmatched), 'record')} matched no train image")
        no_file = self.classes_without_file(self.classes)
        if no_file:
            parts.append(f"no box files for {', '.join(no_file)}")
        if self.warnings:
            parts.append(f"{_count(len(self.warnings), 'warning')}")
        return "; ".join(parts)

    def _file_prefixes(self) -> set[str]:
        return {file.name[: -len(SUFFIX)].lower() for file in self.files}

    def _label_of(self, path: str) -> str:
        folder = path.rsplit("/", 2)[-2] if path.count("/") >= 1 else ""
        by_lower = {c.lower(): c for c in self.classes}
        return by_lower.get(folder.lower(), "")


def read_annotations(folder: Path, classes: Sequence[str], train_paths: Sequence[str], *,
                     point_pad: float = 0.25) -> Annotations:
    """Read every ``*_labels.json`` in `folder` and match its records to training images.

    The class of a file is its name's prefix (``alb_labels.json`` -> ALB, case-insensitive).
    A record matches ``train/<CLASS>/<base name>`` when that path is in `train_paths`, else the
    one training path ending in ``/<base name>``; otherwise it is listed in
    :attr:`Annotations.unmatched`. Malformed records and annotations are skipped and counted
    (:attr:`Annotations.skipped`, :attr:`Annotations.warnings`). A missing folder, or one without
    box files, gives ``kind="none"``.

    A file is a rect file if it holds any ``rect`` annotation, a point file if it holds only
    ``point`` annotations; all files of a folder must be of one variant.

    Args:
        folder: The annotations folder.
        classes: The competition's classes.
        train_paths: Data-root-relative training paths (``train/ALB/img_00003.jpg``).
        point_pad: Padding of point pairs on each side, as a share of the head-tail distance.

    Raises:
        ValueError: If `folder` is a file, a box file is not a JSON list, the folder mixes rect
            and point files, or `point_pad` is negative.
        TypeError: If `classes` or `train_paths` is not a sequence of strings.
    """
    folder = Path(folder)
    classes = _check_names(classes, "classes")
    train_paths = _check_names(train_paths, "train_paths")
    _check_pad(point_pad)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"annotations folder {folder} is a file; pass the folder that holds "
                         f"the *{SUFFIX} files.")
    files = tuple(sorted(folder.glob(f"*{SUFFIX}"))) if folder.is_dir() else ()
    loaded = {file: _load(file) for file in files}
    kinds = {file: _file_kind(records) for file, records in loaded.items()}
    kind = _folder_kind(folder, kinds)
    reader = _Reader(classes=classes, train_paths=train_paths, kind=kind, point_pad=point_pad)
    for file, records in loaded.items():
        reader.read_file(file, records)
    return Annotations(
        kind=kind, folder=folder, files=files,
        boxes=MappingProxyType({p: tuple(b) for p, b in sorted(reader.boxes.items())}),
        unmatched=tuple(dict.fromkeys(reader.unmatched)), warnings=tuple(reader.warnings()),
        skipped=MappingProxyType(dict(reader.skipped)), classes=classes,
        train_paths=train_paths, point_pad=float(point_pad),
    )


def box_targets(boxes: Mapping[str, Box], paths: Sequence[str],
                sizes: Sequence[tuple[int, int]],
                input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Box regression targets in the pixels of the model input.

    Each image's box is clipped to its ``(width, height)`` and scaled to `input_size`
    ``(width, height)`` (images are resized, not cropped, to the input).

    Args:
        boxes: Path -> box (e.g. :meth:`Annotations.largest`).
        paths: The images, in row order.
        sizes: Each image's ``(width, height)`` in pixels.
        input_size: The model input's ``(width, height)``.

    Returns:
        ``(targets, mask)``: (n, 4) float32 ``[x, y, width, height]`` (zeros where there is no
        box) and (n,) bool, True where the image has a box inside it.

    Raises:
        ValueError: If `paths` and `sizes` differ in length or a size is not positive.
    """
    paths = _check_names(paths, "paths")
    scale = _scales(sizes, input_size, len(paths), "paths")
    targets = np.zeros((len(paths), 4), np.float32)
    mask = np.zeros(len(paths), dtype=bool)
    for row, (path, (width, height)) in enumerate(zip(paths, sizes, strict=True)):
        box = boxes.get(path)
        clipped = box.clip(width, height) if box is not None else None
        if clipped is not None:
            targets[row] = [clipped.x, clipped.y, clipped.width, clipped.height]
            mask[row] = True
    return (targets * scale).astype(np.float32), mask


def boxes_to_image(pred: np.ndarray, sizes: Sequence[tuple[int, int]],
                   input_size: tuple[int, int]) -> np.ndarray:
    """Boxes in model-input pixels back to each image's pixels (inverse of :func:`box_targets`).

    Args:
        pred: (n, 4) ``[x, y, width, height]`` in pixels of `input_size`.
        sizes: Each image's ``(width, height)``.
        input_size: The model input's ``(width, height)``.

    Returns:
        (n, 4) float32 boxes in image pixels (not clipped).

    Raises:
        ValueError: If `pred` is not (n, 4) with n = len(sizes), or a size is not positive.
    """
    pred = np.asarray(pred, dtype=np.float64)
    if pred.ndim != 2 or pred.shape[1] != 4:
        raise InputError(f"pred must have shape (n, 4) [x, y, width, height]; received shape "
                         f"{pred.shape}.")
    scale = _scales(sizes, input_size, len(pred), "pred rows")
    return (pred / scale).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise intersection over union of ``[x, y, width, height]`` boxes.

    Negative widths and heights count as 0; the IoU is 0 where the union is empty.

    Args:
        a: (..., 4) boxes.
        b: Boxes of the same shape.

    Returns:
        (...) float64 in [0, 1].

    Raises:
        ValueError: If the shapes differ or the last axis is not 4.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim == 0 or a.shape[-1] != 4:
        raise InputError(f"iou needs two arrays of the same shape (..., 4) [x, y, width, "
                         f"height]; received shapes {a.shape} and {b.shape}.")
    aw, ah = np.maximum(a[..., 2], 0), np.maximum(a[..., 3], 0)
    bw, bh = np.maximum(b[..., 2], 0), np.maximum(b[..., 3], 0)
    iw = np.minimum(a[..., 0] + aw, b[..., 0] + bw) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 1] + ah, b[..., 1] + bh) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    union = aw * ah + bw * bh - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.clip(out, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Reading


class _Reader:
    """Accumulates the boxes, unmatched filenames and skip counts of one folder."""

    def __init__(self, *, classes: tuple[str, ...], train_paths: tuple[str, ...], kind: Kind,
                 point_pad: float) -> None:
        self.by_class = {c.lower(): c for c in classes}
        self.classes = classes
        self.known = set(train_paths)
        self.by_name: dict[str, list[str]] = {}
        for path in train_paths:
            self.by_name.setdefault(path.rsplit("/", 1)[-1], []).append(path)
        self.kind = kind
        self.point_pad = point_pad
        self.boxes: dict[str, list[Box]] = {}
        self.unmatched: list[str] = []
        self.skipped: dict[str, int] = {}
        self._notes: dict[tuple[str, str], list[str]] = {}
        self._extra: list[str] = []

    def read_file(self, file: Path, records: list) -> None:
        prefix = file.name[: -len(SUFFIX)]
        label = self.by_class.get(prefix.lower())
        if label is None:
            self._extra.append(
                f"{file.name}: {prefix!r} is not a class ({', '.join(self.classes)}); its "
                f"records were matched by base name only")
        for record in records:
            self._read_record(file, label, record)

    def warnings(self) -> list[str]:
        lines = list(self._extra)
        for (file, reason), examples in self._notes.items():
            named = [e for e in dict.fromkeys(examples) if e][:N_LISTED]
            lines.append(f"{file}: skipped {_REASONS[reason]}: {len(examples)}"
                         + (f" (e.g. {', '.join(named)})" if named else ""))
        return lines

    def _skip(self, file: Path, reason: str, example: str = "") -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self._notes.setdefault((file.name, reason), []).append(example)

    def _match(self, label: str | None, name: str) -> str | None:
        path = f"train/{label}/{name}" if label else None
        if path in self.known:
            return path
        candidates = self.by_name.get(name, [])
        return candidates[0] if len(candidates) == 1 else None

    def _read_record(self, file: Path, label: str | None, record: object) -> None:
        filename = record.get("filename") if isinstance(record, dict) else None
        if not isinstance(filename, str) or not filename.strip():
            self._skip(file, "no_filename")
            return
        items = record.get("annotations", [])
        if not isinstance(items, list):
            self._skip(file, "no_annotations_list", filename)
            return
        path = self._match(label, re.split(r"[\\/]", filename.strip())[-1])
        if path is None:
            self.unmatched.append(filename)
            return
        for box in self._boxes(file, filename, items):
            if box.width > 0 and box.height > 0:
                self.boxes.setdefault(path, []).append(box)
            else:
                self._skip(file, "non_positive", filename)

    def _boxes(self, file: Path, filename: str, items: list) -> list[Box]:
        boxes: list[Box] = []
        points: list[tuple[float, float]] = []
        for item in items:
            if not isinstance(item, dict):
                self._skip(file, "not_a_dict", filename)
                continue
            kind = str(item.get("class", "")).lower()
            if kind not in KINDS:
                self._skip(file, "unknown_class", filename)
            elif kind != self.kind:
                self._skip(file, "other_kind", filename)
            else:
                keys = ("x", "y", "width", "height") if kind == "rect" else ("x", "y")
                values = _numbers(item, keys)
                if values is None:
                    self._skip(file, "bad_coordinates", filename)
                elif kind == "rect":
                    x, y, width, height = values
                    boxes.append(Box(x=x, y=y, width=width, height=height))
                else:
                    points.append((values[0], values[1]))
        if len(points) % 2:
            self._skip(file, "leftover_point", filename)
        boxes += [box_from_points(points[i], points[i + 1], pad=self.point_pad)
                  for i in range(0, len(points) - 1, 2)]
        return boxes


def _load(file: Path) -> list:
    try:
        records = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"box file {file} is not valid JSON ({error}); fix it or remove it "
                         f"from the annotations folder.") from error
    if not isinstance(records, list):
        raise InputError(f"box file {file} must hold a JSON list of records; found a "
                         f"{type(records).__name__}. Fix it or remove it from the annotations "
                         f"folder.")
    return records


def _file_kind(records: list) -> str | None:
    """``"rect"`` if any annotation is a rect, ``"point"`` if any is a point, else None."""
    seen = set()
    for record in records:
        items = record.get("annotations") if isinstance(record, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                seen.add(str(item.get("class", "")).lower())
    return next((kind for kind in KINDS if kind in seen), None)


def _folder_kind(folder: Path, kinds: Mapping[Path, str | None]) -> Kind:
    by_kind = {k: [f.name for f, fk in kinds.items() if fk == k] for k in KINDS}
    if by_kind["rect"] and by_kind["point"]:
        raise InputError(
            f"annotations folder {folder} mixes rect files ({', '.join(by_kind['rect'])}) and "
            f"point files ({', '.join(by_kind['point'])}); keep one variant per folder (move "
            f"the other set to a folder of its own).")
    return next((k for k in KINDS if by_kind[k]), "none")


def _numbers(item: Mapping, keys: Sequence[str]) -> tuple[float, ...] | None:
    values = []
    for key in keys:
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        values.append(number)
    return tuple(values)


# ---------------------------------------------------------------------------------------------
# Checks and small helpers


def _check_names(values: Sequence[str], name: str) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise DeclarationError(f"{name} must be a sequence of strings; received "
                        f"{type(values).__name__} {values!r:.80}.")
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise DeclarationError(f"{name} must hold strings only; received {bad[0]!r} "
                        f"({type(bad[0]).__name__}).")
    return tuple(values)


def _check_pad(pad: float) -> None:
    if isinstance(pad, bool) or not isinstance(pad, Real):
        raise DeclarationError(f"point_pad must be a number (share of the head-tail distance); "
                        f"received point_pad={pad!r}.")
    if not math.isfinite(pad) or pad < 0:
        raise InputError(f"point_pad must be a finite number >= 0 (share of the head-tail "
                         f"distance, default 0.25); received point_pad={pad!r}.")


def _check_size(size: tuple[float, float], name: str) -> None:
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(isinstance(v, bool) or not isinstance(v, Real) or not v > 0 for v in size)):
        raise InputError(f"{name} must be a positive (width, height) in pixels; received "
                         f"{size!r}.")


def _scales(sizes: Sequence[tuple[int, int]], input_size: tuple[int, int], n: int,
            what: str) -> np.ndarray:
    """(n, 4) factors from image pixels to input pixels: ``[sx, sy, sx, sy]`` per row."""
    _check_size(input_size, "input_size")
    if len(sizes) != n:
        raise InputError(f"sizes must give one (width, height) per row; received {len(sizes)} "
                         f"sizes for {n} {what}.")
    for size in sizes:
        _check_size(tuple(size), "each image size")
    wh = np.asarray(sizes, dtype=np.float64).reshape(n, 2)
    factors = np.asarray(input_size, dtype=np.float64) / wh if n else np.zeros((0, 2))
    return np.concatenate([factors, factors], axis=1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
