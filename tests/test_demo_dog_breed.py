"""Tests for kit.demo.dog_breed: layout, CSVs, breeds, no size leak, determinism, corpus, errors."""

from __future__ import annotations

import re
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kit.competition import CsvLabels, load_competition
from kit.data.layout import read_layout
from kit.demo import dog_breed
from kit.demo.recipe import DEMO_RECIPE

HEX_ID = re.compile(r"[0-9a-f]{32}")
TINY = dog_breed.PRESETS["tiny"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dog_breed.DemoSummary:
    return dog_breed.generate(tmp_path_factory.mktemp("db") / "data", seed=0, preset="tiny")


@pytest.fixture(scope="module")
def meta(demo: dog_breed.DemoSummary) -> pd.DataFrame:
    return pd.read_csv(demo.meta, dtype={"id": str})


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"id": str})


def test_classes_are_the_competitions() -> None:
    competition = load_competition("dog-breed")
    assert len(dog_breed.CLASSES) == 120
    assert tuple(sorted(dog_breed.CLASSES)) == dog_breed.CLASSES  # alphabetical
    assert competition.classes == dog_breed.CLASSES
    assert dog_breed.CLASSES[:3] == ("affenpinscher", "afghan_hound", "african_hunting_dog")
    assert dog_breed.CLASSES[-1] == "yorkshire_terrier"


def test_declaration() -> None:
    competition = load_competition("dog-breed")
    assert competition.slug == "dog-breed-identification"
    assert competition.label_source == CsvLabels(
        file="labels.csv", id_column="id", label_column="breed", path_template="train/{id}.jpg")
    assert competition.submission_columns() == dog_breed.CLASSES
    assert competition.split("test").submission_id("000bec180eb18c7604dcecc8fe0dba07.jpg") == (
        "000bec180eb18c7604dcecc8fe0dba07")
    assert competition.metric == "log_loss"
    assert competition.demo == "kit.demo.dog_breed"
    assert (competition.recipe.backbone, competition.recipe.weights) == ("vgg16", "imagenet")
    demo_recipe = competition.demo_recipe
    assert (demo_recipe.backbone, demo_recipe.weights) == ("demo_cnn", "demo")
    assert demo_recipe.input_size == DEMO_RECIPE.input_size


def test_breeds_are_told_apart_by_their_traits() -> None:
    """Every two breeds differ in a trait, or their coat colours never coincide."""
    assert len({b.name for b in dog_breed.BREEDS}) == 120
    one_apart = 0
    for a, b in combinations(dog_breed.BREEDS, 2):
        apart = sum(x != y for x, y in zip(a.traits(), b.traits(), strict=True))
        apart += not set(a.colours) & set(b.colours)
        assert apart >= 1, (a.name, b.name)
        one_apart += apart == 1
    assert one_apart >= 20  # look-alikes, as in the real breeds
    for field in ("pattern", "ears", "snout", "build", "tail", "fur"):  # every trait is shared
        values = pd.Series([getattr(b, field) for b in dog_breed.BREEDS]).value_counts()
        assert values.max() >= 10, field


def test_bad_breed_spec() -> None:
    with pytest.raises(ValueError, match=re.escape("breed x: ears must be one of EKFLDR; "
                                                   "received ears='Q'")):
        dog_breed._parse("x k S Q s k s w")
    with pytest.raises(ValueError, match=re.escape("received colours='kq'")):
        dog_breed._parse("x kq S E s k s w")


def test_summary_and_presets(demo: dog_breed.DemoSummary) -> None:
    assert demo.classes == dog_breed.CLASSES
    assert demo.n_train == TINY.n_train
    assert dict(demo.n_test) == {"test": TINY.n_test}
    assert demo.solution == demo.root / "solution.csv"
    full = dog_breed.PRESETS["full"]
    assert 700 <= full.n_train <= 760 and full.min_per_breed >= 5  # the demo recipe's 5 folds
    assert TINY.min_per_breed >= 3  # the end-to-end tests' 3 folds


