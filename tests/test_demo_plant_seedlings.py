"""Tests for kit.demo.plant_seedlings: layout, CSVs, determinism, no size leak, corpus, errors.

All on the tiny preset, no training.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import f1_score

from kit.competition import load_competition
from kit.data.layout import read_layout
from kit.demo import plant_seedlings as ps
from kit.demo.common import largest_remainder
from kit.scoring.score import score_file

NAME = re.compile(r"^[0-9a-f]{9}\.png$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> ps.DemoSummary:
    return ps.generate(tmp_path_factory.mktemp("ps") / "data", seed=0, preset="tiny")


@pytest.fixture(scope="module")
def meta(demo: ps.DemoSummary) -> pd.DataFrame:
    return pd.read_csv(demo.meta)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_summary(demo: ps.DemoSummary) -> None:
    assert demo.classes == ps.CLASSES
    assert demo.n_train == 108
    assert dict(demo.n_test) == {"test": 24}
    assert demo.solution == demo.root / "solution.csv"


def test_classes_match_the_declaration() -> None:
    competition = load_competition("plant-seedlings")
    assert competition.classes == ps.CLASSES
    assert "Loose Silky-bent" in ps.CLASSES and "Small-flowered Cranesbill" in ps.CLASSES
    assert competition.metric == "f1_micro" and competition.submission.kind == "label"
    assert competition.submission_columns() == ("species",)
    assert competition.split("test").submission_id("0021e90e4.png") == "0021e90e4.png"
    assert competition.demo == "kit.demo.plant_seedlings"


def test_layout_folders_and_names(demo: ps.DemoSummary, meta: pd.DataFrame) -> None:
    root = demo.root
    assert sorted(p.name for p in root.iterdir()) == [
        "demo_meta.csv", "sample_submission.csv", "solution.csv", "test", "train"]
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(ps.CLASSES)
    counts = tuple(len(list((root / "train" / c).iterdir())) for c in ps.CLASSES)
    assert counts == largest_remainder(108, ps.TRAIN_COUNTS)
    assert min(counts) >= 5  # the default 5 folds work on tiny
    names = [p.name for p in root.rglob("*.png")]
    assert len(names) == 132 and len(set(names)) == 132
    assert all(NAME.match(n) for n in names)
    assert all(p.is_file() for p in (root / "test").iterdir())
    train = meta[meta["split"] == "train"]
    assert (train["path"].str.split("/").str[1] == train["label"]).all()


def test_images_are_rgb_png_at_declared_size(demo: ps.DemoSummary, meta: pd.DataFrame) -> None:
    assert list(meta.columns) == ["path", "split", "label", "width", "height", "stage"]
    for row in meta.itertuples():
        with Image.open(demo.root / row.path) as im:
            assert im.format == "PNG" and im.mode == "RGB"
            assert im.size == (row.width, row.height)
    lo, hi = ps.PRESETS["tiny"].size_range
    assert meta["width"].between(lo, round(hi * 1.15)).all()
    assert (meta["width"] == meta["height"]).mean() > 0.6  # mostly square


def test_sample_submission_and_solution(demo: ps.DemoSummary, meta: pd.DataFrame) -> None:
    sample = pd.read_csv(demo.root / "sample_submission.csv")
    assert list(sample.columns) == ["file", "species"]
    assert list(sample["file"]) == sorted(p.name for p in (demo.root / "test").iterdir())
    assert set(sample["species"]) == {"Sugar beet"}
    sol = pd.read_csv(demo.solution)
    assert list(sol.columns) == ["file", "species", "Usage"]
    assert list(sol["file"]) == list(sample["file"])
    test = meta[meta["split"] == "test"]
    truth = dict(zip(test["path"].str.slice(5), test["label"], strict=True))
    assert list(sol["species"]) == [truth[f] for f in sol["file"]]
    assert (sol["Usage"] == "Public").sum() == 12 and (sol["Usage"] == "Private").sum() == 12
    assert tuple(sol["species"].value_counts()[list(ps.CLASSES)]) == largest_remainder(
        24, ps.TRAIN_COUNTS)


def test_read_layout(demo: ps.DemoSummary) -> None:
    layout = read_layout(load_competition("plant-seedlings"), demo.root)
    assert len(layout.train) == 108 and len(layout.test) == 24
    assert set(layout.train["label"]) == set(ps.CLASSES)
    assert "train/Loose Silky-bent/" in " ".join(layout.train["path"])
    assert sorted(layout.test["id"]) == sorted(layout.sample["file"])


def test_kit_score_is_sklearn_micro_f1(demo: ps.DemoSummary, tmp_path: Path) -> None:
    sol = pd.read_csv(demo.solution)
    guess = sol[["file", "species"]].copy()
    guess.loc[::3, "species"] = "Maize"
    guess.to_csv(tmp_path / "guess.csv", index=False)
    result = score_file(tmp_path / "guess.csv", demo.solution, load_competition("plant-seedlings"))
    for usage, value in (("Public", result.public), ("Private", result.private)):
        rows = sol["Usage"] == usage
        assert value == pytest.approx(
            f1_score(sol.loc[rows, "species"], guess.loc[rows, "species"], average="micro"))


def test_size_does_not_depend_on_species(tmp_path: Path) -> None:
    meta = pd.read_csv(ps.generate(tmp_path / "s", seed=3, preset="tiny").meta)
    area = np.sqrt(meta["width"] * meta["height"])
    by_class = area.groupby(meta["label"]).median()
    lo, hi = ps.PRESETS["tiny"].size_range
    # each species spans the range, and no species' median sits at either end
    assert by_class.between(lo * 1.15, hi / 1.15).all()
    assert (area.groupby(meta["label"]).nunique() >= 3).all()
    assert abs(np.corrcoef(meta["stage"], area)[0, 1]) < 0.4


def test_presets() -> None:
    full, tiny = ps.PRESETS["full"], ps.PRESETS["tiny"]
    assert (full.n_train, full.n_test, full.size_range) == (480, 200, (80, 360))
    assert (tiny.n_train, tiny.n_test) == (108, 24)
    assert isinstance(ps.VERSION, int)


def test_deterministic_and_seed_dependent(demo: ps.DemoSummary, tmp_path: Path) -> None:
    same = _files(demo.root)
    assert _files(ps.generate(tmp_path / "again", seed=0, preset="tiny").root) == same
    other = _files(ps.generate(tmp_path / "other", seed=1, preset="tiny").root)
    assert {k for k in other if k.endswith(".png")}.isdisjoint(same)  # other names
    assert other["solution.csv"] != same["solution.csv"]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "preset must be one of 'full', 'tiny'; received preset='huge'")):
        ps.generate(tmp_path / "a", preset="huge")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(ValueError, match="received out='.*used', which is not empty"):
        ps.generate(tmp_path / "used", preset="tiny")
    with pytest.raises(ValueError, match=re.escape("received seed=-1")):
        ps.generate(tmp_path / "b", seed=-1, preset="tiny")
    with pytest.raises(ValueError, match=re.escape("received shape=(4, 4) dtype=uint8")):
        ps.encode_png(np.zeros((4, 4), np.uint8))


def test_corpus() -> None:
    c = ps.corpus(30, seed=2, size=(40, 32))
    assert c.images.shape == (30, 32, 40, 3) and c.images.dtype == np.uint8
    assert c.labels.dtype == np.int64 and c.classes == ps.CLASSES
    assert sorted(np.bincount(c.labels, minlength=12)) == [2] * 6 + [3] * 6
    np.testing.assert_array_equal(ps.corpus(30, seed=2, size=(40, 32)).images, c.images)
    assert not np.array_equal(ps.corpus(30, seed=3, size=(40, 32)).images, c.images)


def test_corpus_differs_from_demo(demo: ps.DemoSummary, meta: pd.DataFrame) -> None:
    c = ps.corpus(48, seed=0, size=(32, 32)).images.astype(np.float32)
    demo_imgs = np.stack([
        cv2.resize(np.asarray(Image.open(demo.root / p).convert("RGB")), (32, 32),
                   interpolation=cv2.INTER_AREA) for p in meta["path"]
    ]).astype(np.float32)
    assert np.abs(c[:, None] - demo_imgs[None]).mean(axis=(2, 3, 4)).min() > 5.0


@pytest.mark.parametrize(
    ("n", "size", "message"),
    [
        (0, (64, 64), "n must be a positive int (number of images); received n=0."),
        (4, (64, -1), "received size=(64, -1)."),
    ],
)
def test_corpus_errors(n: object, size: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ps.corpus(n, seed=0, size=size)  # type: ignore[arg-type]
