"""The training images of a competition and their labels, read the way it declares them.

`folder`: `train/<CLASS>/*.jpg`; `filename_prefix`: `train/cat.1.jpg`; `CsvLabels`: a CSV with
one row per training image (Dog Breed Identification's `labels.csv`). A CSV is checked row by
row, and every error names the file, the row (its line in the file) and the value: an image the
row names that does not exist, a training image no row names, a label that is not a class, an
id listed twice.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd

from kit.competition import Competition, CsvLabels
from kit.core.errors import InputError, MissingFileError


def images_in(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The image files directly in `folder`, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def read_csv(path: Path, *, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """A declared CSV, every value as text, with the columns it must have.

    Raises:
        MissingFileError: The file does not exist.
        InputError: It cannot be parsed or lacks a column (the columns it has are named).
    """
    if not path.is_file():
        raise MissingFileError(f"{what} {path} does not exist: the competition declares it "
                               "(check --data, or the download)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {what} {path}: {error}") from error
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} {path} lacks columns {missing}; its columns are "
                         f"{list(frame.columns)}")
    return frame


def _folder_rows(competition: Competition, folder: Path) -> list[dict]:
    unknown = sorted(p.name for p in folder.iterdir()
                     if p.is_dir() and p.name not in competition.classes)
    if unknown:
        raise InputError(
            f"{folder} holds folders that are not classes of {competition.name}: {unknown}; "
            f"expected one folder per class: {', '.join(competition.classes)}"
        )
    return [{"path": path, "label": label} for label in competition.classes
            if (folder / label).is_dir()
            for path in images_in(folder / label, competition.image_suffixes)]


def _prefix_rows(competition: Competition, folder: Path) -> list[dict]:
    rows = []
    for path in images_in(folder, competition.image_suffixes):
        prefix = path.name.split(".", 1)[0]
        if prefix not in competition.classes:
            raise InputError(
                f"cannot read the label of {path}: its name must start with one of "
                f"{', '.join(f'{c}.' for c in competition.classes)} (e.g. cat.1.jpg)"
            )
        rows.append({"path": path, "label": prefix})
    return rows


def _not_a_class(label: str, competition: Competition) -> str:
    close = difflib.get_close_matches(label, competition.classes, n=3)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def _csv_row(source: CsvLabels, row: pd.Series, line: int, root: Path, file: Path,
             competition: Competition) -> dict:
    label = row[source.label_column]
    if label not in competition.classes:
        raise InputError(f"{file} row {line}: label {label!r} is not a class of "
                         f"{competition.name}.{_not_a_class(label, competition)}")
    path = root / source.path_template.format(**row.to_dict())
    if not path.is_file():
        raise InputError(f"{file} row {line}: {source.id_column} {row[source.id_column]!r} "
                         f"names the image {path.relative_to(root).as_posix()}, which does "
                         "not exist")
    return {"path": path, "label": label}


def _csv_rows(competition: Competition, root: Path, folder: Path) -> list[dict]:
    source = competition.label_source
    file = root / source.file
    frame = read_csv(file, columns=(source.id_column, source.label_column,
                                    *source.template_columns), what="labels file")
    seen: dict[str, int] = {}
    rows = []
    for index, row in frame.iterrows():
        line = int(index) + 2  # the header is line 1
        key = row[source.id_column]
        if key in seen:
            raise InputError(f"{file} row {line}: {source.id_column} {key!r} is listed twice "
                             f"(first on row {seen[key]})")
        seen[key] = line
        rows.append(_csv_row(source, row, line, root, file, competition))
    listed = {r["path"].resolve() for r in rows}
    unlisted = [p for p in images_in(folder, competition.image_suffixes)
                if p.resolve() not in listed]
    if unlisted:
        names = [p.relative_to(root).as_posix() for p in unlisted[:3]]
        raise InputError(f"{len(unlisted)} training images in {folder} are not in {file} "
                         f"(e.g. {names}); every training image needs a row with its label")
    return rows


def labelled_images(competition: Competition, root: Path) -> list[dict]:
    """`{path, label}` of every training image, in a stable order.

    Raises:
        InputError: No training folder or images, a folder or file name that is not a class,
            or a labels CSV error (file, row and value named).
    """
    folder = root / competition.train_folder
    if not folder.is_dir():
        raise InputError(
            f"no {competition.train_folder}/ folder in {root}: expected the Kaggle layout of "
            f"{competition.name} there"
        )
    source = competition.label_source
    if isinstance(source, CsvLabels):
        rows = _csv_rows(competition, root, folder)
    elif source == "folder":
        rows = _folder_rows(competition, folder)
    else:
        rows = _prefix_rows(competition, folder)
    if not rows:
        raise InputError(f"no training images found under {folder}")
    return rows


def missing_classes(competition: Competition, labels: list[str]) -> list[str]:
    """The classes no training image has, in class order."""
    present = set(labels)
    return [c for c in competition.classes if c not in present]


def check_classes(competition: Competition, root: Path, labels: list[str], *,
                  allow_missing: bool) -> list[str]:
    """The classes without training images; an error unless `allow_missing`.

    Raises:
        InputError: Naming each class without images (its folder, for folder labels) and the
            option that accepts them.
    """
    missing = missing_classes(competition, labels)
    if not missing or allow_missing:
        return missing
    if competition.label_source == "folder":
        where = ", ".join(f"{competition.train_folder}/{c}/" for c in missing)
        what = f"{where} {'is' if len(missing) == 1 else 'are'} empty or missing"
    else:
        what = f"no training image is labelled {', '.join(missing)}"
    raise InputError(
        f"classes {missing} of {competition.name} have no training images in {root} ({what}); "
        "the submission would have a column no image supports. Add the images, or pass "
        "--allow-missing-classes to predict those classes' smoothed prior"
    )


__all__ = ["check_classes", "images_in", "labelled_images", "missing_classes", "read_csv"]
