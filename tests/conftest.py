"""Shared fixtures: no network, small hand-made Kaggle layouts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
FISH = ("ALB", "BET", "DOL", "LAG", "NoF", "OTHER", "SHARK", "YFT")


# Hypothesis keeps no example database in the repository (tests write only in their tmp folders),
# and no deadline: on a shared 2-core machine an example's time says nothing about its behaviour.
# Its cache of constants (written even without a database) goes to the system tmp folder too.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "kit-tests-hypothesis")
)
settings.register_profile("kit", database=None, deadline=None)
settings.load_profile("kit")
SKIPPED = {".git", ".venv", "venv", "__pycache__", ".ruff_cache", ".import_linter_cache"}
# Benchmarks write their data and runs there (git-ignored), perhaps while the tests run.
SKIPPED_PATHS = {REPO / "benchmarks" / "work"}


def _files(root: Path) -> set[Path]:
    out: set[Path] = set()
    for path in root.iterdir():
        if path.name in SKIPPED or path.name.endswith(".egg-info") or path in SKIPPED_PATHS:
            continue
        out |= _files(path) if path.is_dir() else {path}
    return out


@pytest.fixture(autouse=True, scope="session")
def _nothing_written_in_the_repository():
    """Fails the session if a test left a file in the repository (outside its tmp folder)."""
    before = _files(REPO)
    yield
    added = sorted(str(p.relative_to(REPO)) for p in _files(REPO) - before)
    assert not added, f"tests wrote into the repository: {added[:10]}"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never touch the network (weight downloads are reported as impossible) and run in
    their own tmp folder, so the default `./.kit` and `./submissions` land there."""
    monkeypatch.setenv("KIT_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)


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
