"""Tests for kit.demo.state_farm: layout, CSVs, drivers (the leak), determinism, corpus, errors.

All on the tiny preset (6 train drivers x 10 classes x 2 frames, 2 test drivers x 10 x 2); no
training.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kit.competition import load_competition
from kit.core.errors import InputError
from kit.data.folds import assign_folds
from kit.data.groups import declared_groups
from kit.data.layout import read_layout
from kit.demo import state_farm

CLASSES = [f"c{i}" for i in range(10)]
N_TRAIN, N_TEST = 6 * 10 * 2, 2 * 10 * 2


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> state_farm.DemoSummary:
    return state_farm.generate(tmp_path_factory.mktemp("sf") / "data", seed=0, preset="tiny")


@pytest.fixture(scope="module")
def meta(demo: state_farm.DemoSummary) -> pd.DataFrame:
    return pd.read_csv(demo.meta, dtype={"usage": str}, keep_default_na=False)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _small(root: Path, paths: list[str]) -> np.ndarray:
    """The images at `paths`, grey, 32x24, as float32."""
    return np.stack([
        cv2.resize(np.asarray(Image.open(root / p).convert("L")), (32, 24),
                   interpolation=cv2.INTER_AREA) for p in paths]).astype(np.float32)


def test_summary_and_presets(demo: state_farm.DemoSummary) -> None:
    assert demo.classes == tuple(CLASSES)
    assert demo.n_train == N_TRAIN
    assert dict(demo.n_test) == {"test": N_TEST}
    assert demo.solution == demo.root / "solution.csv"
    assert demo.meta == demo.root / "demo_meta.csv"
    full = state_farm.PRESETS["full"]
    assert (full.train_drivers, full.test_drivers, full.train_frames, full.test_frames) == (
        10, 4, 6, 5)
    assert state_farm.PRESETS["tiny"].train_drivers >= 5  # group 5-fold needs 5 drivers
    assert list(state_farm.DESCRIPTIONS) == CLASSES
    assert isinstance(state_farm.VERSION, int)
    with pytest.raises(TypeError):
        state_farm.PRESETS["huge"] = full  # type: ignore[index]


def test_layout_and_names(demo: state_farm.DemoSummary) -> None:
    root = demo.root
    assert sorted(p.name for p in root.iterdir()) == [
        "demo_meta.csv", "driver_imgs_list.csv", "imgs", "sample_submission.csv",
        "solution.csv"]
    assert sorted(p.name for p in (root / "imgs").iterdir()) == ["test", "train"]
    assert sorted(p.name for p in (root / "imgs" / "train").iterdir()) == CLASSES
    train = [n for c in CLASSES for n in sorted(p.name for p in (root / "imgs/train" / c).iterdir())]
    assert all(len(list((root / "imgs/train" / c).iterdir())) == N_TRAIN // 10 for c in CLASSES)
    test = sorted(p.name for p in (root / "imgs" / "test").iterdir())
    assert len(test) == N_TEST
    assert all(re.fullmatch(r"img_[1-9]\d*\.jpg", n) for n in train + test)
    assert len(set(train + test)) == N_TRAIN + N_TEST  # N unique across the whole dataset


def test_images_are_640x480_rgb_jpegs(demo: state_farm.DemoSummary, meta: pd.DataFrame) -> None:
    assert list(meta.columns) == ["path", "split", "label", "subject", "frame", "usage",
                                  "width", "height"]
    assert len(meta) == N_TRAIN + N_TEST
    assert set(zip(meta["width"], meta["height"], strict=True)) == {(640, 480)}
    for path in meta["path"]:
        with Image.open(demo.root / path) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (640, 480))
    train = meta[meta["split"] == "train"]
    assert (train["path"] == [f"imgs/train/{lab}/{p.rsplit('/', 1)[-1]}"
                              for lab, p in zip(train["label"], train["path"], strict=True)]).all()
    assert meta.loc[meta["split"] == "test", "path"].str.fullmatch(r"imgs/test/img_\d+\.jpg").all()


def test_driver_list(demo: state_farm.DemoSummary, meta: pd.DataFrame) -> None:
    drivers = pd.read_csv(demo.root / "driver_imgs_list.csv", dtype=str)
    assert list(drivers.columns) == ["subject", "classname", "img"]
    assert drivers["subject"].str.fullmatch(r"p\d{3}").all()
    train = meta[meta["split"] == "train"]
    assert sorted(f"imgs/train/{r.classname}/{r.img}" for r in drivers.itertuples()) == sorted(
        train["path"])
    truth = dict(zip(train["path"].str.rsplit("/", n=1).str[-1], train["subject"], strict=True))
    assert [truth[i] for i in drivers["img"]] == list(drivers["subject"])
    assert drivers["subject"].nunique() == 6
    # Every driver shows every class, in one take of consecutive frames.
    takes = train.groupby(["subject", "label"])["frame"].apply(sorted)
    assert len(takes) == 6 * 10 and all(frames == [0, 1] for frames in takes)


def test_sample_submission_and_solution(demo: state_farm.DemoSummary, meta: pd.DataFrame) -> None:
    sample = pd.read_csv(demo.root / "sample_submission.csv")
    solution = pd.read_csv(demo.solution)
    test_files = sorted(p.name for p in (demo.root / "imgs" / "test").iterdir())
    assert list(sample.columns) == ["img", *CLASSES]
    assert sorted(sample["img"]) == test_files
    np.testing.assert_allclose(sample[CLASSES].to_numpy(), 0.1)
    assert list(solution.columns) == ["img", *CLASSES, "Usage"]
    assert list(solution["img"]) == list(sample["img"])
    onehot = solution[CLASSES].to_numpy()
    assert set(np.unique(onehot)) == {0, 1} and (onehot.sum(1) == 1).all()
    test = meta[meta["split"] == "test"].assign(img=lambda f: f["path"].str[len("imgs/test/"):])
    truth = test.set_index("img").loc[solution["img"]]
    assert [CLASSES[i] for i in onehot.argmax(1)] == list(truth["label"])
    assert list(solution["Usage"]) == list(truth["usage"])
    assert set(solution["Usage"]) == {"Public", "Private"}


def test_test_drivers_are_new_and_split_by_driver(meta: pd.DataFrame) -> None:
    train = meta[meta["split"] == "train"]
    test = meta[meta["split"] == "test"]
    assert set(test["subject"]).isdisjoint(train["subject"])
    assert (train["usage"] == "").all()
    usage = test.groupby("subject")["usage"].agg(set)
    assert all(len(u) == 1 for u in usage)  # a driver is wholly Public or wholly Private
    assert sorted(u.pop() for u in usage) == ["Private", "Public"]
    assert (test.groupby(["subject", "label"]).size() == 2).all()


def test_frames_of_a_take_are_near_copies(demo: state_farm.DemoSummary,
                                          meta: pd.DataFrame) -> None:
    """The leak: a driver's consecutive frames differ far less than two drivers' same pose."""
    train = meta[meta["split"] == "train"].sort_values(["label", "subject", "frame"])
    imgs = _small(demo.root, list(train["path"])).reshape(10, 6, 2, 24, 32)
    within = np.abs(imgs[:, :, 0] - imgs[:, :, 1]).mean(axis=(2, 3))  # (class, driver)
    across = np.abs(imgs[:, :-1, 0] - imgs[:, 1:, 0]).mean(axis=(2, 3))  # neighbouring drivers
    assert within.max() < across.min()
    assert within.mean() < 0.25 * across.mean()


def test_read_layout_and_declared_groups(demo: state_farm.DemoSummary,
                                         meta: pd.DataFrame) -> None:
    competition = load_competition("state-farm")
    assert competition.demo == "kit.demo.state_farm"
    assert competition.classes == tuple(CLASSES)
    assert competition.submission_columns() == tuple(CLASSES)
    assert competition.split("test").submission_id("img_12.jpg") == "img_12.jpg"
    assert competition.demo_recipe is not None and competition.demo_recipe.tta == 1
    layout = read_layout(competition, demo.root)
    train = layout.train
    assert len(train) == N_TRAIN and len(layout.table) == N_TRAIN + N_TEST
    assert layout.sample_file == demo.root / "sample_submission.csv"
    truth = meta.set_index("path")
    assert list(train["label"]) == list(truth.loc[train["path"], "label"])
    groups = declared_groups(competition, layout.root, train)
    assert list(groups) == list(truth.loc[train["path"], "subject"])
    folds = assign_folds(train["label"].to_numpy(), n_splits=5, seed=0, groups=groups)
    assert (pd.Series(folds).groupby(groups).nunique() == 1).all()


def test_deterministic_and_seed_dependent(demo: state_farm.DemoSummary, tmp_path: Path) -> None:
    again = state_farm.generate(tmp_path / "again", seed=0, preset="tiny")
    same = _files(demo.root)
    assert _files(again.root) == same
    other = _files(state_farm.generate(tmp_path / "other", seed=1, preset="tiny").root)
    assert other.keys() != same.keys()  # other image numbers
    assert other["solution.csv"] != same["solution.csv"]
    assert set(other.values()).isdisjoint(v for k, v in same.items() if k.endswith(".jpg"))


def test_generate_into_existing_empty_folder(tmp_path: Path) -> None:
    summary = state_farm.generate(tmp_path, seed=3, preset="tiny")
    assert summary.root == tmp_path
    assert (tmp_path / "driver_imgs_list.csv").is_file()


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=re.escape(
            "preset must be one of 'full', 'tiny'; received preset='huge'")):
        state_farm.generate(tmp_path / "a", preset="huge")
    with pytest.raises(InputError, match=re.escape(
            "seed must be a non-negative int; received seed=-1")):
        state_farm.generate(tmp_path / "b", seed=-1, preset="tiny")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(InputError, match="received out='.*full', which is not empty"):
        state_farm.generate(tmp_path / "full", preset="tiny")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(InputError, match=re.escape("received n=0.")):
        state_farm.corpus(0, seed=0, size=(64, 64))
    with pytest.raises(InputError, match=re.escape("received size=(64,).")):
        state_farm.corpus(4, seed=0, size=(64,))  # type: ignore[arg-type]


def test_corpus_shapes_balance_and_determinism() -> None:
    c = state_farm.corpus(43, seed=5, size=(48, 32))
    assert isinstance(c, state_farm.Corpus)
    assert c.images.shape == (43, 32, 48, 3) and c.images.dtype == np.uint8
    assert c.labels.shape == (43,) and c.labels.dtype == np.int64
    assert c.classes == tuple(CLASSES)
    counts = np.bincount(c.labels, minlength=10)
    assert counts.max() - counts.min() <= 1
    again = state_farm.corpus(43, seed=5, size=(48, 32))
    np.testing.assert_array_equal(again.images, c.images)
    np.testing.assert_array_equal(again.labels, c.labels)
    other = state_farm.corpus(43, seed=6, size=(48, 32))
    assert not np.array_equal(other.images, c.images)
    assert len({img.tobytes() for img in c.images}) == 43


def test_corpus_images_are_not_demo_images(demo: state_farm.DemoSummary,
                                           meta: pd.DataFrame) -> None:
    c = state_farm.corpus(60, seed=0, size=(32, 24)).images.astype(np.float32).mean(-1)
    demo_imgs = _small(demo.root, list(meta["path"]))
    dist = np.abs(c[:, None] - demo_imgs[None]).mean(axis=(2, 3))
    assert dist.min() > 5.0
