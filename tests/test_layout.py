from pathlib import Path

import pandas as pd
import pytest

from kit.competition import load_competition
from kit.data.layout import read_layout, stratified_sample
from tests.conftest import write_jpeg

FISH = load_competition("fisheries")
CATS = load_competition("dogs-vs-cats-redux")


def test_fisheries_layout_reads_both_stages(fish_layout: Path):
    layout = read_layout(FISH, fish_layout)
    assert layout.test_splits == ("test_stg1", "test_stg2")
    assert layout.sample_file.name == "sample_submission_stg2.csv"
    train, test = layout.train, layout.test
    assert len(train) == 16 and set(train["label"]) == set(FISH.classes)
    assert train["path"].iloc[0] == "train/ALB/img_00001.jpg"
    assert list(test["id"]) == ["img_00017.jpg", "img_00018.jpg", "test_stg2/image_00001.jpg"]
    assert test["label"].isna().all()
    assert (layout.table["width"] == 40).all() and (layout.table["height"] == 30).all()


def test_stage1_only_when_stage2_sample_is_absent(fish_layout: Path):
    (fish_layout / "sample_submission_stg2.csv").unlink()
    layout = read_layout(FISH, fish_layout)
    assert layout.test_splits == ("test_stg1",)
    assert len(layout.test) == 2


def test_dogs_vs_cats_layout(cats_layout: Path):
    layout = read_layout(CATS, cats_layout)
    assert sorted(layout.train["label"].value_counts().items()) == [("cat", 3), ("dog", 3)]
    assert list(layout.test["id"]) == ["1", "2"]


def test_sample_that_does_not_match_the_test_folder(cats_layout: Path):
    write_jpeg(cats_layout / "test" / "3.jpg")
    with pytest.raises(ValueError, match=r"does not match the test folders: 1 test images are not "
                                         r"in the sample \(e.g. \['3'\]\)"):
        read_layout(CATS, cats_layout)


def test_bad_label_prefix(cats_layout: Path):
    write_jpeg(cats_layout / "train" / "cow.1.jpg")
    with pytest.raises(ValueError, match="cannot read the label of .*cow.1.jpg"):
        read_layout(CATS, cats_layout)


def test_unknown_class_folder(fish_layout: Path):
    write_jpeg(fish_layout / "train" / "TUNA" / "img_1.jpg")
    with pytest.raises(ValueError, match=r"not classes of fisheries: \['TUNA'\]"):
        read_layout(FISH, fish_layout)


def test_missing_folders(tmp_path: Path):
    with pytest.raises(ValueError, match="does not exist"):
        read_layout(FISH, tmp_path / "nope")
    with pytest.raises(ValueError, match="no usable sample submission"):
        read_layout(FISH, tmp_path)


def test_unreadable_header_gives_missing_size(cats_layout: Path):
    (cats_layout / "train" / "cat.9.jpg").write_bytes(b"")
    table = read_layout(CATS, cats_layout).table
    row = table[table["path"] == "train/cat.9.jpg"].iloc[0]
    assert pd.isna(row["width"]) and pd.isna(row["height"])


def test_stratified_sample(fish_layout: Path):
    train = read_layout(FISH, fish_layout).train
    picked = stratified_sample(train, 8, seed=0)
    assert len(picked) == 8 and set(picked["label"]) == set(FISH.classes)
    assert picked.equals(stratified_sample(train, 8, seed=0))
    with pytest.raises(ValueError, match="--sample 16 is not smaller than the training set"):
        stratified_sample(train, 16, seed=0)
    with pytest.raises(ValueError, match="sample size must be a positive integer"):
        stratified_sample(train, 0, seed=0)
