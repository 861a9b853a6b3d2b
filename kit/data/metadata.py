"""Image-table columns encoded as a numeric matrix, for the metadata-merge head.

`size` (the default) is the image's stored `width`x`height`, one-hot over the sizes seen in
train: in the fisheries competition it names the boat. A size never seen in train (stage 2's
new boats) encodes as all zeros, which is exactly what a leak-exploiting model meets on new data.
Any other image-table column can be named: numbers are standardised with the train mean and
standard deviation (missing values become 0, the mean), anything else is one-hot over the
train values. The encoding is fitted on train rows only, never on labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kit.core.errors import InputError, UnknownNameError

SIZE = "size"


@dataclass(frozen=True, kw_only=True)
class ColumnCoding:
    """How one column became numbers: `onehot` over `categories`, or `standard` (mean, std)."""

    column: str
    kind: str
    categories: tuple[str, ...] = ()
    mean: float = 0.0
    std: float = 1.0

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "onehot" else 1


@dataclass(frozen=True, kw_only=True)
class MetadataEncoder:
    """A fitted encoding of image-table columns (see the module docstring).

    Example:
        >>> table = pd.DataFrame({"width": [1280, 1280, 1518], "height": [720, 720, 854]})
        >>> encoder = MetadataEncoder.fit(table, ("size",))
        >>> encoder.transform(pd.DataFrame({"width": [1518, 640], "height": [854, 480]})).tolist()
        [[0.0, 1.0], [0.0, 0.0]]
    """

    codings: tuple[ColumnCoding, ...]

    @property
    def width(self) -> int:
        return sum(c.width for c in self.codings)

    @classmethod
    def fit(cls, table: pd.DataFrame, columns: Sequence[str]) -> MetadataEncoder:
        """Fit on the training rows of the image table.

        Raises:
            KeyError: A named column is not in the image table (the message lists them).
            ValueError: No columns were named.
        """
        if not columns:
            raise InputError("metadata needs at least one column, such as ('size',)")
        codings = []
        for column in columns:
            values = _values(table, column)
            numeric = column != SIZE and pd.api.types.is_numeric_dtype(values)
            if numeric:
                data = values.astype(float)
                mean = float(data.mean()) if data.notna().any() else 0.0
                std = float(data.std(ddof=0)) if data.notna().sum() > 1 else 1.0
                codings.append(ColumnCoding(column=column, kind="standard", mean=mean,
                                            std=std if std > 0 else 1.0))
            else:
                categories = tuple(sorted(set(values.astype(str))))
                codings.append(ColumnCoding(column=column, kind="onehot", categories=categories))
        return cls(codings=tuple(codings))

    def transform(self, table: pd.DataFrame) -> np.ndarray:
        """(n, width) float32: the encoded columns side by side, in the fitted order."""
        parts = []
        for coding in self.codings:
            values = _values(table, coding.column)
            if coding.kind == "standard":
                data = ((values.astype(float) - coding.mean) / coding.std).fillna(0.0)
                parts.append(data.to_numpy(np.float32)[:, None])
            else:
                position = {c: i for i, c in enumerate(coding.categories)}
                out = np.zeros((len(table), len(coding.categories)), np.float32)
                for row, value in enumerate(values.astype(str)):
                    if value in position:
                        out[row, position[value]] = 1.0
                parts.append(out)
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(table), 0), np.float32)

    def describe(self) -> str:
        return ", ".join(
            f"{c.column} ({len(c.categories)} values one-hot)" if c.kind == "onehot"
            else f"{c.column} (standardised)" for c in self.codings)


def _values(table: pd.DataFrame, column: str) -> pd.Series:
    if column == SIZE:
        for needed in ("width", "height"):
            if needed not in table.columns:
                raise UnknownNameError(f"metadata column 'size' needs the image table's width and height; "
                               f"the table has {sorted(table.columns)}")
        width = table["width"].astype("Int64").astype(str)
        return (width + "x" + table["height"].astype("Int64").astype(str)).reset_index(drop=True)
    if column not in table.columns:
        raise UnknownNameError(f"metadata column {column!r} is not in the image table; choose from "
                       f"size, {', '.join(sorted(table.columns))}")
    return table[column].reset_index(drop=True)
