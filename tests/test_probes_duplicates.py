"""Tests for kit.probes.duplicates (and the image statistics it reads, kit.probes.imagestats)."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from kit.data.images import load_image
from kit.demo import fisheries
from kit.probes.duplicates import (
    CopyModel,
    Thresholds,
    calibrate,
    candidate_pairs,
    find_duplicates,
    hamming,
)
from kit.probes.imagestats import gray_thumbnail, read_image_stats
from kit.probes.settings import ProbeSettings

SETTINGS = ProbeSettings()


def _scene(seed: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """A distinct synthetic photo: smooth background, a few shapes (RGB)."""
    rng = np.random.default_rng(seed)
    w, h = size
    coarse = rng.integers(20, 235, (4, 5, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(4):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(image, centre, int(rng.integers(5, 30)), colour, -1)
    return image


def _save(image: np.ndarray, path: Path, *, quality: int = 92) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=quality)
    return path


def _copy(image: np.ndarray, *, scale: float, gain: float, quality: int) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    bright = np.clip(small.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(bright).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _probe(files: list[Path], paths: list[str], splits: list[str], seed: int = 0, **kw):
    stats = read_image_stats(files, paths)
    thresholds = calibrate(files, settings=ProbeSettings(seed=seed))
    return find_duplicates(paths, splits, stats.phash, stats.gray, thresholds, **kw)


# -- pure parts ------------------------------------------------------------------------------


def test_hamming_and_candidate_pairs():
    hashes = np.array([0b0000, 0b0001, 0b1111, 0b0011], dtype=np.uint64)
    assert hamming(hashes[0], hashes[2]) == 4
    i, j = candidate_pairs(hashes, 1)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (1, 3)]


def test_find_duplicates_sorts_pairs_into_kinds_and_counts_split_folds():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 16)).astype(np.float32)
    thumbs = np.concatenate([base, base[:2] + 0.01])  # rows 4, 5 copy rows 0, 1
    hashes = np.array([1, 2, 4, 8, 1, 2], dtype=np.uint64)
    paths = ["train/a.jpg", "train/b.jpg", "train/c.jpg", "test/d.jpg", "test/e.jpg",
             "train/f.jpg"]
    splits = ["train", "train", "train", "test", "test", "train"]
    thresholds = Thresholds(hash_bound=0, pixel_bound=0.05, recall=0.98, level=0.95,
                            n_copies=400, copy_hash_max=0, copy_pixel_max=0.05)
    result = find_duplicates(paths, splits, hashes, thumbs, thresholds,
                             folds={"train/b.jpg": 0, "train/f.jpg": 1})
    assert [(p.a, p.b, p.kind) for p in result.pairs] == [
        ("train/a.jpg", "test/e.jpg", "cross_split"),
        ("train/b.jpg", "train/f.jpg", "within_train"),
    ]
    assert (result.cross_split, result.within_train, result.within_test) == (1, 1, 0)
    assert result.leak and result.train_pairs_split_by_stratified_folds == 1
    assert result.to_dict()["pairs"] == [["train/a.jpg", "test/e.jpg", 0],
                                         ["train/b.jpg", "train/f.jpg", 0]]


def test_copy_model_rejects_a_bad_range():
    with pytest.raises(ValueError, match=r"scale must lie in \(0, 1\]; received scale=\(0.5, 2.0\)"):
        CopyModel(scale=(0.5, 2.0))


def test_calibrate_names_the_minimum_number_of_copies(tmp_path: Path):
    file = _save(_scene(0), tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="n_copies must be an integer >= 149"):
        calibrate([file], settings=SETTINGS, n_copies=20)


def test_thumbnails_cancel_brightness_and_contrast():
    image = _scene(1)
    brighter = np.clip(image.astype(np.float32) * 0.8 + 30, 0, 255).astype(np.uint8)
    assert np.abs(gray_thumbnail(image) - gray_thumbnail(brighter)).mean() < 0.02
    assert not gray_thumbnail(np.full((20, 20, 3), 7, np.uint8)).any()  # flat image: zeros


# -- planted duplicates and clean data ---------------------------------------------------------


def test_planted_near_duplicates_are_found(tmp_path: Path):
    files, paths, splits = [], [], []
    for k in range(24):
        split = "train" if k < 16 else "test"
        path = f"{split}/img_{k:02d}.jpg"
        files.append(_save(_scene(100 + k), tmp_path / path))
        paths.append(path)
        splits.append(split)
    plants = {  # copy name: (original index, scale, gain, quality)
        "test/copy_of_03.jpg": (3, 0.6, 1.08, 70),
        "train/copy_of_05.jpg": (5, 0.8, 0.93, 80),
        "test/copy_of_17.jpg": (17, 1.0, 1.0, 60),
    }
    for path, (k, scale, gain, quality) in plants.items():
        original = load_image(files[k])
        files.append(_save(_copy(original, scale=scale, gain=gain, quality=quality),
                           tmp_path / path, quality=quality))
        paths.append(path)
        splits.append(path.split("/")[0])
    result = _probe(files, paths, splits)
    found = {(p.a, p.b): p.kind for p in result.pairs}
    assert found == {
        ("train/img_03.jpg", "test/copy_of_03.jpg"): "cross_split",
        ("train/img_05.jpg", "train/copy_of_05.jpg"): "within_train",
        ("test/img_17.jpg", "test/copy_of_17.jpg"): "within_test",
    }
    assert result.cross_split == 1 and result.leak
    assert all(isinstance(p.hash_distance, int) for p in result.pairs)


@pytest.mark.slow
def test_twenty_fresh_clean_datasets_raise_at_most_one_false_alarm(tmp_path: Path):
    """Fresh tiny fisheries demos (6 boats, same deck per boat): no pair is a real duplicate."""
    false_alarms = []
    for seed in range(1, 21):
        root = tmp_path / f"seed{seed}"
        fisheries.generate(root, seed=seed, preset="tiny")
        files = sorted(p for p in root.rglob("*.jpg"))
        paths = [p.relative_to(root).as_posix() for p in files]
        splits = [p.split("/")[0] for p in paths]
        result = _probe(files, paths, splits, seed=seed)
        false_alarms += [(seed, p.a, p.b) for p in result.pairs]
    assert len(false_alarms) <= 1, false_alarms


def test_unreadable_images_are_listed_not_fatal(tmp_path: Path):
    good = _save(_scene(5), tmp_path / "train" / "a.jpg")
    truncated = tmp_path / "train" / "b.jpg"
    truncated.write_bytes(good.read_bytes()[:150])
    stats = read_image_stats([good, truncated], ["train/a.jpg", "train/b.jpg"])
    assert stats.readable.tolist() == [True, False]
    assert stats.unreadable[0].path == "train/b.jpg"
    assert stats.unreadable[0].reason.startswith("truncated or corrupt")
