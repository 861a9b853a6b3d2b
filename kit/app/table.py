"""Stages 1 and 2 of a run: the layout read into the image table, and each file's content digest.

The digest addresses an image's cached features, so a renamed or moved file is not recomputed;
an unreadable file gets a placeholder digest (`missing:<file>`) that no cache holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from kit.competition import Competition
from kit.data.images import UnreadableImageError, file_digest
from kit.data.labels import check_classes
from kit.data.layout import Layout, read_layout, stratified_sample

MISSING = "missing:"


@dataclass(frozen=True, kw_only=True)
class ImageTable:
    """The run's training and test rows (image-table columns), and the layout they came from."""

    layout: Layout
    train: pd.DataFrame
    test: pd.DataFrame


@dataclass(frozen=True, kw_only=True)
class Digests:
    """Content digest of every training and test row, in row order."""

    train: list[str]
    test: list[str]

    def items(self, table: ImageTable) -> list[tuple[str, str]]:
        """`(digest, file)` of every training row, then every test row."""
        return list(zip(self.train + self.test,
                        list(table.train["file"]) + list(table.test["file"]), strict=True))


def read_table(competition: Competition, root: Path, *, sample: int | None, seed: int,
               allow_missing_classes: bool = False) -> ImageTable:
    """The image table of `root`; with `sample`, a stratified subset of train (test stays whole).

    Raises:
        InputError: A class has no training image (unless `allow_missing_classes`), or a
            layout error (`kit.data.layout.read_layout`).
    """
    layout = read_layout(competition, root)
    check_classes(competition, layout.root, list(layout.train["label"]),
                  allow_missing=allow_missing_classes)
    train = layout.train
    if sample is not None:
        train = stratified_sample(train, sample, seed=seed)
    return ImageTable(layout=layout, train=train.reset_index(drop=True),
                      test=layout.test.reset_index(drop=True))


def _digests(files: pd.Series) -> list[str]:
    out = []
    for file in tqdm(files, desc="hashing", unit="img", disable=None, leave=False):
        try:
            out.append(file_digest(Path(file)))
        except UnreadableImageError:
            out.append(f"{MISSING}{file}")
    return out


def hash_images(table: ImageTable) -> Digests:
    """The content digest of every row's file."""
    return Digests(train=_digests(table.train["file"]), test=_digests(table.test["file"]))


def sizes(frame: pd.DataFrame) -> list[tuple[int, int]]:
    """Each row's stored (width, height)."""
    return list(zip(frame["width"].astype(int), frame["height"].astype(int), strict=True))


__all__ = ["Digests", "ImageTable", "hash_images", "read_table", "sizes"]
