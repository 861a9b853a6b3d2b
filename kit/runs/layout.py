"""The run folder's layout: the one place its file and folder names are spelled out.

A run folder (`<work>/runs/<competition>/<config-hash>/`) holds

    folds.csv                       which fold holds each training image out
    oof.csv, test.csv               out-of-fold and (clipped) test probabilities
    report.html                     the HTML report
    seed<S>/fold<K>/                one trained fold: model.weights.h5, <name>.npy arrays,
                                    history.json, done.json (written last: the commit marker);
                                    fine-tuning adds epochs.csv and, while it trains, backup/,
                                    best.weights.h5 and early_stopping.json
    seed<S>/fold<K>/pseudo<T>/      the fold's second fit, with pseudo-labels at threshold T
    <stage>/seed<S>/fold<K>/        the folds of a stage of the crop head (bbox/, crop/)

Example:
    >>> RunFolder(Path("/w/runs/fisheries/abc")).fold(seed=0, fold=3).weights
    PosixPath('/w/runs/fisheries/abc/seed0/fold3/model.weights.h5')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SEED_DIR = re.compile(r"^seed(?P<seed>\d+)$")
FOLD_DIR = re.compile(r"^fold(?P<fold>\d+)$")


@dataclass(frozen=True)
class FoldFolder:
    """One trained (seed, fold): its folder and the files in it."""

    path: Path

    @property
    def weights(self) -> Path:
        return self.path / "model.weights.h5"

    @property
    def done(self) -> Path:
        """Written last; a fold with it is finished and is loaded, never trained again."""
        return self.path / "done.json"

    @property
    def history(self) -> Path:
        return self.path / "history.json"

    def array(self, name: str) -> Path:
        """`<name>.npy`: `oof`, `test`, `box_oof`, `box_train`, `box_test`."""
        return self.path / f"{name}.npy"

    @property
    def epochs_log(self) -> Path:
        """Fine-tuning's CSVLogger file: every epoch of every attempt."""
        return self.path / "epochs.csv"

    @property
    def backup(self) -> Path:
        """Fine-tuning's BackupAndRestore folder (weights, optimizer, epoch) while it trains."""
        return self.path / "backup"

    @property
    def best_weights(self) -> Path:
        """Fine-tuning's early stopping: the best epoch's weights while it trains."""
        return self.path / "best.weights.h5"

    @property
    def stop_state(self) -> Path:
        """Fine-tuning's early stopping: best loss and patience count while it trains."""
        return self.path / "early_stopping.json"

    def sub(self, name: str) -> FoldFolder:
        """A folder inside this fold's (`pseudo0.9`: its pseudo-labelled second fit)."""
        return FoldFolder(self.path / name)

    def is_finished(self) -> bool:
        return self.done.is_file()


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run configuration (or of one stage of it)."""

    root: Path

    @property
    def folds_csv(self) -> Path:
        return self.root / "folds.csv"

    @property
    def oof_csv(self) -> Path:
        return self.root / "oof.csv"

    @property
    def test_csv(self) -> Path:
        return self.root / "test.csv"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def fold(self, *, seed: int, fold: int) -> FoldFolder:
        return FoldFolder(self.root / f"seed{seed}" / f"fold{fold}")

    def stage(self, name: str) -> RunFolder:
        """The folder of one stage's folds (`bbox`, `crop`, `pseudo0.9`)."""
        return RunFolder(self.root / name)

    def fold_folders(self) -> list[tuple[int, int, FoldFolder]]:
        """`(seed, fold, folder)` of every fold folder present, in (seed, fold) order."""
        found = []
        for path in self.root.glob("seed*/fold*"):
            seed = SEED_DIR.match(path.parent.name)
            fold = FOLD_DIR.match(path.name)
            if seed and fold and path.is_dir():
                found.append((int(seed["seed"]), int(fold["fold"]), FoldFolder(path)))
        return sorted(found, key=lambda item: (item[0], item[1]))

    def finished_folds(self) -> list[FoldFolder]:
        """Fold folders with `done.json` and weights, in (seed, fold) order."""
        return [f for _, _, f in self.fold_folders() if f.is_finished() and f.weights.is_file()]


__all__ = ["FoldFolder", "RunFolder"]
