"""Tests for kit.data.annotations (community box files, point pairs, box targets, IoU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kit.competition import load_competition
from kit.data.annotations import (
    Box,
    box_from_points,
    box_targets,
    boxes_to_image,
    iou,
    read_annotations,
)
from kit.demo.cache import generate_demo
from kit.probes.boxes import Box as ProbeBox
from tests.conftest import FISH

TRAIN = (
    "train/ALB/img_1.jpg", "train/ALB/img_2.jpg", "train/ALB/img_3.jpg",
    "train/BET/img_4.jpg", "train/NoF/img_5.jpg", "train/OTHER/img_6.jpg",
    "train/BET/img_7.jpg", "train/DOL/img_7.jpg",  # the base name img_7.jpg is ambiguous
)


def rect(x: float, y: float, width: float, height: float) -> dict:
    return {"class": "rect", "x": x, "y": y, "width": width, "height": height}


def point(x: float, y: float) -> dict:
    return {"class": "point", "x": x, "y": y}


def write(folder: Path, name: str, records: object) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(records if isinstance(records, str) else json.dumps(records))
    return path


@pytest.fixture
def rect_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "annotations"
    write(folder, "alb_labels.json", [
        {"filename": "../data/fish/train/ALB/img_1.jpg", "class": "image",
         "annotations": [rect(1, 2, 30, 20), rect(5, 5, 10, 10), rect(0, 0, 40, 40)]},
        {"filename": "img_2.jpg", "annotations": [rect(0, 0, 0, 5), "not a dict"]},
        {"annotations": [rect(0, 0, 1, 1)]},  # no filename
        {"filename": "img_404.jpg", "annotations": [rect(0, 0, 1, 1)]},  # no such image
        {"filename": "img_7.jpg", "annotations": [rect(0, 0, 1, 1)]},  # ambiguous
    ])
    write(folder, "BET_labels.json", [  # prefix matched case-insensitively
        {"filename": "C:\\fish\\img_4.jpg", "annotations": [rect(3, 4, 5, 6)]},
    ])
    return folder


def test_box_lives_in_annotations_and_is_reexported_by_the_probe():
    assert ProbeBox is Box
    box = Box(x=1, y=2, width=3, height=4)
    assert box == Box(x=1.0, y=2.0, width=3.0, height=4.0) and isinstance(box.x, float)
    assert box.area == 12.0 and Box(x=0, y=0, width=-3, height=4).area == 0.0
    with pytest.raises(ValueError, match=r"Box.width must be finite; received width=nan"):
        Box(x=0, y=0, width=float("nan"), height=1)
    with pytest.raises(TypeError, match=r"Box.x must be a number of pixels; received x='1'"):
        Box(x="1", y=0, width=1, height=1)


def test_clip_keeps_the_part_inside_the_image():
    assert Box(x=-10, y=5, width=30, height=20).clip(15, 20) == Box(x=0, y=5, width=15,
                                                                       height=15)
    assert Box(x=20, y=0, width=5, height=5).clip(15, 20) is None
    with pytest.raises(ValueError, match=r"image size must be a positive \(width, height\)"):
        Box(x=0, y=0, width=1, height=1).clip(0, 10)


def test_rect_files_are_read_with_paths_in_filenames(rect_folder: Path):
    notes = read_annotations(rect_folder, FISH, TRAIN)
    assert notes.kind == "rect"
    assert [f.name for f in notes.files] == ["BET_labels.json", "alb_labels.json"]
    assert dict(notes.boxes) == {
        "train/ALB/img_1.jpg": (Box(x=1, y=2, width=30, height=20),
                                Box(x=5, y=5, width=10, height=10),
                                Box(x=0, y=0, width=40, height=40)),
        "train/BET/img_4.jpg": (Box(x=3, y=4, width=5, height=6),),
    }
    assert dict(notes.skipped) == {"no_filename": 1, "non_positive": 1, "not_a_dict": 1}
    assert ("alb_labels.json: skipped boxes with a non-positive width or height: 1 "
            "(e.g. img_2.jpg)") in notes.warnings


def test_largest_box_is_chosen_by_area(rect_folder: Path):
    largest = read_annotations(rect_folder, FISH, TRAIN).largest()
    assert largest == {"train/ALB/img_1.jpg": Box(x=0, y=0, width=40, height=40),
                       "train/BET/img_4.jpg": Box(x=3, y=4, width=5, height=6)}


def test_unmatched_and_ambiguous_filenames_are_listed(rect_folder: Path):
    notes = read_annotations(rect_folder, FISH, TRAIN)
    assert notes.unmatched == ("img_404.jpg", "img_7.jpg")
    # In its own class folder the same base name is not ambiguous.
    write(rect_folder, "dol_labels.json",
          [{"filename": "img_7.jpg", "annotations": [rect(0, 0, 2, 2)]}])
    notes = read_annotations(rect_folder, FISH, TRAIN)
    assert notes.boxes["train/DOL/img_7.jpg"] == (Box(x=0, y=0, width=2, height=2),)


def test_point_pairs_become_padded_boxes(tmp_path: Path):
    folder = tmp_path / "points"
    write(folder, "alb_labels.json", [
        # Fish 1: head (100, 50), tail (130, 90): distance 50, pad 0.25 * 50 = 12.5 a side,
        # so x 87.5..142.5 (width 55) and y 37.5..102.5 (height 65).
        # Fish 2: head (10, 10), tail (10, 30): distance 20, pad 5: x 5..15, y 5..35.
        # Then a leftover fifth point.
        {"filename": "img_1.jpg", "annotations": [point(100, 50), point(130, 90),
                                                  point(10, 10), point(10, 30), point(1, 1)]},
        {"filename": "img_2.jpg", "annotations": [point(5, 5), point(5, 5)]},  # empty box
    ])
    notes = read_annotations(folder, FISH, TRAIN)
    assert notes.kind == "point"
    assert notes.boxes == {"train/ALB/img_1.jpg": (Box(x=87.5, y=37.5, width=55, height=65),
                                                   Box(x=5, y=5, width=10, height=30))}
    assert dict(notes.skipped) == {"leftover_point": 1, "non_positive": 1}
    assert notes.warnings[0] == ("alb_labels.json: skipped leftover points of records with "
                                 "an odd number of points: 1 (e.g. img_1.jpg)")
    assert notes.describe().startswith(
        "annotations: point boxes (head-tail pairs padded by 0.25 of their length) from 1 file, "
        "1 of 8 train images boxed (largest box used); 2 images of boxed classes have no box: "
        "train/ALB/img_2.jpg, train/ALB/img_3.jpg; no box files for BET, ")
    # Without padding the box is the two points' bounding box.
    assert read_annotations(folder, FISH, TRAIN, point_pad=0).boxes["train/ALB/img_1.jpg"][0] \
        == Box(x=100, y=50, width=30, height=40)
    assert box_from_points((100, 50), (130, 90), pad=0.5) == Box(x=75, y=25, width=80,
                                                                 height=90)
    with pytest.raises(ValueError, match=r"point_pad must be a finite number >= 0 .* "
                                         r"received point_pad=-0.1"):
        read_annotations(folder, FISH, TRAIN, point_pad=-0.1)


def test_a_folder_mixing_rects_and_points_names_the_files(rect_folder: Path):
    write(rect_folder, "shark_labels.json",
          [{"filename": "img_3.jpg", "annotations": [point(0, 0), point(4, 4)]}])
    with pytest.raises(ValueError, match=r"mixes rect files \(BET_labels.json, "
                                         r"alb_labels.json\) and point files "
                                         r"\(shark_labels.json\); keep one variant"):
        read_annotations(rect_folder, FISH, TRAIN)


def test_a_point_among_rects_is_skipped_not_mixed(tmp_path: Path):
    folder = tmp_path / "annotations"
    write(folder, "alb_labels.json", [{"filename": "img_1.jpg",
                                       "annotations": [rect(1, 1, 2, 2), point(5, 5)]}])
    notes = read_annotations(folder, FISH, TRAIN)
    assert notes.kind == "rect" and dict(notes.skipped) == {"other_kind": 1}


def test_a_file_not_named_after_a_class_is_matched_by_base_name(tmp_path: Path):
    folder = tmp_path / "annotations"
    write(folder, "fish_labels.json", [{"filename": "img_4.jpg", "annotations": [
        rect(1, 1, 2, 2), {"class": "polygon", "x": 0, "y": 0}, rect("a", 0, 1, 1)]}])
    notes = read_annotations(folder, FISH, TRAIN)
    assert notes.boxes == {"train/BET/img_4.jpg": (Box(x=1, y=1, width=2, height=2),)}
    assert dict(notes.skipped) == {"unknown_class": 1, "bad_coordinates": 1}
    assert notes.warnings[0].startswith("fish_labels.json: 'fish' is not a class (ALB, BET,")


def test_bad_files_raise_naming_the_file(tmp_path: Path):
    folder = tmp_path / "annotations"
    write(folder, "bet_labels.json", "{not json")
    with pytest.raises(ValueError, match=r"bet_labels.json is not valid JSON .*fix it or "
                                         r"remove it"):
        read_annotations(folder, FISH, TRAIN)
    write(folder, "bet_labels.json", {"filename": "img_4.jpg"})
    with pytest.raises(ValueError, match=r"bet_labels.json must hold a JSON list of records; "
                                         r"found a dict"):
        read_annotations(folder, FISH, TRAIN)
    with pytest.raises(TypeError, match="train_paths must be a sequence of strings"):
        read_annotations(folder, FISH, "train/ALB/img_1.jpg")


def test_a_missing_folder_has_kind_none(tmp_path: Path):
    notes = read_annotations(tmp_path / "nowhere", FISH, TRAIN)
    assert notes.kind == "none" and notes.files == () and not notes.boxes
    assert notes.describe() == (f"annotations: no boxes in {tmp_path / 'nowhere'} "
                                "(box files *_labels.json: none)")
    assert notes.classes_without_file(["ALB", "NoF"]) == ("ALB", "NoF")


def test_without_boxes_excludes_classes_without_a_file(rect_folder: Path):
    notes = read_annotations(rect_folder, FISH, TRAIN)
    labels = [p.split("/")[1] for p in TRAIN]
    assert notes.classes_without_file(FISH) == ("DOL", "LAG", "NoF", "OTHER", "SHARK", "YFT")
    assert notes.without_boxes(TRAIN, labels) == [
        "train/ALB/img_2.jpg", "train/ALB/img_3.jpg", "train/BET/img_7.jpg"]
    assert notes.without_boxes(TRAIN, labels, box_classes=["nof"]) == ["train/NoF/img_5.jpg"]
    with pytest.raises(ValueError, match="received 8 paths and 1 labels"):
        notes.without_boxes(TRAIN, ["ALB"])


def test_describe_is_one_line_for_the_user(rect_folder: Path):
    notes = read_annotations(rect_folder, FISH, TRAIN)
    assert notes.describe() == (
        "annotations: rect boxes from 2 files, 2 of 8 train images boxed (largest box used); "
        "3 images of boxed classes have no box: train/ALB/img_2.jpg, train/ALB/img_3.jpg, "
        "train/BET/img_7.jpg; 2 records matched no train image; no box files for DOL, LAG, "
        "NoF, OTHER, SHARK, YFT; 3 warnings")


def test_box_targets_scale_to_the_input_and_back():
    boxes = {"a": Box(x=10, y=20, width=40, height=60), "c": Box(x=-10, y=0, width=30, height=5)}
    sizes = [(200, 100), (50, 50), (100, 100)]
    targets, mask = box_targets(boxes, ["a", "b", "c"], sizes, (100, 100))
    assert targets.dtype == np.float32 and mask.tolist() == [True, False, True]
    np.testing.assert_allclose(targets, [[5, 20, 20, 60], [0, 0, 0, 0], [0, 0, 20, 5]])
    back = boxes_to_image(targets, sizes, (100, 100))
    np.testing.assert_allclose(back[mask], [[10, 20, 40, 60], [0, 0, 20, 5]])  # clipped
    with pytest.raises(ValueError, match="received 2 sizes for 3 paths"):
        box_targets(boxes, ["a", "b", "c"], sizes[:2], (100, 100))
    with pytest.raises(ValueError, match=r"pred must have shape \(n, 4\)"):
        boxes_to_image(np.zeros((3, 2)), sizes, (100, 100))


def test_iou_of_known_pairs():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 2, 1], [0, 0, 0, 0], [0, 0, -1, 2]])
    b = np.array([[0, 0, 2, 2], [5, 5, 1, 1], [1, 0, 2, 1], [0, 0, 0, 0], [0, 0, 1, 2]])
    np.testing.assert_allclose(iou(a, b), [1.0, 0.0, 1 / 3, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"received shapes \(2, 4\) and \(1, 4\)"):
        iou(a[:2], b[:1])


_boxes = arrays(np.float64, (5, 4), elements=st.floats(-1e3, 1e3, allow_nan=False))


@given(_boxes, _boxes)
def test_iou_is_symmetric_and_in_unit_interval(a: np.ndarray, b: np.ndarray):
    forward = iou(a, b)
    assert np.array_equal(forward, iou(b, a))
    assert ((forward >= 0) & (forward <= 1)).all()


@given(_boxes)
def test_iou_of_a_box_with_itself_is_one_when_it_has_area(a: np.ndarray):
    has_area = (a[:, 2] > 1e-3) & (a[:, 3] > 1e-3)
    np.testing.assert_allclose(iou(a, a)[has_area], 1.0, rtol=1e-9)


def test_every_boxed_class_image_of_the_demo_has_a_box(tmp_path: Path):
    root = generate_demo(load_competition("fisheries"), tmp_path / "demo", preset="tiny",
                         seed=0)
    train = sorted(p.relative_to(root).as_posix() for p in (root / "train").glob("*/*.jpg"))
    notes = read_annotations(root / "annotations", FISH, train)
    labels = [p.split("/")[1] for p in train]
    assert notes.kind == "rect" and len(notes.files) == 6
    assert notes.classes_without_file(FISH) == ("NoF", "OTHER")
    assert notes.without_boxes(train, labels) == []
    assert not notes.unmatched and not notes.warnings
    assert set(notes.boxes) == {p for p, c in zip(train, labels, strict=True)
                                if c not in ("NoF", "OTHER")}
