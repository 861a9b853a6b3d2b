"""The demo dataset, generated once per (competition, preset, seed) and reused by `--demo`."""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

from kit.competition import Competition
from kit.core.errors import InputError
from kit.core.paths import Paths

COMPLETE_MARKER = ".complete"


def demo_module(competition: Competition) -> ModuleType:
    """The generator module a competition declares (`generate`, `corpus`, `PRESETS`)."""
    if competition.demo is None:
        raise InputError(
            f"competition {competition.name} has no demo generator; use --data DIR or download"
        )
    return importlib.import_module(competition.demo)


def generate_demo(competition: Competition, out: Path, *, preset: str = "full",
                  seed: int = 0) -> Path:
    """Write the demo dataset into `out` (must not exist or be empty); returns `out`."""
    module = demo_module(competition)
    module.generate(Path(out), seed=seed, preset=preset)
    return Path(out)


def ensure_demo_data(competition: Competition, paths: Paths, *, preset: str = "full",
                     seed: int = 0) -> Path:
    """The cached demo dataset, generated into a temporary folder and renamed when complete."""
    target = paths.demo_data(competition.name, preset) / f"seed{seed}"
    # The marker holds the generator's version: a dataset from an older generator is rebuilt.
    stamp = f"ok version {getattr(demo_module(competition), 'VERSION', 1)}\n"
    marker = target / COMPLETE_MARKER
    if marker.is_file() and marker.read_text() == stamp:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        generate_demo(competition, staging / "data", preset=preset, seed=seed)
        (staging / "data" / COMPLETE_MARKER).write_text(stamp)
        if target.exists():
            shutil.rmtree(target)
        (staging / "data").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
