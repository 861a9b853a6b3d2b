"""kit.data.labels and kit.data.groups: labels and groups read as a competition declares them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.competition import (
    Competition,
    CsvGroups,
    CsvLabels,
    SampleSubmission,
    SubmissionFormat,
    TestSplit,
)
from kit.data.groups import declared_groups
from kit.data.labels import labelled_images
from kit.data.layout import read_layout
from tests.conftest import write_jpeg

BREEDS = ("beagle", "poodle", "pug")
LABELS = CsvLabels(file="labels.csv", id_column="id", label_column="breed",
                   path_template="train/{id}.jpg")


def _dogs(**changes) -> Competition:
    base = Competition(
        name="dogs", slug="dog-breed-identification", title="Dog Breed", classes=BREEDS,
        label_source=LABELS, test_splits=(TestSplit(name="test", folder="test",
                                                      id_template="{stem}"),),
        submission=SubmissionFormat(id_column="id", samples=(
            SampleSubmission(file="sample_submission.csv", splits=("test",)),)))
    return dataclasses.replace(base, **changes)


def _layout(root: Path, rows: list[tuple[str, str]], *, extra: tuple[str, ...] = ()) -> Path:
    for i, (image_id, _) in enumerate(rows):
        write_jpeg(root / "train" / f"{image_id}.jpg", seed=i)
    for image_id in extra:
        write_jpeg(root / "train" / f"{image_id}.jpg", seed=99)
    pd.DataFrame(rows, columns=["id", "breed"]).to_csv(root / "labels.csv", index=False)
    write_jpeg(root / "test" / "t1.jpg", seed=50)
    pd.DataFrame({"id": ["t1"], **{b: [1 / 3] for b in BREEDS}}).to_csv(
        root / "sample_submission.csv", index=False)
    return root


def test_csv_labels_become_the_image_table(tmp_path: Path):
    root = _layout(tmp_path, [("a1", "pug"), ("b2", "beagle"), ("c3", "pug")])
    layout = read_layout(_dogs(), root)
    assert layout.train["label"].tolist() == ["pug", "beagle", "pug"]
    assert layout.train["path"].tolist() == ["train/a1.jpg", "train/b2.jpg", "train/c3.jpg"]
    assert layout.test["id"].tolist() == ["t1"]


@pytest.mark.parametrize("rows,extra,message", [
    ([("a1", "pug"), ("b2", "pugg")], (),
     r"labels.csv row 3: label 'pugg' is not a class of dogs. Did you mean: pug\?"),
    ([("a1", "pug"), ("a1", "beagle")], (),
     r"labels.csv row 3: id 'a1' is listed twice \(first on row 2\)"),
    ([("a1", "pug")], ("zz",),
     r"1 training images in .*train are not in .*labels.csv \(e.g. \['train/zz.jpg'\]\)"),
])
def test_csv_label_errors_name_the_file_row_and_value(tmp_path, rows, extra, message):
    root = _layout(tmp_path, rows, extra=extra)
    with pytest.raises(ValueError, match=message):
        labelled_images(_dogs(), root)


def test_a_row_whose_image_is_missing_is_named(tmp_path: Path):
    root = _layout(tmp_path, [("a1", "pug"), ("b2", "beagle")])
    (root / "train" / "b2.jpg").unlink()
    with pytest.raises(ValueError, match=r"labels.csv row 3: id 'b2' names the image "
                                         r"train/b2.jpg, which does not exist"):
        labelled_images(_dogs(), root)


def test_a_labels_file_without_its_columns_or_at_all(tmp_path: Path):
    root = _layout(tmp_path, [("a1", "pug")])
    pd.DataFrame({"id": ["a1"], "dog": ["pug"]}).to_csv(root / "labels.csv", index=False)
    with pytest.raises(ValueError, match=r"labels file .*labels.csv lacks columns \['breed'\]; "
                                         r"its columns are \['id', 'dog'\]"):
        labelled_images(_dogs(), root)
    (root / "labels.csv").unlink()
    with pytest.raises(FileNotFoundError, match="labels file .*labels.csv does not exist"):
        labelled_images(_dogs(), root)


def test_declarations_are_checked_when_written():
    with pytest.raises(ValueError, match="path_template must name the image through the CSV's "
                                         "columns"):
        CsvLabels(file="l.csv", id_column="id", label_column="y", path_template="train/x.jpg")
    with pytest.raises(ValueError, match=r"fields must be plain column names such as \{id\}; "
                                         r"received \{id\[0\]\}"):
        CsvGroups(file="g.csv", group_column="g", path_template="train/{id[0]}")
    with pytest.raises(ValueError, match="label_source must be one of folder, filename_prefix "
                                         "or a CsvLabels"):
        _dogs(label_source="csv")
    with pytest.raises(ValueError, match="metric must be one of log_loss, accuracy"):
        _dogs(metric="f2")
    with pytest.raises(ValueError, match="metric roc_auc scores two classes"):
        _dogs(metric="roc_auc")
    with pytest.raises(ValueError, match="a label submission .* cannot be scored with metric "
                                         "log_loss"):
        _dogs(submission=SubmissionFormat(id_column="id", kind="label", value_column="breed",
                                          samples=(SampleSubmission(file="s.csv",
                                                                    splits=("test",)),)))


GROUPS = CsvGroups(file="drivers.csv", group_column="subject",
                   path_template="imgs/train/{classname}/{img}")


def test_declared_groups_follow_the_template(tmp_path: Path):
    train = pd.DataFrame({"path": ["imgs/train/c0/a.jpg", "imgs/train/c1/b.jpg"]})
    pd.DataFrame({"subject": ["p1", "p2", "p3"], "classname": ["c0", "c1", "c2"],
                  "img": ["a.jpg", "b.jpg", "z.jpg"]}).to_csv(tmp_path / "drivers.csv",
                                                              index=False)
    competition = _dogs(groups=GROUPS)
    assert declared_groups(competition, tmp_path, train).tolist() == ["p1", "p2"]
    missing = pd.DataFrame({"path": ["imgs/train/c0/a.jpg", "imgs/train/c9/q.jpg"]})
    with pytest.raises(ValueError, match=r"drivers.csv has no row for 1 training images \(e.g. "
                                         r"\['imgs/train/c9/q.jpg'\]\); every training image "
                                         "needs its subject"):
        declared_groups(competition, tmp_path, missing)
    with pytest.raises(ValueError, match="declares no groups"):
        declared_groups(_dogs(), tmp_path, train)
    assert isinstance(declared_groups(competition, tmp_path, train), np.ndarray)