def test_layout_and_ids(demo: dog_breed.DemoSummary, meta: pd.DataFrame) -> None:
    root = demo.root
    assert sorted(p.name for p in root.iterdir()) == [
        "demo_meta.csv", "labels.csv", "sample_submission.csv", "solution.csv", "test", "train"]
    for split, n in (("train", TINY.n_train), ("test", TINY.n_test)):
        names = [p.name for p in (root / split).iterdir()]
        assert len(names) == n
        assert all(HEX_ID.fullmatch(name.removesuffix(".jpg")) and name.endswith(".jpg")
                   for name in names)
    assert meta["id"].is_unique
    assert list(meta.columns) == ["path", "split", "label", "id", "width", "height", "facing",
                                  "scene"]


def test_images_are_jpegs_of_varied_sizes(demo: dog_breed.DemoSummary,
                                          meta: pd.DataFrame) -> None:
    for row in meta.itertuples():
        with Image.open(demo.root / row.path) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size == (row.width, row.height)
    lo, hi = (round(v * TINY.scale) for v in dog_breed.SIZE_RANGE)
    assert meta["width"].between(lo, hi).all() and meta["height"].between(lo, hi).all()
    assert meta["width"].nunique() > 50 and meta["height"].nunique() > 50
    assert (meta["width"] / meta["height"]).agg(["min", "max"]).tolist()[0] < 0.7


def test_labels_csv(demo: dog_breed.DemoSummary, meta: pd.DataFrame) -> None:
    labels = _read(demo.root / "labels.csv")
    assert list(labels.columns) == ["id", "breed"]
    train = meta[meta["split"] == "train"]
    assert dict(zip(labels["id"], labels["breed"], strict=True)) == dict(
        zip(train["id"], train["label"], strict=True))
    assert not labels["id"].is_monotonic_increasing and not labels["breed"].is_monotonic_increasing
    counts = labels["breed"].value_counts()
    assert set(counts.index) == set(dog_breed.CLASSES)
    assert counts.min() >= TINY.min_per_breed and counts.max() > counts.min()  # uneven


def test_sample_submission_and_solution(demo: dog_breed.DemoSummary,
                                        meta: pd.DataFrame) -> None:
    sample = _read(demo.root / "sample_submission.csv")
    assert list(sample.columns) == ["id", *dog_breed.CLASSES]
    test = meta[meta["split"] == "test"]
    assert list(sample["id"]) == sorted(test["id"])
    np.testing.assert_allclose(sample[list(dog_breed.CLASSES)].to_numpy(), 1 / 120)
    solution = _read(demo.solution)
    assert list(solution.columns) == ["id", *dog_breed.CLASSES, "Usage"]
    assert list(solution["id"]) == list(sample["id"])
    truth = dict(zip(test["id"], test["label"], strict=True))
    onehot = solution[list(dog_breed.CLASSES)].to_numpy()
    assert (onehot.sum(axis=1) == 1).all()
    assert [dog_breed.CLASSES[k] for k in onehot.argmax(axis=1)] == [
        truth[i] for i in solution["id"]]
    assert set(solution["Usage"]) == {"Public", "Private"}
    assert (solution["Usage"] == "Public").sum() == round(dog_breed.PUBLIC_FRACTION * len(test))


def _eta_squared(values: np.ndarray, groups: np.ndarray) -> float:
    """Share of the variance of `values` that the group means explain."""
    frame = pd.DataFrame({"v": values, "g": groups})
    means = frame.groupby("g")["v"].transform("mean")
    return float(((means - values.mean()) ** 2).sum() / ((values - values.mean()) ** 2).sum())


def test_sizes_do_not_depend_on_the_breed(meta: pd.DataFrame) -> None:
    """A rough check: the breed explains no more of the width or height than shuffled breeds."""
    rng = np.random.default_rng(0)
    labels = meta["label"].to_numpy()
    for column in ("width", "height"):
        values = meta[column].to_numpy(np.float64)
        observed = _eta_squared(values, labels)
        shuffled = [_eta_squared(values, rng.permutation(labels)) for _ in range(100)]
        assert observed < np.quantile(shuffled, 0.99), column
    sizes = list(zip(meta["width"], meta["height"], strict=True))
    assert len(set(sizes)) >= 0.9 * len(sizes)


