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
from kit.probes.cvgap import PROBE_MODEL, RUN_HEAD, CVComparison
from kit.probes.duplicates import (
    CopyModel,
    DuplicatesResult,
    Thresholds,
    calibrate,
    candidate_pairs,
    cluster_spread,
    duplicate_clusters,
    find_duplicates,
    hamming,
)
from kit.probes.imagestats import gray_thumbnail, read_image_stats
from kit.probes.settings import ProbeSettings
from kit.probes.stats import Interval

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


THRESHOLDS = Thresholds(hash_bound=0, pixel_bound=0.05, recall=0.98, level=0.95, n_copies=400,
                        copy_hash_max=0, copy_pixel_max=0.05)


def test_pairs_join_into_clusters_and_stratified_folds_cut_them():
    paths = ["a", "b", "c", "d", "e", "f"]
    clusters = duplicate_clusters(paths, [("a", "b"), ("b", "c"), ("d", "e"), ("x", "a")])
    assert clusters[0] == clusters[1] == clusters[2] and clusters[3] == clusters[4]
    assert len(set(clusters)) == 3  # f is alone; a pair naming an unknown path is ignored
    spread = cluster_spread(clusters, np.array([0, 0, 1, 1, 1, 0]))
    assert (spread.n_clusters, spread.clustered_images, spread.straddling_images) == (2, 5, 3)
    assert spread.straddling_share == pytest.approx(0.5)
    assert "stratified folds put 50% of training images on both sides" in spread.text()
    with pytest.raises(ValueError, match="one entry per image; received 6 and 2"):
        cluster_spread(clusters, np.array([0, 1]))


def _comparison(p: float, low: float, kind: str = RUN_HEAD) -> CVComparison:
    return CVComparison(feature_source="f", regularization=None, stratified_log_loss=0.06,
                        group_log_loss=0.23, prior_log_loss=2.3,
                        optimism=Interval(estimate=0.17, low=low, high=0.26, level=0.95),
                        p_value=p, alpha=0.05, n_stratified_folds=5, n_group_folds=5,
                        model="m", grouping="g", n_groups=183, model_kind=kind)


def _within_train_pair() -> DuplicatesResult:
    thumbs = np.zeros((3, 16), np.float32)
    return find_duplicates(["train/a.jpg", "train/b.jpg", "test/c.jpg"],
                           ["train", "train", "test"], np.array([1, 1, 8], np.uint64), thumbs,
                           THRESHOLDS)


def test_within_train_duplicates_are_a_leak_only_when_they_make_cv_optimistic():
    result = _within_train_pair()
    assert not result.leak and result.within_train == 1 and result.fix is None
    spread = cluster_spread(["a", "a", "c"], np.array([0, 1, 0]))
    leak = result.with_train_cv(spread, _comparison(0.001, 0.09))
    assert leak.leak and leak.train_leak and leak.verdict().startswith(
        "LEAK: near-duplicates inside train make stratified CV optimistic (1 within-train "
        "pairs in 1 clusters, 67% of training images split from a copy; optimism 0.170")
    assert leak.verdict().endswith("fix: `run --folds auto` keeps duplicate clusters together")
    data = leak.to_dict()
    assert data["leak"] and data["train_leak"] and not data["cross_split_leak"]
    assert data["fix"] == "`run --folds auto` keeps duplicate clusters together"
    assert data["clusters"]["straddling_images"] == 2 and data["comparison"]["leak"]
    assert data["within_train"] == 1  # the key `run --folds auto` reads (kit.probes.evidence)
    quiet = result.with_train_cv(spread, _comparison(0.3, -0.01))
    assert not quiet.leak and quiet.verdict().startswith(
        "no train/test duplicates; no significant CV optimism from the 1 within-train pairs")
    assert "kit run" not in quiet.verdict()
    by_probe = result.with_train_cv(spread, _comparison(0.3, -0.01, PROBE_MODEL))
    assert "`kit run` this data, then probe again" in by_probe.verdict()
    skipped = result.with_train_cv(None, None, note="a class has a single image")
    assert not skipped.leak and skipped.to_dict()["comparison"] is None
    assert skipped.verdict().endswith("a class has a single image")


def test_a_train_test_copy_stays_a_leak_whatever_the_cv_says():
    thumbs = np.zeros((2, 16), np.float32)
    result = find_duplicates(["train/a.jpg", "test/b.jpg"], ["train", "test"],
                             np.array([1, 1], np.uint64), thumbs, THRESHOLDS)
    judged = result.with_train_cv(None, None)
    assert judged.leak and judged.verdict().startswith("LEAK: 1 train/test near-duplicate pairs")
    assert "fix: no choice of folds" in judged.verdict() and judged.fix.startswith("no choice")


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
