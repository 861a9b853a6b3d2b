"""Crops of the full-resolution images: rectangles, cache addresses, one decode per file."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from kit.features.cache import FeatureKey, FeatureStore
from kit.features.crops import CropRequest, crop_key, crop_rect, extract_crops


def test_crop_rect_widens_keeps_a_minimum_and_clips():
    assert crop_rect((100, 100, 40, 20), (400, 300)) == (90, 95, 150, 125)
    # a tiny box grows to 10 % of each image side
    assert crop_rect((200, 150, 1, 1), (400, 300)) == (180, 135, 221, 166)
    # near the corner, clipped to the image
    assert crop_rect((-30, -30, 50, 50), (400, 300)) == (0, 0, 33, 33)
    x0, y0, x1, y1 = crop_rect((390, 290, 40, 40), (400, 300))
    assert (x1, y1) == (400, 300) and x0 < x1 and y0 < y1
    # a negative predicted size is treated as zero, never an empty crop
    x0, y0, x1, y1 = crop_rect((50, 50, -10, -10), (400, 300))
    assert x1 > x0 and y1 > y0


def test_crop_key_depends_on_content_and_rectangle():
    assert crop_key("abc", (0, 0, 10, 10)) == crop_key("abc", (0, 0, 10, 10))
    assert crop_key("abc", (0, 0, 10, 10)) != crop_key("abc", (0, 0, 10, 11))
    assert crop_key("abc", (0, 0, 10, 10)) != crop_key("abd", (0, 0, 10, 10))


def _image(path: Path, colour: tuple[int, int, int]) -> str:
    image = np.zeros((60, 80, 3), np.uint8)
    image[10:30, 20:40] = colour  # an RGB patch
    cv2.imwrite(str(path), image[:, :, ::-1])
    return str(path)


def test_extract_crops_cuts_every_rectangle_and_reuses_the_cache(tmp_path, monkeypatch):
    import kit.features.crops as crop

    red, blue = _image(tmp_path / "a.png", (255, 0, 0)), _image(tmp_path / "b.png", (0, 0, 255))
    store = FeatureStore(tmp_path / "features", FeatureKey(
        backbone="mean", weights="x", input_size=(8, 8), preprocess="none", variant="crop"))
    inside, outside = (20, 10, 40, 30), (50, 35, 80, 60)
    requests = [CropRequest(key=crop_key(f, r), file=f, rect=r)
                for f in (red, blue) for r in (inside, outside)]
    decoded = []
    real = crop._decode_crops
    monkeypatch.setattr(crop, "_decode_crops",
                        lambda f, rects, size: decoded.append(f) or real(f, rects, size))
    calls = []

    def forward(batch):  # mean colour of each crop
        calls.append(len(batch))
        return batch.reshape(len(batch), -1, 3).mean(axis=1)

    bad = CropRequest(key="gone", file=str(tmp_path / "missing.jpg"), rect=inside)
    unreadable = extract_crops(store, [*requests, bad], forward=forward, batch_size=3)
    assert list(unreadable) == [str(tmp_path / "missing.jpg")]
    assert sorted(decoded) == sorted([red, blue, str(tmp_path / "missing.jpg")])  # once each
    rows = store.get([r.key for r in requests])
    assert rows[0] == pytest.approx([255, 0, 0], abs=1) and rows[1] == pytest.approx([0, 0, 0])
    assert rows[2] == pytest.approx([0, 0, 255], abs=1) and rows[3] == pytest.approx([0, 0, 0])
    assert calls == [3, 1]
    calls.clear()
    extract_crops(store, requests, forward=forward)  # everything cached: no forward pass
    assert calls == []
