"""Where kit reads and writes: every path the kit uses is derived here, from one `Paths`."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

WORK_DIR_ENV = "KIT_WORK_DIR"
SUBMISSIONS_DIR_ENV = "KIT_SUBMISSIONS_DIR"


@dataclass(frozen=True, kw_only=True)
class Paths:
    """The folders of one kit invocation.

    Args:
        work: working files (demo data, feature cache, fold checkpoints, weights). Configurable so
            the kit runs where inputs are read-only (Kaggle's `/kaggle/input`).
        submissions: where `<competition>/<run-id>.csv` and its run record are written.
    """

    work: Path
    submissions: Path

    @classmethod
    def from_options(cls, *, work: Path | None = None, submissions: Path | None = None) -> Paths:
        """Resolve the folders: explicit option, then environment variable, then `./.kit` and
        `./submissions` under the current directory."""
        cwd = Path.cwd()
        work = work or Path(os.environ.get(WORK_DIR_ENV) or cwd / ".kit")
        submissions = submissions or Path(os.environ.get(SUBMISSIONS_DIR_ENV) or cwd / "submissions")
        return cls(work=work.expanduser().resolve(), submissions=submissions.expanduser().resolve())

    def demo_data(self, competition: str, preset: str) -> Path:
        return self.work / "demo" / competition / preset

    def downloaded_data(self, competition: str) -> Path:
        return self.work / "data" / competition

    def features(self) -> Path:
        return self.work / "features"

    def weights(self) -> Path:
        return self.work / "weights"

    def run_dir(self, competition: str, config_hash: str) -> Path:
        return self.work / "runs" / competition / config_hash

    def submission_dir(self, competition: str) -> Path:
        return self.submissions / competition

    def probe_dir(self, competition: str, data_root: Path) -> Path:
        """Probe outputs (groups.csv, reports) for one dataset folder."""
        digest = hashlib.sha1(str(Path(data_root).resolve()).encode()).hexdigest()[:12]
        return self.work / "probes" / competition / digest

    def groups_file(self, competition: str, data_root: Path) -> Path:
        """Where `kit probe` writes inferred groups and `run --folds group` reads them."""
        return self.probe_dir(competition, data_root) / "groups.csv"
