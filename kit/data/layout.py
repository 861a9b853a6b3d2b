"""Read a competition's Kaggle layout into the image table.

The image table is one pandas DataFrame, one row per image, with columns:
`path` (posix path relative to the data root), `file` (absolute path), `split` (`train` or a
test split name), `label` (class name; missing for test), `id` (submission id for test rows,
`path` for train rows), `width`, `height` (header-only; missing when the header is unreadable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kit.competition import Competition, SampleSubmission
from kit.core.errors import InputError
from kit.data.images import UnreadableImageError, image_size
from kit.data.labels import images_in, labelled_images

TRAIN = "train"
COLUMNS = ("path", "file", "split", "label", "id", "width", "height")


@dataclass(frozen=True, kw_only=True)
class Layout:
    """A dataset on disk: its image table and the sample submission its test rows match."""

    root: Path
    table: pd.DataFrame
    sample: pd.DataFrame
    sample_file: Path
    test_splits: tuple[str, ...]

    @property
    def train(self) -> pd.DataFrame:
        return self.table[self.table["split"] == TRAIN]

    @property
    def test(self) -> pd.DataFrame:
        return self.table[self.table["split"] != TRAIN]


def _train_rows(competition: Competition, root: Path) -> list[dict]:
    rows = labelled_images(competition, root)
    for row in rows:
        row.update(split=TRAIN, id=row["path"].relative_to(root).as_posix())
    return rows


def _test_rows(competition: Competition, root: Path, splits: tuple[str, ...]) -> list[dict]:
    rows = []
    for name in splits:
        split = competition.split(name)
        folder = root / split.folder
        for path in images_in(folder, competition.image_suffixes):
            rows.append(
                {"path": path, "label": None, "split": name, "id": split.submission_id(path.name)}
            )
    return rows


def _choose_sample(competition: Competition, root: Path) -> SampleSubmission:
    for sample in competition.submission.samples:
        folders_exist = all(
            (root / competition.split(s).folder).is_dir() for s in sample.splits
        )
        if (root / sample.file).is_file() and folders_exist:
            return sample
    wanted = "; ".join(
        f"{s.file} with folders {', '.join(competition.split(n).folder + '/' for n in s.splits)}"
        for s in competition.submission.samples
    )
    raise InputError(f"no usable sample submission in {root}: expected {wanted}")


def read_sample_submission(path: Path, id_column: str) -> pd.DataFrame:
    try:
        sample = pd.read_csv(path, dtype={id_column: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read sample submission {path}: {error}") from error
    if id_column not in sample.columns:
        raise InputError(
            f"sample submission {path} has no {id_column!r} column; columns: {list(sample.columns)}"
        )
    return sample


def _check_sample_matches(sample: pd.DataFrame, sample_file: Path, test: pd.DataFrame,
                          id_column: str) -> None:
    sample_ids = set(sample[id_column].astype(str))
    image_ids = set(test["id"])
    missing = sorted(sample_ids - image_ids)
    extra = sorted(image_ids - sample_ids)
    if missing or extra or len(sample) != len(test):
        parts = []
        if missing:
            parts.append(f"{len(missing)} sample ids have no test image (e.g. {missing[:3]})")
        if extra:
            parts.append(f"{len(extra)} test images are not in the sample (e.g. {extra[:3]})")
        if len(sample) != len(test):
            parts.append(f"{len(sample)} sample rows vs. {len(test)} test images")
        raise InputError(
            f"sample submission {sample_file} does not match the test folders: "
            f"{'; '.join(parts)}. Use the sample submission that came with these test images."
        )


def _add_sizes(table: pd.DataFrame) -> pd.DataFrame:
    widths, heights = [], []
    for file in table["file"]:
        try:
            width, height = image_size(Path(file))
        except UnreadableImageError:
            width, height = None, None
        widths.append(width)
        heights.append(height)
    table["width"] = pd.array(widths, dtype="Int64")
    table["height"] = pd.array(heights, dtype="Int64")
    return table


def read_layout(competition: Competition, root: Path) -> Layout:
    """Read a dataset in the competition's Kaggle layout.

    Raises:
        ValueError: the folder is missing, has no training images, has no usable sample
            submission, or the sample does not match the test images.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise InputError(f"data folder {root} does not exist")
    chosen = _choose_sample(competition, root)
    rows = _train_rows(competition, root) + _test_rows(competition, root, chosen.splits)
    table = pd.DataFrame(rows)
    table["file"] = [str(p) for p in table["path"]]
    table["path"] = [p.relative_to(root).as_posix() for p in table["path"]]
    table["label"] = table["label"].astype(object).where(table["label"].notna(), None)
    table = _add_sizes(table.reset_index(drop=True))[list(COLUMNS)]
    sample_file = root / chosen.file
    sample = read_sample_submission(sample_file, competition.submission.id_column)
    _check_sample_matches(sample, sample_file, table[table["split"] != TRAIN],
                          competition.submission.id_column)
    return Layout(root=root, table=table, sample=sample, sample_file=sample_file,
                  test_splits=chosen.splits)


def stratified_sample(train: pd.DataFrame, n: int, *, seed: int) -> pd.DataFrame:
    """A stratified random subset of `n` training rows (the lessons' "sample" folder, no copy).

    Every class keeps at least one image where `n` allows; proportions follow the full set.
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise InputError(f"sample size must be a positive integer; received sample={n!r}")
    if n >= len(train):
        raise InputError(
            f"--sample {n} is not smaller than the training set ({len(train)} images); "
            "drop --sample to use all of it"
        )
    from sklearn.model_selection import train_test_split

    try:
        picked, _ = train_test_split(
            train, train_size=n, stratify=train["label"], random_state=seed
        )
    except ValueError as error:
        raise InputError(
            f"cannot draw a stratified sample of {n} from {len(train)} images: {error}. "
            "Use a larger --sample."
        ) from error
    return picked.sort_index()
