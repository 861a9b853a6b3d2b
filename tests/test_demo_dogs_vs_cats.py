"""Tests for kit.demo.dogs_vs_cats: layout, CSVs, no size leak, determinism, corpus, errors."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kit.demo import dogs_vs_cats


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dogs_vs_cats.DemoSummary:
    return dogs_vs_cats.generate(tmp_path_factory.mktemp("dvc") / "data", seed=0, preset="tiny")


@pytest.fixture(scope="module")
def meta(demo: dogs_vs_cats.DemoSummary) -> pd.DataFrame:
    return pd.read_csv(demo.meta)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_summary(demo: dogs_vs_cats.DemoSummary) -> None:
    assert demo.classes == ("cat", "dog")
    assert demo.n_train == 24
    assert dict(demo.n_test) == {"test": 12}
    assert demo.solution == demo.root / "solution.csv"


def test_layout_and_names(demo: dogs_vs_cats.DemoSummary) -> None:
    root = demo.root
    assert sorted(p.name for p in root.iterdir()) == [
        "demo_meta.csv", "sample_submission.csv", "solution.csv", "test", "train"]
    train = {p.name for p in (root / "train").iterdir()}
    assert train == {f"{c}.{i}.jpg" for c in ("cat", "dog") for i in range(12)}
    assert {p.name for p in (root / "test").iterdir()} == {f"{i}.jpg" for i in range(1, 13)}


def test_images_decode_as_rgb_at_declared_size(demo: dogs_vs_cats.DemoSummary,
                                               meta: pd.DataFrame) -> None:
    assert list(meta.columns) == ["path", "split", "label", "width", "height"]
    assert len(meta) == 36
    assert set(meta["label"]) == {"cat", "dog"}
    for row in meta.itertuples():
        with Image.open(demo.root / row.path) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size == (row.width, row.height)
    # tiny: SIZE_RANGE (150, 500) at scale 0.5
    assert meta["width"].between(75, 250).all() and meta["height"].between(75, 250).all()
    train = meta[meta["split"] == "train"]
    assert (train["path"].str.extract(r"train/(cat|dog)\.", expand=False) == train["label"]).all()


def test_sample_submission_and_solution(demo: dogs_vs_cats.DemoSummary,
                                        meta: pd.DataFrame) -> None:
    sample = pd.read_csv(demo.root / "sample_submission.csv")
    assert list(sample.columns) == ["id", "label"]
    assert sample["id"].dtype == np.int64
    assert list(sample["id"]) == list(range(1, 13))
    assert (sample["label"] == 0.5).all()
    sol = pd.read_csv(demo.solution)
    assert list(sol.columns) == ["id", "label", "Usage"]
    assert list(sol["id"]) == list(sample["id"])
    test = meta[meta["split"] == "test"]
    truth = {int(Path(p).stem): int(lab == "dog")
             for p, lab in zip(test["path"], test["label"], strict=True)}
    assert list(sol["label"]) == [truth[i] for i in sol["id"]]
    assert set(sol["Usage"]) == {"Public", "Private"}
    assert (sol["Usage"] == "Public").sum() == round(dogs_vs_cats.PUBLIC_FRACTION * 12)
    assert sol["label"].sum() == 6


def test_no_size_leak(meta: pd.DataFrame) -> None:
    for _, group in meta.groupby("label"):
        sizes = Counter(zip(group["width"], group["height"], strict=True))
        assert sizes.most_common(1)[0][1] < 0.9 * len(group)
        assert len(sizes) >= 0.8 * len(group)
        assert group["width"].nunique() >= 0.5 * len(group)


def test_presets() -> None:
    full, tiny = dogs_vs_cats.PRESETS["full"], dogs_vs_cats.PRESETS["tiny"]
    assert (full.n_train, full.n_test, full.scale) == (400, 200, 1.0)
    assert (tiny.n_train, tiny.n_test, tiny.scale) == (24, 12, 0.5)


def test_deterministic_and_seed_dependent(demo: dogs_vs_cats.DemoSummary,
                                          tmp_path: Path) -> None:
    same = _files(demo.root)
    assert _files(dogs_vs_cats.generate(tmp_path / "again", seed=0, preset="tiny").root) == same
    other = _files(dogs_vs_cats.generate(tmp_path / "other", seed=1, preset="tiny").root)
    assert other.keys() == same.keys()
    assert all(other[k] != same[k] for k in same if k.endswith(".jpg"))


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "preset must be one of 'full', 'tiny'; received preset='huge'")):
        dogs_vs_cats.generate(tmp_path / "a", preset="huge")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(ValueError, match="received out='.*used', which is not empty"):
        dogs_vs_cats.generate(tmp_path / "used", preset="tiny")
    with pytest.raises(ValueError, match=re.escape("received seed='0'")):
        dogs_vs_cats.generate(tmp_path / "b", seed="0", preset="tiny")  # type: ignore[arg-type]


def test_corpus() -> None:
    c = dogs_vs_cats.corpus(21, seed=2, size=(40, 30))
    assert c.images.shape == (21, 30, 40, 3) and c.images.dtype == np.uint8
    assert c.labels.dtype == np.int64 and c.classes == ("cat", "dog")
    assert abs(int((c.labels == 1).sum()) - int((c.labels == 0).sum())) <= 1
    np.testing.assert_array_equal(dogs_vs_cats.corpus(21, seed=2, size=(40, 30)).images, c.images)
    assert not np.array_equal(dogs_vs_cats.corpus(21, seed=3, size=(40, 30)).images, c.images)


def test_corpus_differs_from_demo(demo: dogs_vs_cats.DemoSummary, meta: pd.DataFrame) -> None:
    c = dogs_vs_cats.corpus(32, seed=0, size=(32, 32)).images.astype(np.float32)
    demo_imgs = np.stack([
        cv2.resize(np.asarray(Image.open(demo.root / p).convert("RGB")), (32, 32),
                   interpolation=cv2.INTER_AREA) for p in meta["path"]
    ]).astype(np.float32)
    assert np.abs(c[:, None] - demo_imgs[None]).mean(axis=(2, 3, 4)).min() > 5.0


@pytest.mark.parametrize(
    ("n", "size", "message"),
    [
        (-3, (64, 64), "n must be a positive int (number of images); received n=-3."),
        (4, (64, 0), "received size=(64, 0)."),
        (4, (64, 64, 3), "received size=(64, 64, 3)."),
    ],
)
def test_corpus_errors(n: object, size: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        dogs_vs_cats.corpus(n, seed=0, size=size)  # type: ignore[arg-type]