def test_deterministic_and_seed_dependent(demo: dog_breed.DemoSummary, tmp_path: Path) -> None:
    same = _files(demo.root)
    assert _files(dog_breed.generate(tmp_path / "again", seed=0, preset="tiny").root) == same
    other = _files(dog_breed.generate(tmp_path / "other", seed=1, preset="tiny").root)
    assert not set(other) & {k for k in same if k.endswith(".jpg")}  # other ids
    assert other["labels.csv"] != same["labels.csv"]


def test_read_layout(demo: dog_breed.DemoSummary, meta: pd.DataFrame) -> None:
    layout = read_layout(load_competition("dog-breed"), demo.root)
    train, test = layout.train, layout.test
    assert len(train) == TINY.n_train and len(test) == TINY.n_test
    truth = dict(zip(meta["path"], meta["label"], strict=True))
    assert list(train["label"]) == [truth[p] for p in train["path"]]
    assert set(test["id"]) == set(meta.loc[meta["split"] == "test", "id"])
    assert list(layout.sample.columns) == ["id", *dog_breed.CLASSES]
    assert (layout.table["width"] == [dict(zip(meta["path"], meta["width"], strict=True))[p]
                                      for p in layout.table["path"]]).all()


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(
            "preset must be one of 'full', 'tiny'; received preset='huge'")):
        dog_breed.generate(tmp_path / "a", preset="huge")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(ValueError, match="received out='.*used', which is not empty"):
        dog_breed.generate(tmp_path / "used", preset="tiny")
    with pytest.raises(ValueError, match=re.escape("received seed=-1")):
        dog_breed.generate(tmp_path / "b", seed=-1, preset="tiny")


def test_corpus() -> None:
    c = dog_breed.corpus(150, seed=2, size=(40, 30))
    assert c.images.shape == (150, 30, 40, 3) and c.images.dtype == np.uint8
    assert c.labels.dtype == np.int64 and c.classes == dog_breed.CLASSES
    counts = np.bincount(c.labels, minlength=120)
    assert len(counts) == 120 and counts.min() >= 1 and counts.max() - counts.min() <= 1
    again = dog_breed.corpus(150, seed=2, size=(40, 30))
    np.testing.assert_array_equal(again.images, c.images)
    np.testing.assert_array_equal(again.labels, c.labels)
    assert not np.array_equal(dog_breed.corpus(150, seed=3, size=(40, 30)).images, c.images)


def test_corpus_differs_from_demo(demo: dog_breed.DemoSummary, meta: pd.DataFrame) -> None:
    """Other dogs and scenes: no corpus image is close to any demo image."""
    c = dog_breed.corpus(120, seed=0, size=(24, 24)).images.astype(np.float32)
    demo_imgs = np.stack([
        cv2.resize(np.asarray(Image.open(demo.root / p).convert("RGB")), (24, 24),
                   interpolation=cv2.INTER_AREA) for p in meta["path"]
    ]).astype(np.float32)
    nearest = min(float(np.abs(demo_imgs - image).mean(axis=(1, 2, 3)).min()) for image in c)
    assert nearest > 5.0


def test_pretrain_presets() -> None:
    assert set(dog_breed.PRETRAIN) == {"full", "tiny"}
    assert dog_breed.PRETRAIN["full"].n_images >= 20 * 120


@pytest.mark.parametrize(
    ("n", "size", "message"),
    [
        (0, (64, 64), "n must be a positive int (number of images); received n=0."),
        (4, (64, 0), "received size=(64, 0)."),
    ],
)
def test_corpus_errors(n: object, size: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        dog_breed.corpus(n, seed=0, size=size)  # type: ignore[arg-type]
