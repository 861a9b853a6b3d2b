"""Where a competition's labels and groups come from, as declarations.

Labels: `"folder"` (`train/<CLASS>/*.jpg`), `"filename_prefix"` (`train/cat.1.jpg`), or a CSV
(`CsvLabels`: Dog Breed Identification's `labels.csv`, `id,breed`). Groups (which person, boat or
camera an image shows): a CSV (`CsvGroups`: State Farm's `driver_imgs_list.csv`,
`subject,classname,img`). A CSV names its image by a `path_template`, formatted with the row's
columns and read relative to the data root.

Example:
    >>> CsvLabels(file="labels.csv", id_column="id", label_column="breed",
    ...           path_template="train/{id}.jpg").template_columns
    ('id',)
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from kit.core.errors import InputError

LABEL_SOURCES = ("folder", "filename_prefix")


def template_columns(template: str, *, field: str) -> tuple[str, ...]:
    """The CSV columns a path template reads, checked to be plain `{name}` fields.

    Raises:
        InputError: The template reads no column, or uses indexing, attributes or formats.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise InputError(f"{field} {template!r} is not a format template: {error}") from error
    names = [name for _, name, spec, conv in parsed if name is not None]
    if not names:
        raise InputError(f"{field} must name the image through the CSV's columns, such as "
                         f"'train/{{id}}.jpg'; received {field}={template!r}")
    for _, name, spec, conv in parsed:
        if name is not None and (not name.isidentifier() or spec or conv):
            raise InputError(f"{field} fields must be plain column names such as {{id}}; "
                             f"received {{{name}}} in {template!r}")
    return tuple(dict.fromkeys(names))


def _check_names(owner: str, **values: str) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{owner} {name} must be a non-empty string; received "
                             f"{name}={value!r}")


@dataclass(frozen=True, kw_only=True)
class CsvLabels:
    """Labels from a CSV: one row per training image.

    Args:
        file: the CSV, relative to the data root (`labels.csv`).
        id_column: the column that names each image uniquely (`id`).
        label_column: the column holding its class (`breed`).
        path_template: the image's path relative to the data root, formatted with the row's
            columns (`train/{id}.jpg`).
    """

    file: str
    id_column: str
    label_column: str
    path_template: str

    def __post_init__(self) -> None:
        _check_names("CsvLabels", file=self.file, id_column=self.id_column,
                     label_column=self.label_column, path_template=self.path_template)
        template_columns(self.path_template, field="CsvLabels path_template")

    @property
    def template_columns(self) -> tuple[str, ...]:
        return template_columns(self.path_template, field="CsvLabels path_template")


@dataclass(frozen=True, kw_only=True)
class CsvGroups:
    """Groups from a CSV: the person, boat or camera of each training image.

    Args:
        file: the CSV, relative to the data root (`driver_imgs_list.csv`).
        group_column: the column holding the group (`subject`).
        path_template: the image's path relative to the data root, formatted with the row's
            columns (`imgs/train/{classname}/{img}`).
    """

    file: str
    group_column: str
    path_template: str

    def __post_init__(self) -> None:
        _check_names("CsvGroups", file=self.file, group_column=self.group_column,
                     path_template=self.path_template)
        template_columns(self.path_template, field="CsvGroups path_template")

    @property
    def template_columns(self) -> tuple[str, ...]:
        return template_columns(self.path_template, field="CsvGroups path_template")


__all__ = ["LABEL_SOURCES", "CsvGroups", "CsvLabels", "template_columns"]
