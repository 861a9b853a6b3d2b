from pathlib import Path

import pytest

from kit.competition import (
    Competition,
    SampleSubmission,
    SubmissionFormat,
    TestSplit,
    load_competition,
)
from tests.conftest import REPO


def test_fisheries_declaration_loads_by_path_and_name():
    by_path = load_competition(REPO / "competitions" / "fisheries")
    by_name = load_competition("fisheries")
    assert by_path == by_name
    assert by_path.classes == ("ALB", "BET", "DOL", "LAG", "NoF", "OTHER", "SHARK", "YFT")
    assert by_path.submission_columns() == by_path.classes
    assert by_path.split("test_stg2").submission_id("image_00001.jpg") == (
        "test_stg2/image_00001.jpg"
    )


def test_dogs_vs_cats_declaration():
    comp = load_competition("dogs-vs-cats-redux")
    assert comp.classes == ("cat", "dog")
    assert comp.submission_columns() == ("label",)
    assert comp.split("test").submission_id("12.jpg") == "12"


def test_unknown_competition_suggests_close_match():
    with pytest.raises(ValueError, match="unknown competition 'fisheris'.*Did you mean: fisheries"):
        load_competition("fisheris")


def test_folder_without_declaration(tmp_path: Path):
    with pytest.raises(ValueError, match="has no competition.py"):
        load_competition(tmp_path)


def test_declaration_must_define_competition(tmp_path: Path):
    (tmp_path / "competition.py").write_text("X = 1\n")
    with pytest.raises(TypeError, match="must define COMPETITION"):
        load_competition(tmp_path)


def _format(**kw):
    return SubmissionFormat(id_column="id", samples=(SampleSubmission(file="s.csv",
                                                                      splits=("test",)),), **kw)


def test_bad_declarations_are_rejected():
    split = (TestSplit(name="test", folder="test"),)
    with pytest.raises(ValueError, match="label_source must be one of folder, filename_prefix"):
        Competition(name="x", slug="x", title="x", classes=("a", "b"), label_source="csv",
                    test_splits=split, submission=_format())
    with pytest.raises(ValueError, match="at least two distinct"):
        Competition(name="x", slug="x", title="x", classes=("a", "a"), label_source="folder",
                    test_splits=split, submission=_format())
    with pytest.raises(ValueError, match="submission kind must be one of"):
        _format(kind="ranked")
    with pytest.raises(ValueError, match="needs value_column and positive_class"):
        _format(kind="positive_class")


def test_recipe_box_fields_are_validated():
    from kit.competition import Recipe

    assert Recipe().box_variants == 2 and Recipe().box_input_size is None
    assert Recipe().box_loss_weight == 1.0  # 1 - GIoU: the same weight at every input size
    for bad in (0, 9, 2.5, True):
        with pytest.raises(ValueError, match=r"box_variants must be an integer from 1 to 8 \(the "
                                             r"first views of plain, hflip, crop_tl"):
            Recipe(box_variants=bad)
