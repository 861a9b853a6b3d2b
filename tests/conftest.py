"""Shared fixtures: no network, small hand-made Kaggle layouts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
FISH = ("ALB", "BET", "DOL", "LAG", "NoF", "OTHER", "SHARK", "YFT")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the network: weight downloads are reported as impossible."""
    monkeypatch.setenv("KIT_OFFLINE", "1")


def write_jpeg(path: Path, *, size: tuple[int, int] = (40, 30), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def fish_layout(tmp_path: Path) -> Path:
    """Two images per class, two stage-1 and one stage-2 test image, both sample submissions."""
    root = tmp_path / "fish"
    n = 0
    for label in FISH:
        for _ in range(2):
            n += 1
            write_jpeg(root / "train" / label / f"img_{n:05d}.jpg", seed=n)
    stg1 = [f"img_{n + i:05d}.jpg" for i in (1, 2)]
    for i, name in enumerate(stg1):
        write_jpeg(root / "test_stg1" / name, seed=100 + i)
    write_jpeg(root / "test_stg2" / "image_00001.jpg", seed=200)
    ids1 = stg1
    ids2 = [*stg1, "test_stg2/image_00001.jpg"]
    for name, ids in (("sample_submission_stg1.csv", ids1), ("sample_submission_stg2.csv", ids2)):
        frame = pd.DataFrame({"image": ids, **{c: 0.125 for c in FISH}})
        frame.to_csv(root / name, index=False)
    return root


@pytest.fixture
def cats_layout(tmp_path: Path) -> Path:
    root = tmp_path / "cats"
    for i in range(3):
        write_jpeg(root / "train" / f"cat.{i}.jpg", seed=i)
        write_jpeg(root / "train" / f"dog.{i}.jpg", seed=10 + i)
    for i in (1, 2):
        write_jpeg(root / "test" / f"{i}.jpg", seed=20 + i)
    pd.DataFrame({"id": [1, 2], "label": 0.5}).to_csv(root / "sample_submission.csv", index=False)
    return root
