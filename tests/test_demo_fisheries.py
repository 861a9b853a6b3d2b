"""Tests for kit.demo.fisheries: layout, CSVs, boxes, boats, determinism, corpus, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kit.demo import fisheries
from kit.demo.common import largest_remainder

CLASSES = list(fisheries.CLASSES)
FISH_WITH_BOXES = ["ALB", "BET", "DOL", "LAG", "SHARK", "YFT"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> fisheries.DemoSummary:
    return fisheries.generate(tmp_path_factory.mktemp("fish") / "data", seed=0, preset="tiny")


@pytest.fixture(scope="module")
def meta(demo: fisheries.DemoSummary) -> pd.DataFrame:
    return pd.read_csv(demo.meta)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_summary(demo: fisheries.DemoSummary) -> None:
    assert demo.classes == fisheries.CLASSES
    assert demo.n_train == 48
    assert dict(demo.n_test) == {"test_stg1": 16, "test_stg2": 16}
    assert demo.solution == demo.root / "solution.csv"
    assert demo.meta == demo.root / "demo_meta.csv"


def test_layout_and_names(demo: fisheries.DemoSummary) -> None:
    root = demo.root
    assert sorted(p.name for p in root.iterdir()) == [
        "annotations", "demo_meta.csv", "sample_submission_stg1.csv",
        "sample_submission_stg2.csv", "solution.csv", "test_stg1", "test_stg2", "train",
    ]
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(CLASSES)
    train = {c: sorted(p.name for p in (root / "train" / c).iterdir()) for c in CLASSES}
    assert all(len(names) == 6 for names in train.values())  # tiny: exactly 6 per class
    stg1 = sorted(p.name for p in (root / "test_stg1").iterdir())
    stg2 = sorted(p.name for p in (root / "test_stg2").iterdir())
    assert len(stg1) == 16
    assert stg2 == [f"image_{i:05d}.jpg" for i in range(1, 17)]
    all_img = [n for names in train.values() for n in names] + stg1
    assert all(re.fullmatch(r"img_\d{5}\.jpg", n) for n in all_img)
    assert len(set(all_img)) == len(all_img)  # numbers unique across train and test_stg1


def test_images_decode_as_rgb_at_declared_size(demo: fisheries.DemoSummary,
                                               meta: pd.DataFrame) -> None:
    assert len(meta) == 48 + 16 + 16
    for row in meta.itertuples():
        with Image.open(demo.root / row.path) as im:
            assert im.format == "JPEG"
            assert im.convert("RGB").size == (row.width, row.height)
            assert im.mode == "RGB"


def test_meta_columns_and_boxes(demo: fisheries.DemoSummary, meta: pd.DataFrame) -> None:
    assert list(meta.columns) == ["path", "split", "label", "boat", "width", "height",
                                  "box_x", "box_y", "box_w", "box_h"]
    assert list(meta["split"].unique()) == ["train", "test_stg1", "test_stg2"]
    box = meta[["box_x", "box_y", "box_w", "box_h"]]
    nof = meta["label"] == "NoF"
    assert box[nof].isna().all().all()
    assert box[~nof].notna().all().all()
    fish = meta[~nof]
    assert (fish["box_x"] >= 0).all() and (fish["box_y"] >= 0).all()
    assert (fish["box_w"] > 0).all() and (fish["box_h"] > 0).all()
    assert (fish["box_x"] + fish["box_w"] <= fish["width"]).all()
    assert (fish["box_y"] + fish["box_h"] <= fish["height"]).all()
    # Fish are 12-35 % of the image width long; the box is at least a sizeable part of that.
    assert (np.maximum(fish["box_w"], fish["box_h"]) >= 0.05 * fish["width"]).all()
    train = meta[meta["split"] == "train"]
    assert (train["path"] == [f"train/{lab}/{p.rsplit('/', 1)[-1]}"
                              for lab, p in zip(train["label"], train["path"], strict=True)]).all()


def test_sample_submissions(demo: fisheries.DemoSummary, meta: pd.DataFrame) -> None:
    s1 = pd.read_csv(demo.root / "sample_submission_stg1.csv")
    s2 = pd.read_csv(demo.root / "sample_submission_stg2.csv")
    assert list(s1.columns) == ["image", *CLASSES]
    assert list(s2.columns) == ["image", *CLASSES]
    stg1_files = sorted(p.name for p in (demo.root / "test_stg1").iterdir())
    stg2_files = sorted(p.name for p in (demo.root / "test_stg2").iterdir())
    assert list(s1["image"]) == stg1_files
    assert list(s2["image"]) == stg1_files + [f"test_stg2/{n}" for n in stg2_files]
    train = meta[meta["split"] == "train"]
    prior = [round((train["label"] == c).mean(), 6) for c in CLASSES]
    for frame in (s1, s2):
        np.testing.assert_allclose(frame[CLASSES].to_numpy(),
                                   np.tile(prior, (len(frame), 1)), atol=1e-9)


def test_solution_matches_sample_and_truth(demo: fisheries.DemoSummary,
                                           meta: pd.DataFrame) -> None:
    sol = pd.read_csv(demo.solution)
    s2 = pd.read_csv(demo.root / "sample_submission_stg2.csv")
    assert list(sol.columns) == ["image", *CLASSES, "Usage"]
    assert list(sol["image"]) == list(s2["image"])
    onehot = sol[CLASSES].to_numpy()
    assert set(np.unique(onehot)) == {0, 1}
    assert (onehot.sum(1) == 1).all()
    is_stg2 = sol["image"].str.startswith("test_stg2/")
    assert (sol.loc[~is_stg2, "Usage"] == "Public").all()
    assert (sol.loc[is_stg2, "Usage"] == "Private").all()
    truth = {p.split("/", 1)[1] if s == "test_stg1" else p: lab
             for p, s, lab in zip(meta["path"], meta["split"], meta["label"], strict=True)
             if s != "train"}
    assert [CLASSES[i] for i in onehot.argmax(1)] == [truth[i] for i in sol["image"]]


def test_annotations(demo: fisheries.DemoSummary, meta: pd.DataFrame) -> None:
    folder = demo.root / "annotations"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{c.lower()}_labels.json" for c in FISH_WITH_BOXES)
    train = meta[meta["split"] == "train"].copy()
    train["file"] = train["path"].str.rsplit("/", n=1).str[-1]
    for cls in FISH_WITH_BOXES:
        records = json.loads((folder / f"{cls.lower()}_labels.json").read_text())
        rows = train[train["label"] == cls].set_index("file")
        assert sorted(r["filename"] for r in records) == sorted(rows.index)
        for r in records:
            assert set(r) == {"annotations", "class", "filename"}
            assert r["class"] == "image"
            (a,) = r["annotations"]
            assert set(a) == {"class", "height", "width", "x", "y"}
            assert a["class"] == "rect"
            assert all(isinstance(a[k], float) for k in ("height", "width", "x", "y"))
            row = rows.loc[r["filename"]]
            assert (a["x"], a["y"], a["width"], a["height"]) == pytest.approx(
                (row.box_x, row.box_y, row.box_w, row.box_h))
            assert a["x"] >= 0 and a["x"] + a["width"] <= row.width
            assert a["y"] >= 0 and a["y"] + a["height"] <= row.height


def test_boats_have_one_size_and_stage2_boats_are_new(meta: pd.DataFrame) -> None:
    sizes = meta.groupby("boat")[["width", "height"]].nunique()
    assert (sizes == 1).all().all()
    per_boat = meta.groupby("boat")[["width", "height"]].first().apply(tuple, axis=1)
    assert per_boat.drop("boat_7").is_unique  # boat_7 carries boat_1's camera
    assert per_boat["boat_7"] == per_boat["boat_1"]
    boats = {s: set(meta.loc[meta["split"] == s, "boat"]) for s in meta["split"].unique()}
    assert boats["train"] == {f"boat_{i}" for i in range(1, 7)}
    assert boats["test_stg1"] <= boats["train"]
    assert boats["test_stg2"].isdisjoint(boats["train"])
    train_sizes = set(zip(meta.loc[meta["split"] == "train", "width"],
                          meta.loc[meta["split"] == "train", "height"], strict=True))
    stg2 = meta[meta["split"] == "test_stg2"]
    shared = set(zip(stg2["width"], stg2["height"], strict=True)) & train_sizes
    assert shared == {per_boat["boat_1"]}  # a familiar size on a new boat; the others are new


def test_class_mix_differs_by_boat(meta: pd.DataFrame) -> None:
    train = meta[meta["split"] == "train"]
    majority = pd.crosstab(train["boat"], train["label"]).idxmax(axis=1)
    assert majority.nunique() >= 5
    assert majority["boat_1"] == "ALB" and majority["boat_4"] == "SHARK"


def test_presets_and_real_camera_sizes() -> None:
    full, tiny = fisheries.PRESETS["full"], fisheries.PRESETS["tiny"]
    assert (full.n_train, full.n_test_stg1, full.n_test_stg2, full.scale) == (480, 200, 200, 1.0)
    assert largest_remainder(full.n_train, full.class_mix) == (150, 40, 30, 25, 70, 45, 35, 85)
    assert (tiny.n_train, tiny.n_test_stg1, tiny.n_test_stg2, tiny.scale) == (48, 16, 16, 0.125)
    assert [s for _, s in fisheries.TRAIN_BOATS] == [
        (1280, 720), (1280, 974), (1192, 670), (1276, 718), (1280, 750), (1518, 854)]
    assert [s for _, s in fisheries.STAGE2_BOATS] == [(1280, 720), (1244, 700), (1334, 750)]
    with pytest.raises(TypeError):
        fisheries.PRESETS["huge"] = full  # type: ignore[index]


def test_deterministic_and_seed_dependent(demo: fisheries.DemoSummary, tmp_path: Path) -> None:
    again = fisheries.generate(tmp_path / "again", seed=0, preset="tiny")
    assert _files(again.root) == _files(demo.root)
    other = _files(fisheries.generate(tmp_path / "other", seed=1, preset="tiny").root)
    same = _files(demo.root)
    assert other.keys() != same.keys() or any(other[k] != same[k] for k in same)
    jpgs = [k for k in other if k.startswith("test_stg2/")]  # same names for every seed
    assert all(other[k] != same[k] for k in jpgs)


def test_generate_into_existing_empty_folder(tmp_path: Path) -> None:
    summary = fisheries.generate(tmp_path, seed=3, preset="tiny")
    assert summary.root == tmp_path
    assert (tmp_path / "solution.csv").is_file()


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "preset must be one of 'full', 'tiny'; received preset='huge'")):
        fisheries.generate(tmp_path / "a", preset="huge")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="out must be a folder that is empty or does not exist; "
                                         "received out='.*full', which is not empty"):
        fisheries.generate(tmp_path / "full", preset="tiny")
    with pytest.raises(ValueError, match="which is a file"):
        fisheries.generate(tmp_path / "full" / "x.txt", preset="tiny")
    with pytest.raises(ValueError, match=re.escape("seed must be a non-negative int; "
                                                   "received seed=-1")):
        fisheries.generate(tmp_path / "b", seed=-1, preset="tiny")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_corpus_shapes_balance_and_determinism() -> None:
    c = fisheries.corpus(43, seed=5, size=(48, 32))
    assert isinstance(c, fisheries.Corpus)
    assert c.images.shape == (43, 32, 48, 3) and c.images.dtype == np.uint8
    assert c.labels.shape == (43,) and c.labels.dtype == np.int64
    assert c.classes == fisheries.CLASSES
    counts = np.bincount(c.labels, minlength=8)
    assert counts.max() - counts.min() <= 1
    again = fisheries.corpus(43, seed=5, size=(48, 32))
    np.testing.assert_array_equal(again.images, c.images)
    np.testing.assert_array_equal(again.labels, c.labels)
    other = fisheries.corpus(43, seed=6, size=(48, 32))
    assert not np.array_equal(other.images, c.images)
    assert len({img.tobytes() for img in c.images}) == 43


def test_corpus_images_are_not_demo_images(demo: fisheries.DemoSummary,
                                           meta: pd.DataFrame) -> None:
    c = fisheries.corpus(64, seed=0, size=(32, 32)).images.astype(np.float32)
    demo_imgs = np.stack([
        cv2.resize(np.asarray(Image.open(demo.root / p).convert("RGB")), (32, 32),
                   interpolation=cv2.INTER_AREA) for p in meta["path"]
    ]).astype(np.float32)
    dist = np.abs(c[:, None] - demo_imgs[None]).mean(axis=(2, 3, 4))
    assert dist.min() > 5.0


@pytest.mark.parametrize(
    ("n", "size", "message"),
    [
        (0, (64, 64), "n must be a positive int (number of images); received n=0."),
        (2.5, (64, 64), "n must be a positive int (number of images); received n=2.5."),
        (True, (64, 64), "n must be a positive int (number of images); received n=True."),
        (4, (0, 64), "size must be a (width, height) pair of positive ints, e.g. size=(64, 64); "
                     "received size=(0, 64)."),
        (4, (64,), "received size=(64,)."),
        (4, "64x64", "received size='64x64'."),
    ],
)
def test_corpus_errors(n: object, size: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        fisheries.corpus(n, seed=0, size=size)  # type: ignore[arg-type]
