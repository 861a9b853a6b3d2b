"""Read what a finished run left behind, for the report: record, histories, OOF predictions, folds.

Everything here reads files; nothing computes. A missing optional part (a run folder that was
cleaned, data that moved) becomes a `None` with the reason in `RunData.missing`, so the report
can still show what is left.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kit.competition import Competition, load_competition
from kit.core.errors import InputError
from kit.runs.layout import RunFolder
from kit.runs.record import RunRecord


@dataclass(frozen=True, kw_only=True)
class FoldHistory:
    """The Keras history of one (seed, fold) head: metric name -> one value per epoch."""

    seed: int
    fold: int
    history: dict[str, list[float]]
    best_epoch: int | None


@dataclass(frozen=True, kw_only=True)
class RunData:
    """Everything the report reads about one run.

    Attributes:
        record_path: the run record (`<submissions>/<competition>/<run-id>.json`).
        record: its content.
        run_dir: the run folder (`<work>/runs/<competition>/<config-hash>`).
        classes: class names in column order.
        competition: the competition declaration, or None when it cannot be loaded.
        oof: `oof.csv` (path, label, one probability column per class), or None.
        folds: `folds.csv` (id, fold), or None.
        histories: per (seed, fold) training histories found in the run folder.
        data_root: the dataset folder of the run, or None when it is gone.
        missing: what could not be read, and why.
    """

    record_path: Path
    record: RunRecord
    run_dir: Path
    classes: list[str]
    competition: Competition | None
    oof: pd.DataFrame | None
    folds: pd.DataFrame | None
    histories: tuple[FoldHistory, ...]
    data_root: Path | None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def work_dir(self) -> Path:
        """The work folder of the run (`<work>` in `<work>/runs/<competition>/<hash>`)."""
        return self.run_dir.parents[2]


def read_histories(run_dir: Path, fold_scores: Sequence[Mapping]) -> tuple[FoldHistory, ...]:
    """Histories of every fold folder's `history.json` in the run folder, in (seed, fold)
    order, with the best epoch from the record's fold scores."""
    best = {(f.get("seed"), f.get("fold")): f.get("best_epoch") for f in fold_scores}
    out = []
    for seed, fold, folder in RunFolder(run_dir).fold_folders():
        if not folder.history.is_file():
            continue
        history = json.loads(folder.history.read_text())
        out.append(FoldHistory(seed=seed, fold=fold, best_epoch=best.get((seed, fold)),
                               history={k: [float(v) for v in vs] for k, vs in history.items()}))
    return tuple(out)


def _competition(name: str, missing: dict[str, str]) -> Competition | None:
    try:
        return load_competition(name)
    except (InputError, TypeError) as error:
        missing["competition"] = str(error)
        return None


def load_run(record_path: Path) -> RunData:
    """Read a run's record and the files of its run folder.

    Raises:
        MissingFileError: If the record does not exist.
        InputError: If the record is not a complete run record.
    """
    record_path = Path(record_path).expanduser().resolve()
    record = RunRecord.read(record_path)
    run_dir = Path(record.run_dir)
    folder = record.folder
    missing: dict[str, str] = {}
    competition = _competition(record.competition, missing)
    oof = folds = None
    oof_file = record.oof_file
    if oof_file.is_file():
        oof = pd.read_csv(oof_file, dtype={"path": str, "label": str})
    else:
        missing["oof"] = f"{oof_file} does not exist (the run folder was removed?)"
    if folder.folds_csv.is_file():
        from kit.data.folds import load_folds

        folds = load_folds(folder.folds_csv)
    else:
        missing["folds"] = f"{folder.folds_csv} does not exist"
    if competition is not None:
        classes = list(competition.classes)
    elif oof is not None:
        classes = [c for c in oof.columns if c not in ("path", "label")]
    else:
        raise InputError(
            f"cannot tell the classes of run {record.run_id}: competition "
            f"{record.competition!r} cannot be loaded and {oof_file} is gone"
        )
    histories = read_histories(run_dir, record.fold_scores) if run_dir.is_dir() else ()
    if not histories:
        missing["histories"] = f"no seed*/fold*/history.json under {run_dir}"
    root_text = str(record.data.get("root") or "")
    data_root: Path | None = Path(root_text) if root_text else None
    if data_root is None or not data_root.is_dir():
        missing["data"] = (f"the dataset folder {root_text or '(none recorded)'} of this run "
                           "does not exist any more")
        data_root = None
    return RunData(record_path=record_path, record=record, run_dir=run_dir, classes=classes,
                   competition=competition, oof=oof, folds=folds, histories=histories,
                   data_root=data_root, missing=missing)
